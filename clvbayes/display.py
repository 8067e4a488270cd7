"""Rich displays in Jupyter: the escaped HTML pieces every ``_repr_html_`` is made of.

Fitted models, specs, prediction results, holdout reports and comparisons show as small
HTML cards in a notebook (``_repr_html_``) and as one short line in a terminal
(``__repr__``). Everything here is cheap (no sampling, no sorting of draws) and escapes
every value it prints: labels such as customer ids or segment names come from the
user's data. The markup is well-formed XML (every tag closed), with inline styles and no
scripts.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping
from numbers import Integral, Real
from typing import Any

__all__ = [
    "badge",
    "card",
    "draws_table",
    "escape",
    "format_value",
    "frame_table",
    "items_table",
    "shorten",
]

_TABLE = 'style="border-collapse:collapse;margin:0.2em 0 0.6em 0;font-size:0.9em"'
_CELL = 'style="padding:0.1em 0.6em;text-align:right;border-bottom:1px solid #8883"'
_HEAD = 'style="padding:0.1em 0.6em;text-align:right;border-bottom:1px solid #888"'
_LABEL = 'style="padding:0.1em 0.6em;text-align:left;border-bottom:1px solid #8883"'
_COLOURS = {"ok": "#1a7f37", "bad": "#c62828", "warn": "#b26a00", "info": "#555"}


def escape(value: Any) -> str:
    """``str(value)`` with ``& < > " '`` escaped for HTML."""
    return html.escape(str(value), quote=True)


def format_value(value: Any) -> str:
    """A number or label as short escaped text: integers and numbers from 1,000 up with
    thousands separators and no decimals, other floats to four significant digits,
    missing values as an en dash."""
    if isinstance(value, bool) or getattr(getattr(value, "dtype", None), "kind", "") == "b":
        return "yes" if value else "no"
    if isinstance(value, Integral):
        return f"{int(value):,}"
    if isinstance(value, Real):
        number = float(value)
        if math.isnan(number):
            return "&#8211;"
        if math.isinf(number):
            return "&#8734;" if number > 0 else "&#8722;&#8734;"
        if abs(number) >= 1e3 or number.is_integer():
            return f"{number:,.0f}"
        return f"{number:.4g}"
    if value is None:
        return "&#8211;"
    return escape(value)


def shorten(names: Iterable[Any], limit: int = 6) -> str:
    """The first ``limit`` names joined by commas, then ``...`` (not escaped)."""
    names = [str(n) for n in names]
    more = len(names) - limit
    return ", ".join(names[:limit]) + (f", ... (+{more})" if more > 0 else "")


def badge(text: str, state: str = "info") -> str:
    """A coloured label; ``state`` is ``"ok"``, ``"warn"``, ``"bad"`` or ``"info"``."""
    colour = _COLOURS[state]
    return (
        f'<span class="clvbayes-badge clvbayes-{state}" style="display:inline-block;'
        f"padding:0.05em 0.5em;border-radius:0.7em;color:#fff;background:{colour};"
        f'font-size:0.85em">{escape(text)}</span>'
    )


def frame_table(frame: Any, *, max_rows: int = 10, index: bool = True) -> str:
    """A pandas DataFrame as an escaped HTML table (the first ``max_rows`` rows)."""
    columns = list(frame.columns)
    head = "".join(f"<th {_HEAD}>{escape(c)}</th>" for c in columns)
    if index:
        name = frame.index.name
        head = f"<th {_HEAD}>{'' if name is None else escape(name)}</th>" + head
    rows = []
    shown = frame.iloc[:max_rows]
    labels = list(shown.index)
    for position, values in enumerate(shown.itertuples(index=False, name=None)):
        cells = "".join(f"<td {_CELL}>{format_value(v)}</td>" for v in values)
        if index:
            cells = f"<th {_LABEL}>{escape(labels[position])}</th>" + cells
        rows.append(f"<tr>{cells}</tr>")
    more = len(frame) - len(shown)
    if more > 0:
        span = len(columns) + int(index)
        rows.append(f'<tr><td {_LABEL} colspan="{span}">... {more:,} more rows</td></tr>')
    return f"<table {_TABLE}><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def items_table(items: Mapping[str, Any]) -> str:
    """Names and values as a two-column escaped table."""
    rows = "".join(
        f"<tr><th {_LABEL}>{escape(k)}</th><td {_LABEL}>{format_value(v)}</td></tr>"
        for k, v in items.items()
    )
    return f"<table {_TABLE}><tbody>{rows}</tbody></table>"


def draws_table(draws: Any) -> str:
    """The variables of an xarray Dataset: dims with sizes, dtype and memory."""
    rows = []
    for name, var in draws.data_vars.items():
        dims = " x ".join(f"{d} {n:,}" for d, n in zip(var.dims, var.shape, strict=True))
        megabytes = var.size * var.dtype.itemsize / 2**20
        rows.append(
            f"<tr><th {_LABEL}>{escape(name)}</th><td {_LABEL}>{escape(dims)}</td>"
            f"<td {_LABEL}>{escape(var.dtype)}</td><td {_CELL}>{megabytes:,.1f} MB</td></tr>"
        )
    if not rows:
        return "<p>no draws kept</p>"
    return f"<table {_TABLE}><tbody>{''.join(rows)}</tbody></table>"


def card(title: str, *sections: tuple[str, str], status: str = "", note: str = "") -> str:
    """A titled block: ``title`` (plain text), an optional ``status`` badge (HTML from
    :func:`badge`), an optional plain-text ``note``, and ``(heading, html)`` sections."""
    parts = [
        '<div class="clvbayes-repr" style="font-family:var(--jp-ui-font-family,sans-serif);'
        'line-height:1.35">',
        f'<div style="font-size:1.05em"><strong>{escape(title)}</strong> {status}</div>',
    ]
    if note:
        parts.append(f'<div style="opacity:0.8">{escape(note)}</div>')
    for heading, body in sections:
        parts.append(
            f'<div style="margin-top:0.4em"><span style="font-weight:600">{escape(heading)}'
            f"</span>{body}</div>"
        )
    parts.append("</div>")
    return "".join(parts)
