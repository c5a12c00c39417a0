"""companion.backends"""
