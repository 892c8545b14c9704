"""Shadow runs: the candidate beside the served model, off the request path, never in the way."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import rollwise
from rollwise.events import Prediction
from rollwise.shadow import prediction_value, shadowed
from rollwise_server.testing import LiveServer, connect
from tests.sdk.test_online import make_client
from tests.server.conftest import EXAMPLE, example_flag

EU = {"country": "DE", "amount": 100}


def document(shadow: Any = None, **flag_changes: Any) -> dict[str, Any]:
    doc = json.loads(EXAMPLE.read_text())
    flag = doc["flags"]["fraud-model"]
    flag["schedule"] = None
    flag["rules"] = []  # everyone is served the default, v1
    if shadow is not None:
        flag["shadow"] = shadow
    flag.update(flag_changes)
    return dict(doc)


def collect(client: rollwise.Client) -> tuple[list[Prediction], threading.Condition]:
    seen: list[Prediction] = []
    changed = threading.Condition()

    def listener(prediction: Prediction) -> None:
        with changed:
            seen.append(prediction)
            changed.notify_all()

    client.add_prediction_listener(listener)
    return seen, changed


def wait_count(seen: list[Prediction], changed: threading.Condition, n: int) -> bool:
    with changed:
        return changed.wait_for(lambda: len(seen) >= n, timeout=10)


# --- the rules document ---


def test_a_flag_names_its_shadow_and_documents_without_one_keep_their_text() -> None:
    plain = rollwise.RulesDocument.from_json(document())
    assert "shadow" not in plain.to_json()["flags"]["fraud-model"]
    doc = rollwise.RulesDocument.from_json(document({"variant": "v2", "share": 0.25}), strict=True)
    shadow = doc.flags["fraud-model"].shadow
    assert shadow is not None
    assert (shadow.variant, shadow.share, shadow.bucket_by) == ("v2", 0.25, "user_id")
    again = rollwise.RulesDocument.from_json(json.loads(doc.to_text()), strict=True)
    assert again == doc


@pytest.mark.parametrize(
    ("shadow", "path", "words"),
    [
        ({"variant": "v9", "share": 0.1}, "flags.fraud-model.shadow.variant", "unknown variant"),
        ({"variant": "v2", "share": 0}, "flags.fraud-model.shadow.share", "above 0"),
        ({"variant": "v2", "share": 1.5}, "flags.fraud-model.shadow.share", "at most 1"),
        ({"variant": "v2", "share": True}, "flags.fraud-model.shadow.share", "a number"),
        ({"variant": "v2"}, "flags.fraud-model.shadow.share", "a number"),
        ({"share": 0.5}, "flags.fraud-model.shadow.variant", "key of one of the variants"),
        ({"variant": "v2", "share": 0.5, "bucket_by": ""}, "flags.fraud-model.shadow.bucket_by",
         "non-empty string"),
        ("v2", "flags.fraud-model.shadow", "object"),
    ],
)  # fmt: skip
def test_a_bad_shadow_is_refused_naming_the_field(shadow: Any, path: str, words: str) -> None:
    with pytest.raises(rollwise.RulesParseError) as caught:
        rollwise.RulesDocument.from_json(document(shadow), strict=True)
    problems = caught.value.problems
    assert [p.path for p in problems] == [path]
    assert words in problems[0].message


def test_the_shadowed_share_is_stable_and_near_its_share() -> None:
    doc = rollwise.RulesDocument.from_json(document({"variant": "v2", "share": 0.3}))
    flag = doc.flags["fraud-model"]
    units = [f"user-{i}" for i in range(20_000)]
    chosen = [u for u in units if shadowed(flag, u)]
    # binomial(20000, 0.3): sd 65; 5 sd either side
    assert abs(len(chosen) - 6000) < 325
    assert chosen == [u for u in units if shadowed(flag, u)]  # the same units every time
    # a larger share keeps every unit it had (the threshold only moves up)
    wider = rollwise.RulesDocument.from_json(document({"variant": "v2", "share": 0.6}))
    assert set(chosen) <= {u for u in units if shadowed(wider.flags["fraud-model"], u)}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.75, (None, 0.75)),
        (3, (None, 3.0)),
        (True, ("true", None)),
        ("fraud", ("fraud", None)),
        (float("nan"), (None, None)),
        ("", (None, None)),
        (object(), (None, None)),
    ],
)
def test_a_prediction_is_a_score_or_a_label(value: Any, expected: tuple[Any, Any]) -> None:
    assert prediction_value(value) == expected


def test_a_numpy_answer_is_a_score() -> None:
    numpy = pytest.importorskip("numpy")  # installed with the analysis extra
    assert prediction_value(numpy.array([0.25])) == (None, 0.25)
    assert prediction_value(numpy.float32(0.5)) == (None, 0.5)
    assert prediction_value(numpy.array([0.1, 0.2])) == (None, None)  # not one answer


# --- the run, offline ---


def test_a_shadowed_unit_gets_both_predictions_paired_by_run() -> None:
    client = rollwise.Client.offline(document({"variant": "v2", "share": 1.0}))
    seen, changed = collect(client)
    context = {"user_id": "user-1", **EU}
    with client.shadow("fraud-model", context) as run:
        assert (run.variant, run.shadow_variant, run.sampled) == ("v1", "v2", True)
        assert run.live(lambda: 0.2) == 0.2
        assert run.candidate(lambda: 0.9) is True
    assert wait_count(seen, changed, 2)
    live, shadow = sorted(seen, key=lambda p: p.role)
    assert (live.role, live.variant, live.score, live.status) == ("live", "v1", 0.2, "ok")
    assert (shadow.role, shadow.variant, shadow.score) == ("shadow", "v2", 0.9)
    assert live.run == shadow.run
    assert live.id != shadow.id
    assert (live.unit_type, live.unit, live.flag, live.flag_version) == (
        "user_id", "user-1", "fraud-model", 3,
    )  # fmt: skip
    assert dict(live.attrs) == {"country": "DE", "amount": 100}
    assert live.latency_ms >= 0
    assert shadow.latency_ms >= 0
    assert client.stats()["shadow_runs"] == 1


def test_the_caller_never_waits_for_the_candidate() -> None:
    client = rollwise.Client.offline(document({"variant": "v2", "share": 1.0}))
    seen, changed = collect(client)
    release = threading.Event()
    run = client.shadow("fraud-model", {"user_id": "user-2"})
    # the candidate cannot finish before ``release``: candidate() returning proves it did not wait
    assert run.candidate(lambda: release.wait(10) and 0.5) is True
    assert seen == []
    release.set()
    assert wait_count(seen, changed, 1)
    assert seen[0].score == 0.5


def test_a_candidate_that_raises_never_reaches_the_caller_and_is_counted() -> None:
    client = rollwise.Client.offline(document({"variant": "v2", "share": 1.0}))
    seen, changed = collect(client)

    def broken() -> float:
        raise RuntimeError("the candidate is broken")

    with client.shadow("fraud-model", {"user_id": "user-3"}) as run:
        assert run.live(lambda: "legit") == "legit"
        assert run.candidate(broken) is True
    assert wait_count(seen, changed, 2)
    shadow = next(p for p in seen if p.role == "shadow")
    assert (shadow.status, shadow.label, shadow.score) == ("error", None, None)
    assert next(p for p in seen if p.role == "live").label == "legit"
    assert client.stats()["shadow_errors"] == 1


def test_the_live_model_raising_is_the_callers_and_is_logged() -> None:
    client = rollwise.Client.offline(document({"variant": "v2", "share": 1.0}))
    seen, _ = collect(client)
    run = client.shadow("fraud-model", {"user_id": "user-4"})
    with pytest.raises(ZeroDivisionError):
        run.live(lambda: 1 / 0)
    assert [(p.role, p.status) for p in seen] == [("live", "error")]


def test_an_unshadowed_unit_runs_no_candidate_and_logs_nothing() -> None:
    client = rollwise.Client.offline(document({"variant": "v2", "share": 0.5}))
    flag = client.rules.flags["fraud-model"]  # type: ignore[union-attr]
    unit = next(f"user-{i}" for i in range(1000) if not shadowed(flag, f"user-{i}"))
    seen, _ = collect(client)
    called = []
    run = client.shadow("fraud-model", {"user_id": unit})
    assert (run.variant, run.shadow_variant, run.sampled) == ("v1", None, False)
    assert run.live(lambda: 0.1) == 0.1
    assert run.candidate(lambda: called.append(1)) is False
    assert client.flush(5)
    assert (called, seen) == ([], [])


def test_a_unit_served_the_candidate_is_not_shadowed() -> None:
    doc = document({"variant": "v2", "share": 1.0}, default_variant="v2")
    client = rollwise.Client.offline(doc)
    run = client.shadow("fraud-model", {"user_id": "user-5"})
    assert (run.variant, run.sampled) == ("v2", False)


def test_a_killed_flag_runs_no_shadow() -> None:
    client = rollwise.Client.offline(document({"variant": "v2", "share": 1.0}, enabled=False))
    run = client.shadow("fraud-model", {"user_id": "user-6"})
    assert (run.variant, run.sampled) == ("v1", False)


@pytest.mark.parametrize(
    ("key", "context"),
    [("no-such-flag", {"user_id": "u"}), ("fraud-model", None), ("fraud-model", {})],
)
def test_shadow_never_raises(key: str, context: Any) -> None:
    client = rollwise.Client.offline(document({"variant": "v2", "share": 1.0}))
    run = client.shadow(key, context, default="v1")
    assert run.sampled is False
    assert run.candidate(lambda: 1.0) is False
    assert run.live(lambda: 7) == 7


def test_a_full_pool_drops_and_counts(tmp_path: Path) -> None:
    with rollwise.Client(
        "http://127.0.0.1:9", "rw_key", cache_dir=None, send_events=False,
        bootstrap=document({"variant": "v2", "share": 1.0}),
        shadow_workers=1, shadow_max_pending=1,
    ) as client:  # fmt: skip
        release = threading.Event()
        started = threading.Event()

        def blocked() -> float:
            started.set()
            release.wait(10)
            return 0.5

        assert client.shadow("fraud-model", {"user_id": "a"}).candidate(blocked) is True
        assert started.wait(10)
        assert client.shadow("fraud-model", {"user_id": "b"}).candidate(lambda: 0.1) is False
        assert client.stats()["shadow_dropped"] == 1
        release.set()
        assert client.flush(10)
        assert client.shadow("fraud-model", {"user_id": "c"}).candidate(lambda: 0.1) is True


def test_a_slow_candidate_is_a_timeout_and_its_answer_discarded() -> None:
    with rollwise.Client(
        "http://127.0.0.1:9", "rw_key", cache_dir=None, send_events=False,
        bootstrap=document({"variant": "v2", "share": 1.0}), shadow_timeout=0.05,
    ) as client:  # fmt: skip
        seen, changed = collect(client)

        def slow() -> float:
            time.sleep(0.2)  # the candidate's own work, four times the budget
            return 0.5

        client.shadow("fraud-model", {"user_id": "a"}).candidate(slow)
        assert wait_count(seen, changed, 1)
        assert (seen[0].status, seen[0].score) == ("timeout", None)
        assert seen[0].latency_ms >= 200
        assert client.stats()["shadow_timeouts"] == 1


def test_shadow_options_are_checked() -> None:
    for option, value in (("shadow_workers", 0), ("shadow_timeout", -1), ("shadow_max_pending", 0)):
        with pytest.raises(rollwise.ConfigurationError, match=option):
            rollwise.Client("http://127.0.0.1:9", "rw_key", cache_dir=None, **{option: value})


# --- online: through the pipeline, exactly once ---


def shadow_the_flag(server: LiveServer, share: float) -> None:
    admin = server.session()
    url = f"{server.url}/api/v1/envs/production/flags/fraud-model"
    current = admin.get(url).json()
    admin.put(
        url,
        json={**example_flag(), "shadow": {"variant": "v2", "share": share}, "reason": "shadow"},
        headers={"If-Match": f'"{current["version"]}"'},
    ).raise_for_status()


def test_predictions_reach_the_server_exactly_once(server: LiveServer, tmp_path: Path) -> None:
    shadow_the_flag(server, 0.5)
    with make_client(server, tmp_path) as client:
        assert client.wait_until_ready(10)
        assert client.rules is not None
        assert client.rules.flags["fraud-model"].shadow is not None
        sampled = 0
        for i in range(400):
            context = {"user_id": f"user-{i}", "country": "US", "amount": 10}
            with client.shadow("fraud-model", context) as run:
                run.live(lambda: 0.1)
                sampled += run.candidate(lambda: 0.3)
        assert client.flush(20)
        stats = client.stats()
    assert 150 < sampled < 250
    db = connect(server.db)
    rows = db.execute(
        "SELECT role, variant, count(*), count(DISTINCT run), sum(score) FROM predictions"
        " GROUP BY role, variant ORDER BY role"
    ).fetchall()
    assert [tuple(r) for r in rows] == [
        ("live", "v1", sampled, sampled, pytest.approx(0.1 * sampled)),
        ("shadow", "v2", sampled, sampled, pytest.approx(0.3 * sampled)),
    ]
    unpaired = db.execute(
        "SELECT count(*) FROM (SELECT run FROM predictions GROUP BY run HAVING count(*) <> 2) AS r"
    ).fetchone()
    assert tuple(unpaired) == (0,)
    assert stats["predictions_sent"] == 2 * sampled
    assert stats["predictions_recorded"] == 2 * sampled


def test_predictions_go_through_the_spool_as_predictions(
    server: LiveServer, tmp_path: Path
) -> None:
    """With ``spool_first`` every batch is written to disk and replayed from there: the replay
    must send predictions to their own endpoint (as exposures they would all be refused)."""
    shadow_the_flag(server, 1.0)
    with make_client(server, tmp_path, spool_first=True) as client:
        assert client.wait_until_ready(10)
        for i in range(50):
            with client.shadow("fraud-model", {"user_id": f"user-{i}"}) as run:
                run.live(lambda: "legit")
                run.candidate(lambda: "fraud")
        assert client.flush(20)
        stats = client.stats()
    assert stats["events_replayed"] >= 100
    assert (stats["predictions_sent"], stats["predictions_rejected"]) == (100, 0)
    db = connect(server.db)
    rows = db.execute(
        "SELECT role, label, count(*) FROM predictions GROUP BY role, label ORDER BY role"
    ).fetchall()
    assert [tuple(r) for r in rows] == [("live", "legit", 50), ("shadow", "fraud", 50)]


def test_a_stuck_candidate_does_not_keep_the_application_from_exiting() -> None:
    program = f"""
import json, threading, rollwise
rules = {json.dumps(document({"variant": "v2", "share": 1.0}))!r}
client = rollwise.Client.offline(json.loads(rules))
started = threading.Event()
def stuck():
    started.set()
    threading.Event().wait()  # never returns
assert client.shadow("fraud-model", {{"user_id": "u"}}).candidate(stuck)
assert started.wait(10)
print("leaving")
"""
    done = subprocess.run(  # noqa: S603 - this interpreter, this test's own program
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "leaving\n", "")


def test_a_full_prediction_queue_drops_counts_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    from rollwise.shadow import PredictionLog

    log = PredictionLog(queue=True, max_queue=2)
    raw = (0.0, "f", 1, "v2", "shadow", "r", "user_id", "u", None, 0.5, 1.0, "ok", {})
    with caplog.at_level("WARNING", logger="rollwise"):
        for _ in range(5):
            log.put(raw)
    assert (len(log), log.recorded, log.dropped) == (2, 5, 3)
    assert caplog.text.count("the prediction queue is full") == 1  # once a minute, not per event
    assert [p.score for p in log.drain()] == [0.5, 0.5]
