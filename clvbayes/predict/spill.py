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
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

import numpy as np

__all__ = ["DrawMatrix"]

_ITEM = np.dtype(np.float32).itemsize


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
    """

    def __init__(
        self, n_rows: int, n_cols: int, *, max_memory_mb: float, directory: str | Path | None = None
    ) -> None:
        self.shape = (int(n_rows), int(n_cols))
        self._array: np.ndarray | None = None
        self._fd: int | None = None
        self._path: str | None = None
        self._blocks: dict[int, int] = {}  # on disk: first column -> width of each block
        self._lock = threading.Lock()
        self._unlinked = False
        if n_rows * n_cols * _ITEM <= max_memory_mb * 2**20:
            self._array = np.empty(self.shape, dtype=np.float32)
        else:
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
            for other, w in self._blocks.items():
                if other < start + width and start < other + w:
                    raise ValueError(
                        f"columns {start}..{start + width - 1} overlap the block written "
                        f"at {other}..{other + w - 1}"
                    )
            self._blocks[start] = width
        data, offset, done = memoryview(values).cast("B"), start * self.shape[0] * _ITEM, 0
        while done < data.nbytes:
            done += os.pwrite(self._fd, data[done:], offset + done)

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
        self._array = None
        if self._fd is not None:
            os.close(self._fd)
            if not self._unlinked:
                os.unlink(self._path)
            self._fd = None

    def __enter__(self) -> DrawMatrix:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
