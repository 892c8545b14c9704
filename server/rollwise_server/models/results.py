"""A flag's results for one metric: what ``GET …/flags/{key}/results`` answers.

The figures are ``rollwise.analysis.ReductionResult.to_json()`` (the SDK's analysis module,
which notebooks read too); this model is the HTTP answer's declaration, and the handler
encodes through it.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import UNSET, Meta, UnsetType

from rollwise_server.models.common import Key
from rollwise_server.models.metrics import MetricKind

__all__ = ["Diagnostics", "Results", "ResultsCell", "ResultsOverall"]

_UNITS = Meta(ge=0, description="Exposed units assigned here.")


class _Sums(msgspec.Struct, frozen=True):
    n: Annotated[int, Meta(ge=0, description="Units with a value (see kind).")]
    total: Annotated[float, Meta(description="Σx over those units.")]
    m2: Annotated[
        float,
        Meta(
            ge=0,
            description="Σ(x - x̄)², the centred sum of squares (variance = m2 / (n - 1)); "
            "centred so that it keeps its precision when the mean is large next to the spread.",
        ),
    ]
    den_total: Annotated[float, Meta(description="Σy (ratio: the denominator), else 0.")]
    den_m2: Annotated[float, Meta(ge=0, description="Σ(y - ȳ)² (ratio), else 0.")]
    comoment: Annotated[float, Meta(description="Σ(x - x̄)(y - ȳ) (ratio), else 0.")]


class ResultsOverall(_Sums, frozen=True):
    variant: str
    units: Annotated[int, _UNITS]


class ResultsCell(_Sums, frozen=True):
    variant: str
    cohort: str | None
    units: Annotated[int, _UNITS]


class Diagnostics(msgspec.Struct, frozen=True):
    units: Annotated[int, Meta(ge=0, description="Units kept.")]
    multiple_variants: Annotated[
        int, Meta(ge=0, description="Units exposed to more than one variant, left out.")
    ]


class Results(msgspec.Struct, frozen=True, omit_defaults=True):
    """Sufficient statistics per variant (overall) and per variant and cohort."""

    env: Key
    flag: Key
    metric: Key
    kind: MetricKind
    denominator: Key | None
    cohort: Annotated[str | None, Meta(description="The cohort attribute.")]
    bands: list[float] | None
    window: Annotated[str, Meta(description="The attribution window, e.g. 2w, none.")]
    window_seconds: float | None
    variants: list[str]
    overall: list[ResultsOverall]
    cells: Annotated[
        list[ResultsCell],
        Meta(
            description="One per variant and cohort; cohort null: the attribute is absent, null "
            "or (with bands) not a number, or no cohort was asked for."
        ),
    ]
    diagnostics: Diagnostics
    cross: str | UnsetType = UNSET
    cross_bands: list[float] | UnsetType | None = UNSET
