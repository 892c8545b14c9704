"""The SQLite event spool: order across restarts, the size cap, threads, and damaged files."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from rollwise.errors import ConfigurationError, SpoolError
from rollwise.spool import Spool


def bodies(n: int, prefix: str = "e") -> list[str]:
    return [json.dumps({"id": f"{prefix}{i}"}) for i in range(n)]


def warnings_in(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_rows_come_back_in_order_after_reopening(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "spool.db"  # parent directories are created
    with Spool(path) as spool:
        assert spool.append("exposure", bodies(3, "x")) == 3
        assert spool.append("outcome", bodies(2, "o")) == 3 - 1
        assert spool.append("exposure", []) == 0
        first = spool.peek(100)
        size = spool.size_bytes
    assert spool.closed
    with Spool(path) as again:
        assert again.path == path
        assert len(again) == 5
        assert again.size_bytes == size
        assert again.peek(100) == first
    kinds = [kind for _, kind, _ in first]
    assert kinds == ["exposure"] * 3 + ["outcome"] * 2
    assert [json.loads(body)["id"] for _, _, body in first] == ["x0", "x1", "x2", "o0", "o1"]
    seqs = [seq for seq, _, _ in first]
    assert seqs == sorted(seqs)


def test_peek_is_oldest_first_and_removes_nothing(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db")
    spool.append("exposure", bodies(10))
    assert [json.loads(b)["id"] for _, _, b in spool.peek(3)] == ["e0", "e1", "e2"]
    assert spool.peek(3) == spool.peek(3)
    assert len(spool) == 10
    assert spool.peek(0) == spool.peek(-1) == []  # not SQLite's "LIMIT -1" = everything
    spool.close()


def test_remove_partial_unknown_and_repeated_seqs(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db")
    spool.append("exposure", bodies(6))
    rows = spool.peek(6)
    gone = [rows[0][0], rows[2][0], rows[2][0], 10_000]  # a repeat and an unknown seq
    spool.remove(gone)
    left = spool.peek(10)
    assert left == [rows[1], rows[3], rows[4], rows[5]]
    assert len(spool) == 4
    assert spool.size_bytes == sum(len(body.encode()) for _, _, body in left)
    spool.remove([])
    spool.remove([seq for seq, _, _ in left])
    assert (len(spool), spool.size_bytes, spool.peek(10)) == (0, 0, [])
    spool.close()


def test_sequence_numbers_are_never_reused(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    with Spool(path) as spool:
        spool.append("exposure", bodies(3))
        last = spool.peek(3)[-1][0]
        spool.remove([seq for seq, _, _ in spool.peek(3)])
    with Spool(path) as spool:
        spool.append("exposure", ["{}"])
        assert spool.peek(1)[0][0] > last  # AUTOINCREMENT: a replayed seq is never a new event


def test_remove_many_rows_at_once(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db")
    spool.append("exposure", bodies(2_500))
    rows = spool.peek(2_500)
    spool.remove([seq for seq, _, _ in rows[:2_400]])  # more "?" than one statement takes
    assert len(spool) == 100
    assert spool.peek(1)[0] == rows[2_400]
    assert spool.size_bytes == sum(len(b) for _, _, b in rows[2_400:])
    spool.close()


def test_size_is_utf8_bytes_and_exact_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    texts = ['{"a":"é"}', '{"b":"🚀"}', "{}", '{"nul":"\x00"}', '"✓"']
    expected = sum(len(t.encode()) for t in texts)
    with Spool(path) as spool:
        assert spool.append("outcome", texts) == 5
        assert spool.size_bytes == expected
        assert [b for _, _, b in spool.peek(10)] == texts  # stored verbatim, NUL included
    with Spool(path) as spool:
        assert spool.size_bytes == expected
        seq = spool.peek(1)[0][0]
        spool.remove([seq])
        assert spool.size_bytes == expected - len(texts[0].encode())


def test_the_cap_stores_a_prefix_and_counts_the_rest(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db", max_bytes=10)
    assert spool.append("exposure", ["aaaa", "bbbb", "ccc", "d"]) == 2  # "d" would fit: order first
    assert (len(spool), spool.size_bytes, spool.dropped) == (2, 8, 2)
    assert spool.append("exposure", ["cc"]) == 1  # exactly at the cap
    assert spool.size_bytes == 10
    assert spool.append("exposure", ["e", "f"]) == 0
    assert spool.append("exposure", ["x" * 11]) == 0  # bigger than the whole cap
    assert (len(spool), spool.size_bytes, spool.dropped) == (3, 10, 5)
    assert [b for _, _, b in spool.peek(10)] == ["aaaa", "bbbb", "cc"]
    spool.close()


def test_one_warning_per_overflow_episode(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="rollwise")
    spool = Spool(tmp_path / "spool.db", max_bytes=10)
    spool.append("exposure", ["aaaa", "bbbb", "ccc"])
    (full,) = warnings_in(caplog)
    assert str(tmp_path / "spool.db") in full
    assert "full (8 of 10 bytes" in full

    spool.append("exposure", ["cc"])  # fits: still the same episode (no warning flapping)
    spool.append("exposure", ["e", "f"])
    spool.remove([spool.peek(1)[0][0]])  # 6 of 10: not yet drained to half the cap
    spool.append("exposure", ["gggg", "hh"])
    assert len(warnings_in(caplog)) == 1
    assert spool.dropped == 4

    spool.remove([seq for seq, _, _ in spool.peek(2)])  # "bbbb", "cc" -> 4 of 10
    (recovered,) = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert "room again (4 of 10 bytes used); 4 events were dropped" in recovered
    spool.append("exposure", ["123456", "7"])  # a new episode, a new warning
    assert len(warnings_in(caplog)) == 2
    assert spool.dropped == 5  # cumulative
    spool.close()


def test_dropping_never_raises_a_warning_into_the_application(tmp_path: Path) -> None:
    # pytest runs with filterwarnings=error: a warnings.warn() here would fail this test.
    with Spool(tmp_path / "spool.db", max_bytes=1) as spool:
        assert spool.append("exposure", ["{}"] * 3) == 0
        assert spool.dropped == 3


def test_a_zero_cap_drops_everything_and_a_negative_one_is_refused(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool.db", max_bytes=0) as spool:
        assert spool.append("exposure", ["{}"]) == 0
        assert spool.dropped == 1
    with pytest.raises(ConfigurationError, match="max_bytes"):
        Spool(tmp_path / "other.db", max_bytes=-1)


def test_the_cap_applies_to_what_was_there_before_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    with Spool(path, max_bytes=100) as spool:
        spool.append("exposure", ["x" * 60])
    with Spool(path, max_bytes=100) as spool:
        assert spool.append("exposure", ["y" * 50]) == 0
        assert spool.dropped == 1


def test_concurrent_appends_from_threads_lose_nothing(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db")
    threads_n, batches, per_batch = 8, 50, 7
    barrier = threading.Barrier(threads_n)
    stored: list[int] = []

    def work(name: int) -> None:
        barrier.wait()
        for b in range(batches):
            batch = [f'{{"t":{name},"i":{b * per_batch + i}}}' for i in range(per_batch)]
            stored.append(spool.append("exposure", batch))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = threads_n * batches * per_batch
    assert sum(stored) == total
    assert len(spool) == total
    rows = spool.peek(total + 1)
    assert len(rows) == total
    assert spool.size_bytes == sum(len(body) for _, _, body in rows)
    for name in range(threads_n):  # each thread's events in the order it appended them
        mine = [json.loads(body)["i"] for _, _, body in rows if json.loads(body)["t"] == name]
        assert mine == list(range(batches * per_batch))
    spool.close()


def test_concurrent_removes_and_appends_keep_exact_accounting(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db")
    done = threading.Event()

    def sender() -> None:
        while not done.is_set() or len(spool):
            spool.remove([seq for seq, _, _ in spool.peek(13)])

    thread = threading.Thread(target=sender)
    thread.start()
    for i in range(300):
        spool.append("exposure", bodies(i % 5, prefix=str(i)))
    done.set()
    thread.join()
    assert (len(spool), spool.size_bytes) == (0, 0)
    spool.close()
    with Spool(tmp_path / "spool.db") as again:
        assert (len(again), again.size_bytes) == (0, 0)


def test_rows_survive_a_killed_process(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    code = (
        "import os, sys; from rollwise.spool import Spool; "
        "s = Spool(sys.argv[1]); s.append('exposure', ['{\"i\":1}', '{\"i\":2}']); os._exit(9)"
    )
    result = subprocess.run([sys.executable, "-c", code, str(path)], check=False)  # noqa: S603
    assert result.returncode == 9  # never closed
    with Spool(path) as spool:
        assert [body for _, _, body in spool.peek(10)] == ['{"i":1}', '{"i":2}']


def test_a_file_that_is_not_sqlite_is_moved_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "spool.db"
    garbage = b"this is not a database, just some bytes\n" * 200
    path.write_bytes(garbage)
    with Spool(path) as spool:
        assert (len(spool), spool.size_bytes) == (0, 0)
        assert spool.append("exposure", ["{}"]) == 1
    (aside,) = tmp_path.glob("spool.db.corrupt-*[0-9Z]")
    assert aside.read_bytes() == garbage  # kept for a post-mortem, not deleted
    (message,) = warnings_in(caplog)
    assert str(path) in message
    assert str(aside) in message
    with Spool(path) as spool:
        assert len(spool) == 1  # the fresh spool is a normal one


def test_a_damaged_database_is_moved_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "spool.db"
    with Spool(path) as spool:
        spool.append("exposure", ["x" * 500] * 200)
    data = path.read_bytes()
    assert data.startswith(b"SQLite format 3\x00")
    path.write_bytes(data[:4096] + b"\xde\xad" * ((len(data) - 4096) // 2))  # pages overwritten
    with Spool(path) as spool:
        assert len(spool) == 0
    assert len(list(tmp_path.glob("spool.db.corrupt-*"))) >= 1
    assert any(str(path) in m for m in warnings_in(caplog))


def test_two_corrupt_files_in_the_same_second_get_distinct_names(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    for _ in range(2):
        path.write_bytes(b"garbage" * 100)
        Spool(path).close()
    assert len(list(tmp_path.glob("spool.db.corrupt-*"))) == 2


def test_spool_error_when_the_corrupt_file_cannot_be_moved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "spool.db"
    path.write_bytes(b"garbage" * 100)

    def refuse(src: object, dst: object) -> None:
        raise PermissionError("read-only file system")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(SpoolError, match="move it aside") as info:
        Spool(path)
    assert str(path) in str(info.value)
    assert path.read_bytes() == b"garbage" * 100


def test_a_directory_in_the_way_is_a_spool_error(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    path.mkdir()
    with pytest.raises(SpoolError) as info:
        Spool(path)
    assert str(path) in str(info.value)
    assert path.is_dir()  # not moved aside: it is not ours


def test_a_file_in_place_of_the_parent_is_a_spool_error(tmp_path: Path) -> None:
    (tmp_path / "cache").write_text("a file")
    path = tmp_path / "cache" / "spool.db"
    with pytest.raises(SpoolError) as info:
        Spool(path)
    assert str(path) in str(info.value)


def test_another_applications_database_is_refused_not_moved(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE events (name TEXT, at REAL)")
    with pytest.raises(SpoolError, match="not a rollwise event spool") as info:
        Spool(path)
    assert str(path) in str(info.value)
    assert list(tmp_path.glob("*.corrupt-*")) == []


def test_a_body_that_is_not_valid_text_stores_nothing(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool.db") as spool:
        with pytest.raises(SpoolError, match="body 1"):
            spool.append("exposure", ["{}", '"\ud800"', "{}"])
        assert (len(spool), spool.size_bytes, spool.dropped) == (0, 0, 0)


def test_a_closed_spool_raises_spool_error(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db")
    assert spool  # truthy even when empty: "is there a spool", not "is it non-empty"
    assert "rows=0" in repr(spool)
    spool.close()
    spool.close()  # twice is fine
    for call in (
        lambda: spool.append("exposure", ["{}"]),
        lambda: spool.peek(1),
        lambda: spool.remove([1]),
    ):
        with pytest.raises(SpoolError, match="closed"):
            call()


def test_the_file_is_a_wal_database_with_the_documented_table(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    Spool(path).close()
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        columns = [row[1] for row in connection.execute("PRAGMA table_info(events)")]
    assert columns == ["seq", "kind", "body"]
