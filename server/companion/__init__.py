"""Companion: a local-AI language server for code completion, hover explanations and scaffolds."""

__version__ = "0.1.0"
