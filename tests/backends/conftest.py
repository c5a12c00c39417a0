"""Engine and backend integration tests: each engine (and the engine host around them)
through the real server, with the e2e fixtures (`make_client`, `client`)."""

from tests.e2e.conftest import client, make_client

__all__ = ["client", "make_client"]
