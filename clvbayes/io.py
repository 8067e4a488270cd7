"""Files: write and read a DataTree as netCDF (HDF5) or zarr, atomically, no pickle.

Knows nothing about models: :func:`clvbayes.save` and :func:`clvbayes.load`
(:mod:`clvbayes.models.fitted`) turn fitted models into the groups of a tree and back,
and use these two functions for the file itself.

Nothing the user owns is removed: a file is written under a temporary name next to the
target and renamed into place at the end (a failed write leaves an earlier file intact);
an existing regular file is replaced that way; a folder is never removed, except a
zarr store that the caller recognises as its own (``replaceable``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import xarray as xr

from clvbayes.files import atomic_file, sibling_temp

__all__ = ["read_tree", "write_tree"]

_ZARR_METADATA = frozenset({"zarr.json", ".zgroup", ".zattrs", ".zmetadata"})


def write_tree(
    tree: xr.DataTree,
    path: str | Path,
    *,
    replaceable: Callable[[xr.DataTree], bool] | None = None,
) -> None:
    """Write ``tree`` to ``path``: a zarr store for ``*.zarr``, else a netCDF4 file.

    Parameters
    ----------
    tree : xarray.DataTree
        What to write.
    path : str or Path
        The target file (or zarr folder).
    replaceable : callable, optional
        ``node -> bool``: whether an existing zarr store at ``path`` (its root or a
        child node) was written by the caller and may be replaced. Without it an existing
        store is never replaced.

    Raises
    ------
    IsADirectoryError
        When a netCDF ``path`` is a folder.
    FileExistsError
        When a ``.zarr`` ``path`` exists and is not a store the caller recognises.
    """
    path = Path(path)
    if path.suffix == ".zarr":
        _write_zarr(tree, path, replaceable)
    else:
        with atomic_file(path) as tmp:
            tree.to_netcdf(tmp, engine="h5netcdf")


def _is_own_store(path: Path, replaceable: Callable[[xr.DataTree], bool] | None) -> bool:
    """Whether the folder ``path`` is a zarr store the caller wrote, and only that: it
    opens as a tree whose root or a child is ``replaceable``, and holds nothing but zarr
    metadata and the tree's groups."""
    if replaceable is None or not any((path / name).is_file() for name in _ZARR_METADATA):
        return False
    try:
        tree = xr.open_datatree(path, engine="zarr")
    except Exception:  # zarr raises many types for a folder that is not a store
        return False
    try:
        ours = any(replaceable(node) for node in [tree, *tree.children.values()])
        known = _ZARR_METADATA | set(tree.children) | {str(v) for v in tree.variables}
    finally:
        tree.close()
    return ours and all(entry.name in known for entry in os.scandir(path))


def _write_zarr(
    tree: xr.DataTree, path: Path, replaceable: Callable[[xr.DataTree], bool] | None
) -> None:
    """Write ``tree`` as the zarr store ``path``, replacing only a store of the caller's."""
    if path.is_symlink() or (
        path.exists() and not (path.is_dir() and _is_own_store(path, replaceable))
    ):
        raise FileExistsError(
            f"{str(path)!r} exists and is not a zarr store written by clvbayes.save; it is "
            "left as it is. Choose another path (or remove it yourself)."
        )
    tmp = sibling_temp(path)
    try:
        tree.to_zarr(tmp, mode="w-")
        if not path.exists():
            os.rename(tmp, path)
            return
        old = sibling_temp(path, "old")
        os.rename(path, old)
        try:
            os.rename(tmp, path)
        except BaseException:
            os.rename(old, path)
            raise
        shutil.rmtree(old)  # checked above: a store the caller wrote
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)  # our own temporary store


def read_tree(path: str | Path) -> xr.DataTree:
    """Read a tree written by :func:`write_tree` into memory.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file cannot be read (truncated, or not netCDF/zarr).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        if path.suffix == ".zarr":
            return xr.open_datatree(path, engine="zarr").load()
        return xr.open_datatree(path, engine="h5netcdf").load()
    except Exception as err:  # h5py/zarr raise many types for a damaged file
        raise ValueError(
            f"{path}: cannot be read as a clvbayes model file ({type(err).__name__}: {err}); "
            "the file may be truncated or not written by clvbayes.save."
        ) from err
