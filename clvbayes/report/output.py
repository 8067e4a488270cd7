"""Write a built report into a folder, atomically, never deleting what clvbayes did not write.

Files are written into a hidden staging folder beside the target and moved into place at
the end, so an interrupted or failed run never leaves a folder that looks complete and an
earlier report stays as it was. A report folder carries a marker file, :data:`MARKER`;
an existing folder is replaced only when it is empty, or carries the marker and holds
nothing but the files of a report (:data:`FILES`). Anything else, the current folder
and a folder holding an input are refused before any work. While a run holds a folder,
a lock file ``.NAME.lock`` beside it makes a second run on the same folder fail at once.

``summary.json`` keeps the stage timings under its last key, ``"timings"``: everything
else in it, and all of ``customers.csv``, is the same for the same arguments and seed.
``customers.csv`` is spreadsheet-safe (:func:`clvbayes.files.spreadsheet_safe`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from clvbayes.files import check_not_input, os_reason, sibling_temp, write_table
from clvbayes.models import save
from clvbayes.report.content import jsonable
from clvbayes.report.html import render_html

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock; the final rename still checks
    fcntl = None  # type: ignore[assignment]

__all__ = ["FILES", "MARKER", "ReportTarget", "check_target", "write_report"]

MARKER = ".clvbayes-report"
"""The marker file of a report folder: JSON with the format, the version and the files."""

FILES = ("index.html", "customers.csv", "posterior.nc", "summary.json", MARKER)
"""What :func:`write_report` writes (and all a folder may hold to be replaced)."""

_FORMAT = "clvbayes-report"


def _count(names: list[str]) -> str:
    return f"{len(names)} {'entry' if len(names) == 1 else 'entries'}"


def _examples(names: list[str], n: int = 5) -> str:
    shown = ", ".join(repr(x) for x in sorted(names)[:n])
    return shown + (f" and {len(names) - n} more" if len(names) > n else "")


def _check_replaceable(out: Path, shown: str | Path) -> None:
    """Raise ``ValueError`` unless the existing folder ``out`` may be replaced by a report.

    ``shown``: the folder as the user gave it, for the messages.
    """
    entries = list(os.scandir(out))
    if not entries:
        return
    try:
        ours = json.loads((out / MARKER).read_text(encoding="utf-8")).get("format") == _FORMAT
    except (OSError, ValueError, AttributeError):
        ours = False
    names = [e.name for e in entries]
    if not ours:
        raise ValueError(
            f"--out {str(shown)!r} is a folder with {_count(names)} ({_examples(names)}) and "
            f"no {MARKER} marker, so it is not a clvbayes report; clvbayes replaces only its "
            "own reports. Choose an empty or new folder."
        )
    unexpected = [
        e.name for e in entries if e.name not in FILES or not e.is_file(follow_symlinks=False)
    ]
    if unexpected:
        raise ValueError(
            f"--out {str(shown)!r} holds an earlier clvbayes report and {_count(unexpected)} "
            f"that clvbayes did not write ({_examples(unexpected)}); it is left as it is. "
            "Move them out, or choose an empty or new folder."
        )


def check_target(out: str | Path, inputs: Iterable[str | Path] = ()) -> Path:
    """Check that a report may be written to the folder ``out``; return it resolved.

    Refused: the current folder or one that contains it, a folder that contains (or is)
    one of ``inputs``, an existing file, and an existing folder that is neither empty nor
    an earlier report (see the module docstring).

    Raises
    ------
    ValueError
        Naming the folder, what is wrong and what to do.
    """
    target = Path(out).resolve()
    if target.parent == target or Path.cwd().resolve().is_relative_to(target):
        raise ValueError(
            f"--out {str(out)!r} is the current folder (or contains it); a report replaces "
            "its folder as a whole. Choose a new folder, e.g. --out report."
        )
    check_not_input(out, inputs, what="--out")
    if target.exists() and not target.is_dir():
        raise ValueError(f"--out {str(out)!r} exists and is not a directory; choose another path.")
    if target.is_dir():
        _check_replaceable(target, out)
    return target


class ReportTarget:
    """The report folder ``out``, claimed for one run: checked, locked and staged.

    A context manager: entering checks the folder (:func:`check_target`), takes the lock
    file ``.NAME.lock`` beside it and makes the staging folder ``.NAME.*.partial``;
    leaving removes the staging folder if it was not committed and releases the lock, also
    on errors and ``KeyboardInterrupt``. Use it to fail on a bad ``--out`` before any work,
    then hand it to :func:`write_report`.

    Parameters
    ----------
    out : str or Path
        The report folder.
    inputs : iterable of str or Path
        Files the run reads; ``out`` must not contain them.
    """

    def __init__(self, out: str | Path, *, inputs: Iterable[str | Path] = ()) -> None:
        self.given = Path(out)
        self.out = Path(out).resolve()
        self.staging: Path | None = None
        self._inputs = tuple(inputs)
        self._lock: int | None = None

    @property
    def lock_path(self) -> Path:
        """The lock file beside the folder."""
        return self.out.with_name(f".{self.out.name}.lock")

    def __enter__(self) -> ReportTarget:
        check_target(self.given, self._inputs)
        try:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self._lock = self._acquire()
            check_target(self.given, self._inputs)  # again, now that no run can change it
            self.staging = Path(
                tempfile.mkdtemp(
                    prefix=f".{self.out.name}.", suffix=".partial", dir=self.out.parent
                )
            )
            self.staging.chmod(0o755)  # mkdtemp makes it private; a report folder is not
        except OSError as err:
            self._release()
            raise ValueError(
                f"cannot write the report directory {str(self.given)!r}: {os_reason(err)}; "
                "choose a writable --out path."
            ) from err
        except BaseException:
            self._release()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self.staging is not None and self.staging.exists():
                shutil.rmtree(self.staging, ignore_errors=True)  # our own staging folder
            self.staging = None
        finally:
            self._release()

    def _acquire(self) -> int | None:
        """Take the lock file (``flock``) or raise ``ValueError`` if another run holds it."""
        if fcntl is None:  # pragma: no cover
            return None
        path = self.lock_path
        for _ in range(20):
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 32).decode(errors="replace").strip()
                os.close(fd)
                raise ValueError(
                    f"--out {str(self.given)!r} is being written by another clvbayes run "
                    f"(process {holder or '?'}, lock file {str(path)!r}); wait for it to "
                    "finish or choose another folder."
                ) from None
            # the previous holder unlinks the file when done: make sure ours is still it
            try:
                current = os.stat(path)
            except FileNotFoundError:
                current = None
            if current is not None and os.path.samestat(current, os.fstat(fd)):
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                return fd
            os.close(fd)
        raise ValueError(f"--out {str(self.given)!r}: cannot take the lock file {str(path)!r}.")

    def _release(self) -> None:
        if self._lock is not None:
            with contextlib.suppress(FileNotFoundError):
                self.lock_path.unlink()  # while still holding it (see _acquire)
            os.close(self._lock)
            self._lock = None

    def commit(self) -> None:
        """Move the staging folder to the target, replacing an earlier report there.

        The folder is checked again (it may have changed while the report was built);
        the earlier report is moved aside, the new one renamed in, and then the earlier
        report's files are deleted one by one (never a whole tree). If anything fails
        in between, the earlier report is moved back.
        """
        if self.staging is None:
            raise ValueError("ReportTarget.commit: not entered, or already committed.")
        staging, out = self.staging, self.out
        if not out.exists():
            try:
                os.rename(staging, out)
            except OSError as err:
                raise ValueError(
                    f"--out {str(self.given)!r} appeared while the report was being built "
                    f"({os_reason(err)}); it is left as it is and the new report was not "
                    "written. Run again, or choose another folder."
                ) from err
            self.staging = None
            return
        _check_replaceable(out, self.given)
        old = sibling_temp(out, "old")
        try:
            os.rename(out, old)
            os.rename(staging, out)
        finally:  # decided by what is on disk, so an interrupt anywhere above is safe
            if not os.path.lexists(out) and old.is_dir():
                os.rename(old, out)  # put the earlier report back
            elif old.is_dir():
                self.staging = None
                for name in FILES:
                    with contextlib.suppress(FileNotFoundError):
                        (old / name).unlink()
                with contextlib.suppress(OSError):  # not empty: something appeared; keep it
                    old.rmdir()


def _marker_text() -> str:
    import clvbayes

    marker = {"format": _FORMAT, "clvbayes_version": clvbayes.__version__,
              "files": [f for f in FILES if f != MARKER]}  # fmt: skip
    return json.dumps(marker, indent=2) + "\n"


def write_report(
    report: Any, out: str | Path, *, target: ReportTarget | None = None, log: Any = None
) -> dict[str, float]:
    """Render ``report`` and write :data:`FILES` into the folder ``out``.

    ``out`` is created, or replaced when it is empty or an earlier clvbayes report (it
    carries :data:`MARKER` and nothing else than :data:`FILES`); any other folder is
    refused and left as it is. ``customers.csv`` is spreadsheet-safe: text cells starting
    with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return get a leading ``'``
    (:func:`clvbayes.files.spreadsheet_safe`); numeric columns are written as numbers.

    Parameters
    ----------
    report : Report
        From :func:`clvbayes.report.build_report`.
    out : str or Path
        Target folder.
    target : ReportTarget, optional
        ``out`` already claimed (entered) by the caller, e.g. to check it before the work;
        else it is claimed here.
    log : callable, optional
        Receives progress lines.

    Returns
    -------
    dict of str to float
        All stage timings, including ``render`` and ``write``.

    Raises
    ------
    ValueError
        When ``out`` may not be written (see :func:`check_target`).
    OSError
        When writing fails (e.g. a full disk); the message names the folder, and an
        earlier report there is unchanged.
    """
    if target is None:
        with ReportTarget(out) as claimed:
            return write_report(report, out, target=claimed, log=log)
    if target.staging is None or target.out != Path(out).resolve():
        raise ValueError(f"write_report: target is not an entered ReportTarget for {str(out)!r}.")
    staging = target.staging
    timings = dict(report.timings)
    try:
        t0 = time.perf_counter()
        if log is not None:
            log("render: index.html ...")
        html = render_html(report, timings=timings)
        timings["render"] = round(time.perf_counter() - t0, 3)
        t0 = time.perf_counter()
        (staging / "index.html").write_text(html, encoding="utf-8")
        write_table(report.customers, staging / "customers.csv")
        save(report.fits, staging / "posterior.nc")
        timings["write"] = round(time.perf_counter() - t0, 3)
        summary = report.content.summary()
        summary["timings"] = jsonable(timings)
        text = json.dumps(summary, indent=2, allow_nan=False, ensure_ascii=False) + "\n"
        (staging / "summary.json").write_text(text, encoding="utf-8")
        (staging / MARKER).write_text(_marker_text(), encoding="utf-8")
    except OSError as err:
        raise OSError(
            err.errno,
            f"cannot write the report to {str(out)!r}: {os_reason(err)}; nothing was "
            "changed there (an earlier report is intact). Free space or choose another --out.",
        ) from err
    target.commit()
    if log is not None:
        log(f"wrote {', '.join(f for f in FILES if f != MARKER)} to {out}")
    return timings
