"""The real-server fixture, shared with the server tests."""

from tests.server.conftest import server

__all__ = ["server"]
