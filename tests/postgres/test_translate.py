"""The shared SQL's placeholders, as the PostgreSQL connection rewrites them for psycopg."""

from __future__ import annotations

import pytest

from rollwise_server.storage.postgres import redacted, translate


@pytest.mark.parametrize(
    ("shared", "psycopg"),
    [
        ("SELECT 1 FROM t WHERE a = ? AND b = ?", "SELECT 1 FROM t WHERE a = %s AND b = %s"),
        ("WHERE seq > :lo AND flag = :flag", "WHERE seq > %(lo)s AND flag = %(flag)s"),
        ("SELECT ts::timestamptz", "SELECT ts::timestamptz"),
        ("WHERE name LIKE 'x%' AND v = ?", "WHERE name LIKE 'x%%' AND v = %s"),
        ("SELECT 'it''s ? :not_a_name', ?", "SELECT 'it''s ? :not_a_name', %s"),
        ("SELECT 5 % 2", "SELECT 5 %% 2"),
    ],
)
def test_placeholders_and_percent_signs(shared: str, psycopg: str) -> None:
    assert translate(shared) == psycopg


def test_a_url_is_logged_without_its_password() -> None:
    assert redacted("postgresql://app:s3cret@db:5432/x") == "postgresql://app:***@db:5432/x"
    assert redacted("postgresql://app@db/x") == "postgresql://app@db/x"
