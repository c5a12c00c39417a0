"""Benchmarks: numbers, never pass/fail."""
