"""Suite-wide setup: nothing a test starts writes into the user's own data dir.

Every server, CLI run and probe the tests start (in this process or as a subprocess that
inherits its environment) keeps its usage history in one temporary COMPANION_DATA_DIR.
It is set when this file is imported, before any test module builds its server config,
and removed when the session ends. A test that needs a data dir of its own still passes
one explicitly (tmp_path).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

DATA_DIR = tempfile.mkdtemp(prefix="companion-tests-data-")
os.environ["COMPANION_DATA_DIR"] = DATA_DIR


@pytest.fixture(scope="session", autouse=True)
def temporary_data_dir() -> Iterator[str]:
    """The session's COMPANION_DATA_DIR (restored if a test changed os.environ)."""
    os.environ["COMPANION_DATA_DIR"] = DATA_DIR
    yield DATA_DIR
    shutil.rmtree(DATA_DIR, ignore_errors=True)
