"""Shared by every test directory: the PostgreSQL run's skips (``ROLLWISE_TEST_DATABASE``)."""

from __future__ import annotations

from typing import Any

import pytest

from rollwise_server.testing import postgresql_under_test


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    """Under ``ROLLWISE_TEST_DATABASE=postgresql://...`` the tests marked ``sqlite_only`` (what
    only the SQLite store has: its file, WAL, migrations from older files, a full disk made
    with a small filesystem) are skipped, with the marker's reason."""
    if postgresql_under_test() is None:
        return
    for item in items:
        marker = item.get_closest_marker("sqlite_only")
        if marker is not None:
            reason = marker.kwargs.get("reason") or (marker.args[0] if marker.args else "")
            item.add_marker(pytest.mark.skip(reason=f"SQLite only: {reason}"))
