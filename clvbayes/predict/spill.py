"""A ``(draw, customer)`` float32 matrix held in memory or, when large, in a temporary file.

Ranks need every customer's CLV draws at once (a customer's rank is relative to everyone
in the same draw), so :func:`clvbayes.predict.predict_customers` must keep ``draws x
customers`` values until the last chunk is scored: 4 GB at a million customers and 1,000
draws. Above a size cap the matrix lives in a temporary file instead. Each column block (one
chunk of customers, ``n_rows x k``) is written as one contiguous region at the offset
``start x n_rows`` (so blocks go to fixed places whatever order the threads finish in),
row-major inside the block; reading a block of rows takes one contiguous ``pread`` per
column block. Both directions are sequential-sized I/O: a draw-major file written column
block by column block would need one small write per draw and chunk, each a partial page
that the kernel must read back from disk once the file outgrows the page cache (at 10M
customers x 1,000 draws the file is 40 GB). No file page is mapped into the process, so
the resident memory stays at one block (the page cache is not counted against it). The
file's name is removed as soon as it is opened (where the system allows; Windows deletes
it when the matrix is closed), so it takes no room once the process ends, however it
ends: a run stopped by Ctrl-C, a kill or a crash used to leave up to 40 GB in the
temporary directory.

Consecutive column blocks are gathered in a write buffer (``buffer_mb``) and written as
one wide block: the ranks read every block once per 8 draws, and a block as narrow as a
scoring chunk (762 customers at 1,000 draws and the default memory cap) made those reads
24 KB each, 13,000 per 8 draws at 10M customers, at which size the kernel's read-ahead
(8 MB here) fetched 3 bytes for every one used and evicted them before their turn came
(the 40 GB file does not fit the page cache); a block of 33,000 customers reads 1 MB at
a time.
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

import numpy as np

__all__ = ["DrawMatrix"]

_ITEM = np.dtype(np.float32).itemsize
_IOV_MAX = 1024  # pieces per pwritev (POSIX guarantees at least 16; Linux and macOS 1,024)


def _skip(pieces: list[memoryview], done: int) -> list[memoryview]:
    """``pieces`` without their first ``done`` bytes (after a partial write)."""
    out = []
    for p in pieces:
        if done >= p.nbytes:
            done -= p.nbytes
            continue
        out.append(p[done:])
        done = 0
    return out


class DrawMatrix:
    """Write-by-column-block, read-by-row-block ``(n_rows, n_cols)`` float32 matrix.

    Parameters
    ----------
    n_rows, n_cols : int
        Shape (draws, customers).
    max_memory_mb : float
        Largest size kept in memory; above it the values go to a temporary file.
    directory : str or Path, optional
        Where the temporary file goes (default: the system's temporary directory).
    buffer_mb : float
        On disk, consecutive column blocks are gathered up to this size and written as one
        block (0: each block as it comes).
    """

    def __init__(
        self,
        n_rows: int,
        n_cols: int,
        *,
        max_memory_mb: float,
        directory: str | Path | None = None,
        buffer_mb: float = 0.0,
    ) -> None:
        self.shape = (int(n_rows), int(n_cols))
        self._array: np.ndarray | None = None
        self._fd: int | None = None
        self._path: str | None = None
        self._blocks: dict[int, int] = {}  # on disk: first column -> width of each block
        self._lock = threading.Lock()
        self._unlinked = False
        self._buffer: np.ndarray | None = None  # on disk: columns not written yet
        self._pending = (0, 0)  # (first column, width) of the buffered columns
        if n_rows * n_cols * _ITEM <= max_memory_mb * 2**20:
            self._array = np.empty(self.shape, dtype=np.float32)
        else:
            width = int(buffer_mb * 2**20 // max(n_rows * _ITEM, 1))
            if width > 1:
                self._buffer = np.empty((n_rows, min(width, n_cols)), dtype=np.float32)
            fd, self._path = tempfile.mkstemp(prefix="clvbayes-draws-", dir=directory)
            self._fd = fd
            try:  # nameless from now on: gone when the process ends, even when killed
                os.unlink(self._path)
                self._unlinked = True
            except OSError:  # (Windows cannot unlink an open file: deleted in close())
                pass
            os.ftruncate(fd, n_rows * n_cols * _ITEM)

    @property
    def on_disk(self) -> bool:
        """Whether the values are in a temporary file."""
        return self._fd is not None

    @property
    def buffer_mb(self) -> float:
        """Memory held by the write buffer (MB)."""
        return 0.0 if self._buffer is None else self._buffer.nbytes / 2**20

    @property
    def memory_mb(self) -> float:
        """Memory this matrix holds (MB): all of its values in memory, else its write
        buffer."""
        return self._array.nbytes / 2**20 if self._array is not None else self.buffer_mb

    def write_columns(self, start: int, values: np.ndarray) -> None:
        """Store ``values`` (``n_rows x k``) as columns ``start .. start+k-1``."""
        values = np.ascontiguousarray(values, dtype=np.float32)
        if values.shape[0] != self.shape[0] or start + values.shape[1] > self.shape[1]:
            raise ValueError(f"block of shape {values.shape} does not fit at column {start}")
        if self._array is not None:
            self._array[:, start : start + values.shape[1]] = values
            return
        width = values.shape[1]
        with self._lock:
            first, held = self._pending
            for other, w in [*self._blocks.items(), *([(first, held)] if held else [])]:
                if other < start + width and start < other + w:
                    raise ValueError(
                        f"columns {start}..{start + width - 1} overlap the block written "
                        f"at {other}..{other + w - 1}"
                    )
            room = 0 if self._buffer is None else self._buffer.shape[1]
            if held and (start != first + held or held + width > room):
                self._flush()
                first, held = self._pending
            if width <= room:  # into the buffer, written with its neighbours
                self._buffer[:, held : held + width] = values
                self._pending = (start if not held else first, held + width)
                return
            self._blocks[start] = width
        self._write_rows(start, [values])

    def _write_rows(self, start: int, rows: list[np.ndarray]) -> None:
        """Write the block of columns starting at ``start`` whose rows, each contiguous,
        are ``rows`` (one array of all of them, or one array per row)."""
        offset = start * self.shape[0] * _ITEM
        pieces = [memoryview(np.ascontiguousarray(r)).cast("B") for r in rows]
        for i in range(0, len(pieces), _IOV_MAX):  # pwritev: one call per 1,024 rows
            group = pieces[i : i + _IOV_MAX]
            size = sum(p.nbytes for p in group)
            done = 0
            while done < size:
                done += os.pwritev(self._fd, _skip(group, done), offset + done)
            offset += size

    def _flush(self) -> None:
        """Write the buffered columns as one block (the caller holds the lock)."""
        first, held = self._pending
        if not held:
            return
        self._blocks[first] = held
        self._pending = (0, 0)
        self._write_rows(first, list(self._buffer[:, :held]))

    def __getitem__(self, rows: slice) -> np.ndarray:
        """Rows ``rows`` (a slice with step 1) as an in-memory array."""
        start, stop, step = rows.indices(self.shape[0])
        if step != 1:
            raise ValueError("only contiguous row slices can be read")
        if self._array is not None:
            return self._array[start:stop]
        n_rows = max(stop - start, 0)
        out = np.zeros((n_rows, self.shape[1]), dtype=np.float32)  # unwritten columns: 0
        with self._lock:
            self._flush()
            blocks = sorted(self._blocks.items())
        for first, width in blocks:
            part = np.empty(n_rows * width, dtype=np.float32)
            view = memoryview(part).cast("B")
            offset = (first * self.shape[0] + start * width) * _ITEM
            done = 0
            while done < view.nbytes:  # pread: no shared file position, safe across threads
                got = os.preadv(self._fd, [view[done:]], offset + done)
                if got <= 0:
                    raise OSError(f"temporary draw file {self._path} is truncated")
                done += got
            out[:, first : first + width] = part.reshape(n_rows, width)
        return out

    def close(self) -> None:
        """Release the memory or delete the temporary file."""
        self._array = self._buffer = None
        if self._fd is not None:
            os.close(self._fd)
            if not self._unlinked:
                os.unlink(self._path)
            self._fd = None

    def __enter__(self) -> DrawMatrix:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
