"""Files: write and read a DataTree as netCDF (HDF5) or zarr, atomically, no pickle.

Knows nothing about models: :func:`clvbayes.save` and :func:`clvbayes.load`
(:mod:`clvbayes.models.fitted`) turn fitted models into the groups of a tree and back,
and use these two functions for the file itself.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import xarray as xr

__all__ = ["read_tree", "write_tree"]


def write_tree(tree: xr.DataTree, path: str | Path) -> None:
    """Write ``tree`` to ``path``: zarr for ``*.zarr``, else netCDF4 (h5netcdf).

    The file is written next to the target first and then moved into place, so an
    existing file is replaced only by a complete one.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    if path.suffix == ".zarr":
        tree.to_zarr(tmp, mode="w")
    else:
        tree.to_netcdf(tmp, engine="h5netcdf")
    if path.exists() and path.is_dir():
        shutil.rmtree(path)
    tmp.replace(path)


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
