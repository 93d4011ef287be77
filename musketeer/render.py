"""Print a result DataFrame as an aligned text table.

`musketeer run` without `--output` is how people look at results, so the
table shows SQL's view of the data: NULL for missing values (pandas would say
<NA> or NaN), ISO dates, numbers right-aligned, and a row count footer. Long
results are cut at `max_rows` with a note, never silently.
"""

from __future__ import annotations

import datetime as dt
import decimal
import html
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pandas is imported where a table is rendered: `musketeer --help` never pays for it
    import pandas as pd

DEFAULT_MAX_ROWS = 100
MAX_CELL_WIDTH = 60


def format_value(value: Any, nan_is_null: bool = False) -> str:
    """One cell. `nan_is_null` is for numpy-backed columns, where pandas
    itself uses NaN for a missing value; Arrow-backed columns keep a real
    NaN (0.0 / 0.0) apart from NULL."""
    import pandas as pd

    if value is None or value is pd.NA or value is pd.NaT:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NULL" if nan_is_null else "NaN"
        # 12 significant digits hide binary noise (0.1 + 0.2) but keep cents;
        # a whole number keeps its ".0" so a float column reads as one.
        text = format(value, ".12g")
        return text + ".0" if text.lstrip("-").isdigit() else text
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value)
    if len(text) > MAX_CELL_WIDTH:
        text = text[: MAX_CELL_WIDTH - 3] + "..."
    return text.replace("\n", "\\n").replace("\t", "\\t")


def _is_numeric(series: pd.Series) -> bool:
    import pandas as pd

    try:
        return pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype)
    except TypeError:
        return False


def format_table(df: pd.DataFrame, max_rows: int | None = DEFAULT_MAX_ROWS) -> str:
    """The whole table as text, ending with a newline; `max_rows` None = all."""
    import pandas as pd

    total = len(df)
    shown = df if max_rows is None or total <= max_rows else df.head(max_rows)
    names = [str(c) for c in df.columns]
    columns = [
        [format_value(v, not isinstance(shown.dtypes.iloc[i], pd.ArrowDtype)) for v in shown.iloc[:, i].tolist()]
        for i in range(len(names))
    ]
    right = [_is_numeric(df.iloc[:, i]) for i in range(len(names))]
    widths = [max([len(n), *map(len, col)]) for n, col in zip(names, columns)]

    def row(cells: list[str]) -> str:
        parts = [c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right)]
        return " | ".join(parts).rstrip()

    lines = [row(names), "-+-".join("-" * w for w in widths)]
    lines += [row([col[n] for col in columns]) for n in range(len(shown))]
    if len(shown) < total:
        lines.append(f"({total:,} rows, showing first {len(shown):,}; use --max-rows to see more)")
    else:
        lines.append(f"({total:,} row{'' if total == 1 else 's'})")
    return "\n".join(lines) + "\n"


#: What each timing measures, printed after its value by `--metrics`, in
#: the order the phases happen.
METRIC_LABELS: dict[str, str] = {
    "parse_seconds": "parse: workflow file -> IR",
    "optimize_seconds": "optimize: IR passes",
    "generate_seconds": "generate: IR -> the engine's program",
    "run_seconds": "run: load and run the program, engine start included; under auto, generate too",
    "write_seconds": "write: output files",
    "seconds": "the program's run() alone, inside the run phase",
}


def format_metrics(metrics: dict[str, Any]) -> str:
    """`--metrics`: one `name: value` line per metric, nested dicts flattened
    with dots, seconds with millisecond precision; the timings first, in
    the order the phases happen, each labelled with what it measures."""
    lines = ["metrics:"]

    def add(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                add(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, float):
            label = METRIC_LABELS.get(prefix)
            text = f"  {prefix}: {value:.3f}"
            lines.append(f"{text:<28}  ({label})" if label else text)
        else:
            lines.append(f"  {prefix}: {value}")

    shown = {k: v for k, v in metrics.items() if k != "warnings"}
    order = {k: n for n, k in enumerate(METRIC_LABELS)}
    add("", dict(sorted(shown.items(), key=lambda kv: order.get(kv[0], len(order)))))
    return "\n".join(lines) + "\n"


# --- HTML, for notebooks (Dataset._repr_html_, Result._repr_html_) -------------

HTML_MAX_ROWS = 20


def html_table(df: pd.DataFrame, max_rows: int | None = HTML_MAX_ROWS) -> str:
    """The result as an HTML table with the same cell text as `format_table`
    (NULL, ISO dates, numbers right-aligned) and the same row-count note."""
    import pandas as pd

    total = len(df)
    shown = df if max_rows is None or total <= max_rows else df.head(max_rows)
    names = [str(c) for c in df.columns]
    right = [_is_numeric(df.iloc[:, i]) for i in range(len(names))]
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    body = []
    for n in range(len(shown)):
        cells = []
        for i in range(len(names)):
            text = format_value(shown.iloc[n, i], not isinstance(shown.dtypes.iloc[i], pd.ArrowDtype))
            style = ' style="text-align:right"' if right[i] else ""
            cells.append(f"<td{style}>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    if len(shown) < total:
        note = f"{total:,} rows, showing first {len(shown):,}"
    else:
        note = f"{total:,} row{'' if total == 1 else 's'}"
    return (f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
            f"<p><small>({note})</small></p>")


def result_html(outputs: dict[str, pd.DataFrame], metrics: dict[str, Any]) -> str:
    """Each output as a table (the result first), then the metrics folded."""
    names = sorted(outputs, key=lambda n: (n != "result", n))
    parts = ['<div class="musketeer-result">']
    for name in names:
        if len(names) > 1 or name != "result":
            parts.append(f"<h4>{html.escape(name)}</h4>")
        parts.append(html_table(outputs[name]))
    if metrics:
        parts.append("<details><summary>metrics</summary><pre>"
                     f"{html.escape(format_metrics(metrics))}</pre></details>")
    parts.append("</div>")
    return "".join(parts)


def dataset_html(schema: Any, plan_text: str) -> str:
    """A lazy dataset: its columns and types, and its plan folded."""
    rows = "".join(f"<tr><td>{html.escape(f.name)}</td><td>{html.escape(str(f.dtype))}</td>"
                   f"<td>{'yes' if f.nullable else 'no'}</td></tr>" for f in schema)
    operators = sum(1 for line in plan_text.splitlines() if line.lstrip().startswith("%"))
    return ('<div class="musketeer-dataset"><p><b>musketeer Dataset</b> (lazy: nothing has run; '
            "<code>.collect()</code> runs it)</p>"
            f"<table><thead><tr><th>column</th><th>type</th><th>nullable</th></tr></thead><tbody>{rows}</tbody>"
            f"</table><details><summary>plan ({operators} operator{'' if operators == 1 else 's'})</summary>"
            f"<pre>{html.escape(plan_text)}</pre></details></div>")
