"""Local usage history: what was suggested, how fast, and what the user kept.

A SQLite file in the user data dir (`COMPANION_DATA_DIR` overrides), written by one
background thread; nothing in it ever leaves the machine, and no source text is kept
unless the user asks for it (`historyKeepText`).
"""
