"""companion.models"""
