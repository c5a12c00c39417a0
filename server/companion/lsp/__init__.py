"""companion.lsp"""
