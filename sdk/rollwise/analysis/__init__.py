"""``rollwise.analysis``: honest statistics for rollouts (``pip install 'rollwise[analysis]'``).

Names are loaded on first use (PEP 562), so ``import rollwise.analysis.sequential`` (the
always-valid math, used by the server's controller) does not import statsmodels or pandas.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "AlwaysValid",
    "Comparison",
    "SequentialMonitor",
    "SequentialSRM",
    "SufficientStats",
    "always_valid",
    "compare",
    "correct",
    "sample_size_binary",
    "sample_size_mean",
    "srm_chi2",
    "verdict",
]

_HOMES = {
    "AlwaysValid": "sequential",
    "SequentialMonitor": "sequential",
    "always_valid": "sequential",
    "Comparison": "compare",
    "compare": "compare",
    "verdict": "compare",
    "SufficientStats": "suffstats",
    "SequentialSRM": "srm",
    "srm_chi2": "srm",
    "correct": "fixed_horizon",
    "sample_size_binary": "fixed_horizon",
    "sample_size_mean": "fixed_horizon",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'rollwise.analysis' has no attribute {name!r}")
    try:
        module = importlib.import_module(f"rollwise.analysis.{home}")
    except ImportError as exc:
        raise ImportError(
            f"rollwise.analysis.{name} needs {exc.name}: pip install 'rollwise[analysis]'"
        ) from exc
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
