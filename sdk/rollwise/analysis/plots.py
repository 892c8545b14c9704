"""matplotlib figures: the confidence sequence of a comparison over looks, and forest plots.

Figures are made with the object-oriented API (``matplotlib.figure.Figure``), without pyplot's
global state, so they work on any backend (Agg in tests); notebooks display the returned
Figure. Nothing here computes statistics: the numbers come from ``SequentialMonitor`` and
``Report``. Nor does anything here reorder rows: forest plots draw them top to bottom in the
order given, which for ``Report.plot`` is the report's (cohorts by
``reduce.cohort_sort_key``: amount bands by their edges).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from matplotlib.figure import Figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from rollwise.analysis.compare import Comparison
    from rollwise.analysis.sequential import MonitorLook

__all__ = ["plot_confidence_sequence", "plot_forest", "report_figure"]

_VERDICT_COLOURS = {"harm": "#c62828", "improvement": "#2e7d32", "insufficient data": "#9e9e9e"}


def _figure_of(ax: Axes) -> Figure:
    figure = ax.get_figure(root=True)
    if not isinstance(figure, Figure):  # pragma: no cover - an Axes always has one
        raise TypeError("ax: not attached to a Figure")
    return figure


def plot_confidence_sequence(
    history: Sequence[MonitorLook],
    *,
    ax: Axes | None = None,
    title: str | None = None,
    harm_direction: Literal["increase", "decrease"] | None = None,
) -> Figure:
    """Each look's always-valid interval, the running intersection and the estimate.

    The x axis is the number of units compared (control + candidate) at each look; looks with
    insufficient data are left out. With ``harm_direction``, the harmful side of 0 is shaded.
    """
    if ax is None:
        figure = Figure(figsize=(7, 4), layout="constrained")
        ax = figure.add_subplot()
    looks = [look for look in history if not look.result.insufficient]
    units = [look.result.n_control + look.result.n_candidate for look in looks]
    if looks:
        effect = [look.result.effect for look in looks]
        ax.fill_between(
            units, [look.result.ci_low for look in looks],
            [look.result.ci_high for look in looks], alpha=0.2, color="#1565c0",
            label="this look's interval",
        )  # fmt: skip
        ax.plot(units, [look.running_ci_low for look in looks], color="#0d47a1",
                label="running intersection")  # fmt: skip
        ax.plot(units, [look.running_ci_high for look in looks], color="#0d47a1")
        ax.plot(units, effect, color="black", linewidth=1, label="estimate")
        low, high = ax.get_ylim()
        if harm_direction is not None:
            if harm_direction == "increase":
                ax.axhspan(0, max(high, 0), color="#c62828", alpha=0.06, label="harm side")
            else:
                ax.axhspan(min(low, 0), 0, color="#c62828", alpha=0.06, label="harm side")
            ax.set_ylim(low, high)
        ax.legend(loc="best", fontsize="small")
    else:
        ax.text(0.5, 0.5, "no look with enough data", ha="center", va="center",
                transform=ax.transAxes)  # fmt: skip
    ax.axhline(0, color="grey", linewidth=0.8, linestyle="--")
    ax.set_xlabel("units compared (control + candidate)")
    ax.set_ylabel("effect (candidate − control)")
    ax.set_title(title or "Always-valid confidence sequence")
    return _figure_of(ax)


def plot_forest(
    rows: Sequence[tuple[str, Comparison, str]],
    *,
    ax: Axes | None = None,
    title: str | None = None,
    own: Sequence[Comparison] | None = None,
    tolerance: float | None = None,
) -> Figure:
    """A forest plot: one interval per ``(label, comparison, verdict)``, top to bottom.

    Harm is drawn in red, improvement in green; rows with insufficient data are marked in
    grey at 0 with no interval. ``own`` (one per row): a second, narrower interval of the same
    estimate drawn as a thick bar inside the first (a report's own interval inside the
    adjusted one its verdict reads). ``tolerance``: a dotted line at that effect.
    """
    if own is not None and len(own) != len(rows):
        raise ValueError("own: needs one comparison per row")
    if ax is None:
        figure = Figure(figsize=(7, 0.9 + 0.32 * max(len(rows), 1)), layout="constrained")
        ax = figure.add_subplot()
    n = len(rows)
    for i, (_, result, reading) in enumerate(rows):
        y = n - 1 - i
        colour = _VERDICT_COLOURS.get(reading, "#212121")
        if result.insufficient or not (math.isfinite(result.ci_low) and
                                       math.isfinite(result.ci_high)):  # fmt: skip
            ax.plot([0], [y], marker="x", color=colour)
            ax.annotate("insufficient data", (0, y), xytext=(6, -3), textcoords="offset points",
                        fontsize="small", color=colour)  # fmt: skip
            continue
        ax.errorbar(
            [result.effect], [y],
            xerr=[[result.effect - result.ci_low], [result.ci_high - result.effect]],
            fmt="o", color=colour, capsize=3, markersize=4,
        )  # fmt: skip
        inner = None if own is None else own[i]
        if inner is not None and not inner.insufficient:
            ax.plot([inner.ci_low, inner.ci_high], [y, y], color=colour, linewidth=4,
                    alpha=0.35, solid_capstyle="butt")  # fmt: skip
    ax.axvline(0, color="grey", linewidth=0.8, linestyle="--")
    if tolerance is not None:
        ax.axvline(tolerance, color="#c62828", linewidth=0.8, linestyle=":")
    ax.set_yticks(range(n), [label for label, _, _ in reversed(rows)])
    ax.set_ylim(-0.7, n - 0.3)
    what = "the interval the verdict reads (thick: own)" if own is not None else "its interval"
    ax.set_xlabel(f"effect (candidate − control) and {what}")
    ax.set_title(title or "Cohort effects and gap changes")
    return _figure_of(ax)


def report_figure(
    *,
    metric: str,
    rows: Sequence[tuple[str, Comparison, str]],
    history: Sequence[MonitorLook] | None,
    harm_direction: Literal["increase", "decrease"],
    title: str,
    own: Sequence[Comparison] | None = None,
    tolerance: float = 0.0,
) -> Figure:
    """``Report.plot``: the confidence sequence (when there is a history) beside the forest.

    ``rows`` carry the adjusted intervals the verdicts read, ``own`` the rows' own intervals;
    a positive ``tolerance`` is drawn on the harmful side."""
    columns = 2 if history else 1
    figure = Figure(figsize=(7 * columns, 1.2 + 0.32 * max(len(rows), 8)), layout="constrained")
    axes = figure.subplots(1, columns, squeeze=False)[0]
    if history:
        plot_confidence_sequence(
            history, ax=axes[0], harm_direction=harm_direction, title=f"{metric} over looks"
        )
    line = None if tolerance <= 0 else (tolerance if harm_direction == "increase" else -tolerance)
    plot_forest(
        rows, ax=axes[-1], title=f"{metric}: overall, cohorts and gap changes", own=own,
        tolerance=line,
    )  # fmt: skip
    figure.suptitle(title)
    return figure
