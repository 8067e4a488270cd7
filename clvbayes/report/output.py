"""Write a built report into a directory, atomically.

Files are written into a hidden staging directory beside the target and moved into place
at the end, so an interrupted or failed run never leaves a directory that looks complete.
``summary.json`` keeps the stage timings under its last key, ``"timings"``: everything
else in it, and all of ``customers.csv``, is the same for the same arguments and seed.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from clvbayes.report.content import jsonable
from clvbayes.report.html import render_html

__all__ = ["FILES", "make_staging_dir", "write_report"]

FILES = ("index.html", "customers.csv", "posterior.nc", "summary.json")
"""What :func:`write_report` writes."""


def make_staging_dir(out: str | Path) -> Path:
    """Create the staging directory for ``out`` (fails early if ``out`` is not writable).

    Raises
    ------
    ValueError
        When ``out`` exists and is not a directory, or its parent cannot be written.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {str(out)!r} exists and is not a directory; choose another path.")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    except OSError as err:
        raise ValueError(
            f"cannot write the report directory {str(out)!r}: {err.strerror or err}; choose a "
            "writable --out path."
        ) from err
    staging.chmod(0o755)  # mkdtemp makes it private; a report directory is not
    return staging


def _replace(staging: Path, out: Path) -> None:
    """Move ``staging`` to ``out``, replacing an earlier report there."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.{time.time_ns()}.old")
        out.rename(old)
    staging.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_report(
    report: Any, out: str | Path, *, staging: Path | None = None, log: Any = None
) -> dict[str, float]:
    """Render ``report`` and write :data:`FILES` into the directory ``out``.

    Parameters
    ----------
    report : Report
        From :func:`clvbayes.report.build_report`.
    out : str or Path
        Target directory (created; an earlier report there is replaced as a whole).
    staging : Path, optional
        A directory from :func:`make_staging_dir` (made here if not given).
    log : callable, optional
        Receives progress lines.

    Returns
    -------
    dict of str to float
        All stage timings, including ``render`` and ``write``.
    """
    from clvbayes.io import save

    out = Path(out)
    staging = make_staging_dir(out) if staging is None else staging
    timings = dict(report.timings)
    try:
        t0 = time.perf_counter()
        if log is not None:
            log("render: index.html ...")
        html = render_html(report, timings=timings)
        timings["render"] = round(time.perf_counter() - t0, 3)
        t0 = time.perf_counter()
        (staging / "index.html").write_text(html, encoding="utf-8")
        report.customers.to_csv(staging / "customers.csv", index=False, lineterminator="\n")
        save(report.fits, staging / "posterior.nc")
        timings["write"] = round(time.perf_counter() - t0, 3)
        summary = report.content.summary()
        summary["timings"] = jsonable(timings)
        text = json.dumps(summary, indent=2, allow_nan=False, ensure_ascii=False) + "\n"
        (staging / "summary.json").write_text(text, encoding="utf-8")
        _replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if log is not None:
        log(f"wrote {', '.join(FILES)} to {out}")
    return timings
