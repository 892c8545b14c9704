"""``rollwise.analysis``: honest statistics for rollouts (``pip install 'rollwise[analysis]'``).

Names are loaded on first use (PEP 562), so ``import rollwise.analysis.sequential`` (the
always-valid math, used by the server's controller) does not import statsmodels or pandas.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the lazy names, for type checkers (kept in step with _HOMES by a test)
    from rollwise.analysis.compare import Comparison, at_level, compare, verdict, verdict_reason
    from rollwise.analysis.fairness import (
        CohortEffects,
        SelectionParity,
        band_labels,
        bands,
        cohort_effects,
        gap_change,
        parity_change,
        selection_parity,
    )
    from rollwise.analysis.fixed_horizon import correct, sample_size_binary, sample_size_mean
    from rollwise.analysis.monitoring import (
        Cusum,
        DecaySimulation,
        cusum_threshold,
        decay_score,
        mix_score,
        simulate_decay,
    )
    from rollwise.analysis.multiarm import MultiArmComparison, compare_arms, holm
    from rollwise.analysis.paired import PairedStats, compare_paired
    from rollwise.analysis.plots import plot_confidence_sequence, plot_forest
    from rollwise.analysis.reduce import cohort_sort_key
    from rollwise.analysis.report import MetricSpec, Report, ReportRow, SRMCheck
    from rollwise.analysis.sequential import (
        AlwaysValid,
        MonitorLook,
        SequentialMonitor,
        always_valid,
    )
    from rollwise.analysis.srm import SequentialSRM, srm_chi2
    from rollwise.analysis.suffstats import SufficientStats

__all__ = [
    "AlwaysValid",
    "CohortEffects",
    "Comparison",
    "Cusum",
    "DecaySimulation",
    "MetricSpec",
    "MonitorLook",
    "MultiArmComparison",
    "PairedStats",
    "Report",
    "ReportRow",
    "SRMCheck",
    "SelectionParity",
    "SequentialMonitor",
    "SequentialSRM",
    "SufficientStats",
    "always_valid",
    "at_level",
    "band_labels",
    "bands",
    "cohort_effects",
    "cohort_sort_key",
    "compare",
    "compare_arms",
    "compare_paired",
    "correct",
    "cusum_threshold",
    "decay_score",
    "gap_change",
    "holm",
    "mix_score",
    "parity_change",
    "plot_confidence_sequence",
    "plot_forest",
    "sample_size_binary",
    "sample_size_mean",
    "selection_parity",
    "simulate_decay",
    "srm_chi2",
    "verdict",
    "verdict_reason",
]

_HOMES = {
    "AlwaysValid": "sequential",
    "SequentialMonitor": "sequential",
    "always_valid": "sequential",
    "Comparison": "compare",
    "compare": "compare",
    "verdict": "compare",
    "verdict_reason": "compare",
    "at_level": "compare",
    "cohort_sort_key": "reduce",
    "SufficientStats": "suffstats",
    "SequentialSRM": "srm",
    "srm_chi2": "srm",
    "correct": "fixed_horizon",
    "sample_size_binary": "fixed_horizon",
    "sample_size_mean": "fixed_horizon",
    "MonitorLook": "sequential",
    "PairedStats": "paired",
    "compare_paired": "paired",
    "CohortEffects": "fairness",
    "SelectionParity": "fairness",
    "band_labels": "fairness",
    "bands": "fairness",
    "cohort_effects": "fairness",
    "gap_change": "fairness",
    "parity_change": "fairness",
    "selection_parity": "fairness",
    "MetricSpec": "report",
    "Report": "report",
    "ReportRow": "report",
    "SRMCheck": "report",
    "plot_confidence_sequence": "plots",
    "plot_forest": "plots",
    "Cusum": "monitoring",
    "DecaySimulation": "monitoring",
    "cusum_threshold": "monitoring",
    "decay_score": "monitoring",
    "mix_score": "monitoring",
    "simulate_decay": "monitoring",
    "MultiArmComparison": "multiarm",
    "compare_arms": "multiarm",
    "holm": "multiarm",
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


class _Package(types.ModuleType):
    """Keeps ``rollwise.analysis.compare`` the function when its submodule is imported.

    Importing a submodule binds it as an attribute of the package, so after
    ``import rollwise.analysis.compare`` (or any lazy name from it, such as ``Comparison``)
    ``from rollwise.analysis import compare`` would return the module, not the function.
    """

    def __setattr__(self, name: str, value: object) -> None:
        if isinstance(value, types.ModuleType) and _HOMES.get(name) == name:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
