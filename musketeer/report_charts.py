"""The compare report's charts: matplotlib, written as SVG.

SVG from matplotlib needs no JavaScript and nothing from the network, so
the report opens anywhere, offline, and prints. Text stays text
(`svg.fonttype = none`): it is searchable, selectable and crisp at any
zoom. Times differ by orders of magnitude between engines (0.1 s local,
60 s Spark), so totals are drawn on a log scale with each bar's value
written next to it; the breakdown of one run is drawn per engine on its
own linear scale, where parts of one total are comparable.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

from musketeer.plan_picture import COLOURS as STAGE_COLOURS

MEASURED = "#1f78b4"
PREDICTED = "#a6cee3"
FAILED = "#d62728"
#: Colours of the phases of a measured run and of a prediction.
PHASES = {"process start": "#b2b2b2", "generate": "#fdbf6f", "load program": "#cab2d6", "run": "#1f78b4",
          "start-up (predicted)": "#d9d9d9", "compute (predicted)": "#a6cee3"}


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=96, layout="constrained")


def _svg(fig: Any) -> str:
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "musketeer"}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    start = text.find("<svg")
    return text[start:] if start >= 0 else text


def seconds_label(x: float) -> str:
    """A duration as a person writes it: 145 s, 12.6 s, 0.76 s, 5 ms, 10 µs."""
    if x == 0:
        return "0"
    if x >= 100:
        return f"{x:,.0f} s"
    if x >= 10:
        return f"{x:.1f} s"
    if x >= 0.1:
        return f"{x:.2f} s"
    if x >= 1e-3:
        return f"{x * 1000:.3g} ms"
    return f"{x * 1e6:.3g} µs"


def _style(ax: Any) -> None:
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    ax.grid(axis="x", which="major", color="#dddddd", linewidth=0.8)
    ax.set_axisbelow(True)


def totals_chart(runs: Sequence[Any]) -> str:
    """Measured vs predicted seconds per backend: horizontal bars on a log
    axis, the value at each bar's end, a legend; a failed backend is a red
    'failed' label instead of a measured bar."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    names = [r.backend for r in runs]
    fig = _figure(8.0, 0.75 + 0.62 * len(runs))
    ax = fig.add_subplot()
    values = [v for r in runs for v in (r.measured, r.predicted)
              if r.error is None and math.isfinite(v) and v > 0] + \
             [r.predicted for r in runs if math.isfinite(r.predicted) and r.predicted > 0]
    low = min(values, default=0.1)
    high = max(values, default=1.0)
    left = 10 ** math.floor(math.log10(low * 0.8))
    right = 10 ** math.ceil(math.log10(high * 3.0))
    h = 0.38
    for i, r in enumerate(runs):
        y = len(runs) - 1 - i
        bars = []
        if r.error is None:
            bars.append((y + h / 2, r.measured, MEASURED, "measured"))
        if math.isfinite(r.predicted) and r.predicted > 0:
            bars.append((y - h / 2, r.predicted, PREDICTED, "predicted (explain)"))
        for yy, value, colour, label in bars:
            value = max(value, left)
            ax.barh(yy, value - left, left=left, height=h, color=colour, edgecolor="#333333", linewidth=0.5,
                    label=label if i == 0 or not ax.get_legend_handles_labels()[1].count(label) else None)
            ax.text(value * 1.08, yy, seconds_label(value), va="center", ha="left", fontsize=9)
        if r.error is not None:
            ax.text(left * 1.1, y + h / 2, "failed: " + _short(r.error, 60), va="center", ha="left", fontsize=9,
                    color=FAILED, fontweight="bold")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    if not any(r.error is None for r in runs) and "measured" not in unique:
        from matplotlib.patches import Patch

        unique = {"measured": Patch(color=MEASURED), **unique}
    # above the bars, right of the title: never over a bar or a failure label
    ax.legend(unique.values(), unique.keys(), loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2, fontsize=9,
              frameon=False)
    ax.set_xscale("log")
    ax.set_xlim(left, right)
    ax.xaxis.set_major_locator(LogLocator(base=10))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: seconds_label(x)))
    ax.set_yticks(range(len(runs)), list(reversed(names)), fontsize=10)
    ax.set_xlabel("seconds for the whole run (log scale)", fontsize=9)
    ax.set_title("Measured vs predicted, per engine", fontsize=11, loc="left")
    _style(ax)
    return _svg(fig)


def breakdown_chart(runs: Sequence[Any]) -> str:
    """Where the time goes, one panel per engine on its own linear axis:
    the prediction split into start-up and compute, the measured run into
    process start, generate, load program and run."""
    ok = [r for r in runs if r.error is None]
    if not ok:
        return ""
    fig = _figure(8.0, 0.4 + 1.25 * len(ok))
    axes = fig.subplots(len(ok), 1, squeeze=False)[:, 0]
    for ax, r in zip(axes, ok):
        predicted = {"start-up (predicted)": min(r.predicted_startup, r.predicted),
                     "compute (predicted)": max(0.0, r.predicted - r.predicted_startup)} \
            if math.isfinite(r.predicted) else {}
        top = max(r.measured, r.predicted if math.isfinite(r.predicted) else 0.0, 1e-6)
        for y, parts in ((1, dict(r.phases)), (0, predicted)):
            left = 0.0
            for name, value in parts.items():
                if value <= 0:
                    continue
                ax.barh(y, value, left=left, height=0.62, color=PHASES.get(name, "#999999"), edgecolor="white",
                        linewidth=0.6, label=name)
                if value / top > 0.09:
                    ax.text(left + value / 2, y, seconds_label(value), va="center", ha="center", fontsize=8)
                left += value
            if parts:
                ax.text(left + top * 0.01, y, seconds_label(left), va="center", ha="left", fontsize=8,
                        fontweight="bold")
        ax.set_yticks([0, 1], ["predicted", "measured"], fontsize=9)
        ax.set_xlim(0, top * 1.16)
        ax.set_title(r.backend, fontsize=10, loc="left", fontweight="bold")
        ax.xaxis.set_major_formatter(_formatter())
        _style(ax)
    handles: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    order = [k for k in PHASES if k in handles]
    fig.legend([handles[k] for k in order], order, loc="outside lower center", ncol=3, fontsize=8, frameon=False)
    axes[-1].set_xlabel("seconds (each engine on its own scale)", fontsize=9)
    return _svg(fig)


def stages_chart(stages: Sequence[Any], startups: Sequence[float]) -> str:
    """The chosen plan's stages: each stage's estimated seconds (as explain
    prints them), labelled with its operator count and its engine's
    start-up (the planner charges it once per engine)."""
    if not stages:
        return ""
    fig = _figure(8.0, 0.7 + 0.45 * len(stages))
    ax = fig.add_subplot()
    top = max([s.estimate for s in stages] + [1e-6])
    for i, (stage, startup) in enumerate(zip(stages, startups)):
        y = len(stages) - 1 - i
        colour = STAGE_COLOURS.get(stage.backend, "#bbbbbb")
        ax.barh(y, stage.estimate, height=0.6, color=colour, edgecolor="#333333", linewidth=0.5)
        note = f"{seconds_label(stage.estimate)}, {len(stage.ops)} ops"
        if startup > 0:
            note += f" (engine start-up {seconds_label(startup)})"
        ax.text(stage.estimate + top * 0.01, y, note, va="center", ha="left", fontsize=8)
    ax.set_yticks(range(len(stages)), [f"stage {n}: {s.backend}" for n, s in reversed(list(enumerate(stages)))],
                  fontsize=9)
    ax.set_xlim(0, top * 1.6)
    ax.xaxis.set_major_formatter(_formatter())
    ax.set_xlabel("estimated seconds per stage", fontsize=9)
    ax.set_title("The plan's stages (estimated)", fontsize=10, loc="left")
    _style(ax)
    return _svg(fig)


def _formatter() -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda x, _: seconds_label(x) if x > 0 else "0")


def _short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
