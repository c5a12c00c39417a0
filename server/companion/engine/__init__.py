"""companion.engine"""
