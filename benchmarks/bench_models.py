"""Which typed-model library declares the HTTP API's shapes (issue 13, item 2).

The same request shape — a rollout plan body (stages, guardrails with cohorts and bands: the
largest admin body after a flag) — is declared twice, as msgspec ``Struct``s and as attrs
classes structured by cattrs (``detailed_validation``, unknown keys forbidden), and each
library decodes and validates the same JSON bytes: a valid body, and one with an error in the
last guardrail. Figures: the median of ``--repeat`` runs of ``--number`` decodes each. The
script also reports whether each library produces the JSON Schema the OpenAPI document needs.

    ../.venv/bin/python bench_models.py [--number 2000] [--repeat 7]

Needs ``pip install msgspec cattrs`` (the ``bench`` extra has cattrs; the server has msgspec).
"""

from __future__ import annotations

import argparse
import json
import statistics
import timeit
from typing import Annotated, Any, Literal

import attrs
import cattrs
import msgspec

# --- msgspec ------------------------------------------------------------------------------


class MStage(msgspec.Struct, forbid_unknown_fields=True):
    share: Annotated[float, msgspec.Meta(gt=0, le=1)]
    min_duration: float | str = 0.0
    min_units: Annotated[int, msgspec.Meta(ge=0)] = 0
    approval: bool = False


class MGuardrail(msgspec.Struct, forbid_unknown_fields=True):
    metric: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    kind: Literal["binary", "mean", "count", "ratio"] | None = None
    harm: Literal["increase", "decrease"] | None = None
    tolerance: float | None = None
    relative: bool = False
    cohorts: list[str] = []
    bands: dict[str, list[float]] = {}
    values: dict[str, list[str]] = {}


class MPlan(msgspec.Struct, forbid_unknown_fields=True):
    control: str
    candidate: str
    rule: str
    stages: Annotated[list[MStage], msgspec.Meta(min_length=1, max_length=20)]
    guardrails: Annotated[list[MGuardrail], msgspec.Meta(max_length=20)] = []
    srm: bool = True
    alpha: Annotated[float, msgspec.Meta(gt=0, le=0.5)] = 0.05
    on_breach: Literal["rollback", "pause"] = "rollback"
    reason: str | None = None


# --- attrs + cattrs ------------------------------------------------------------------------


def _between(lo: float, hi: float) -> Any:
    def check(instance: Any, attribute: Any, value: float) -> None:
        if not lo < value <= hi:
            raise ValueError(f"{attribute.name}: must be in ({lo}, {hi}]")

    return check


@attrs.frozen
class AStage:
    share: float = attrs.field(validator=_between(0, 1))
    min_duration: float | str = 0.0
    min_units: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    approval: bool = False


@attrs.frozen
class AGuardrail:
    metric: str = attrs.field(validator=attrs.validators.min_len(1))
    kind: Literal["binary", "mean", "count", "ratio"] | None = None
    harm: Literal["increase", "decrease"] | None = None
    tolerance: float | None = None
    relative: bool = False
    cohorts: list[str] = attrs.field(factory=list)
    bands: dict[str, list[float]] = attrs.field(factory=dict)
    values: dict[str, list[str]] = attrs.field(factory=dict)


@attrs.frozen
class APlan:
    control: str
    candidate: str
    rule: str
    stages: list[AStage] = attrs.field(validator=attrs.validators.min_len(1))
    guardrails: list[AGuardrail] = attrs.field(factory=list)
    srm: bool = True
    alpha: float = attrs.field(default=0.05, validator=_between(0, 0.5))
    on_breach: Literal["rollback", "pause"] = "rollback"
    reason: str | None = None


CONVERTER = cattrs.Converter(detailed_validation=True, forbid_extra_keys=True)


def _duration(value: Any, _: Any) -> float | str:
    if isinstance(value, bool) or not isinstance(value, float | int | str):
        raise ValueError("must be seconds or a duration such as 1h")
    return value


CONVERTER.register_structure_hook(float | str, _duration)  # cattrs needs a hook for this union


def body(bad: bool) -> bytes:
    guardrails = [
        {"metric": f"m{i}", "tolerance": -0.01, "relative": True,
         "cohorts": ["country", "amount"], "bands": {"amount": [0, 100, 500, 1000]},
         "values": {"country": ["DE", "FR", "NL", "IT", "ES"]}}
        for i in range(6)
    ]  # fmt: skip
    if bad:
        guardrails[-1]["relative"] = "yes"
    plan = {
        "control": "v1", "candidate": "v2", "rule": "main",
        "stages": [{"share": s, "min_duration": "1h", "min_units": 500, "approval": s == 0.5}
                   for s in (0.01, 0.05, 0.2, 0.5, 1.0)],
        "guardrails": guardrails, "alpha": 0.05, "reason": "ship the candidate",
    }  # fmt: skip
    return json.dumps(plan).encode()


def with_msgspec(raw: bytes) -> str | None:
    try:
        msgspec.json.decode(raw, type=MPlan)
    except msgspec.ValidationError as exc:
        return str(exc)
    return None


def with_cattrs(raw: bytes) -> str | None:
    try:
        CONVERTER.structure(json.loads(raw), APlan)
    except Exception as exc:  # noqa: BLE001 - cattrs raises exception groups
        return "; ".join(cattrs.transform_error(exc))
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    good, bad = body(False), body(True)
    print(f"plan body: {len(good)} bytes, 5 stages, 6 guardrails")
    for name, decode in (("msgspec", with_msgspec), ("attrs+cattrs", with_cattrs)):
        if decode(good) is not None:
            raise SystemExit(f"{name} refused the valid body: {decode(good)}")
        for label, raw in (("valid", good), ("invalid", bad)):
            runs = timeit.repeat(
                lambda r=raw, d=decode: d(r), number=args.number, repeat=args.repeat
            )
            micros = statistics.median(runs) / args.number * 1e6
            print(f"{name:>13} {label:>8}: {micros:7.1f} µs per body")
        print(f"{'':>13} error: {decode(bad) or 'none: the invalid body was accepted'}")
    schema = msgspec.json.schema(MPlan)
    print(f"msgspec JSON Schema: {len(json.dumps(schema))} bytes, $defs {sorted(schema['$defs'])}")
    print("cattrs JSON Schema: none (cattrs structures and unstructures; it has no schema output)")


if __name__ == "__main__":
    main()
