"""Save and load fitted models as netCDF or zarr (no pickle).

A file holds one fitted model, or several (e.g. a BG/NBD and a Gamma-Gamma fit) as named
groups. Each model's node stores the posterior, the sampler statistics, the compressed
data (unique rows, counts and the customer-to-row map; optional) and, as attributes, the
package version, model type, priors (JSON), data fingerprint and fit settings.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from pymc_extras.prior import Prior

from clvbayes.data.compress import CompressedRFM
from clvbayes.files import atomic_file, sibling_temp

__all__ = ["load", "save"]

_FORMAT = "clvbayes-fitted-model"
# sampler statistics worth keeping (others, e.g. per-draw messages, are not serialisable
# compactly and are not needed for diagnostics)
_KEEP_STATS = ("diverging", "energy", "step_size", "n_steps", "depth", "mean_tree_accept")


def _model_registry() -> dict[str, type]:
    from clvbayes.models import BGNBD, MBGNBD, GammaGamma, ParetoNBD

    return {cls.kind: cls for cls in (BGNBD, GammaGamma, ParetoNBD, MBGNBD)}


def _to_node(fitted: Any, include_data: bool) -> dict[str, xr.Dataset]:
    import clvbayes

    groups: dict[str, xr.Dataset] = {"posterior": fitted.posterior}
    if "sample_stats" in fitted.idata.children:
        stats = fitted.idata["sample_stats"].to_dataset()
        groups["sample_stats"] = stats[[v for v in _KEEP_STATS if v in stats]]
    if include_data and fitted.data is not None:
        d = fitted.data
        arrays = {f"row_{c}": ("row", d.rows[c]) for c in d.columns}
        arrays["row_count"] = ("row", d.counts)
        arrays["customer_row"] = ("customer", d.inverse.astype(np.int32))
        groups["constant_data"] = xr.Dataset(arrays)
    attrs = {
        "format": _FORMAT,
        "clvbayes_version": clvbayes.__version__,
        "model_kind": fitted.kind,
        "priors": fitted.priors_json(),
        "data_fingerprint": fitted.fingerprint,
        "data_columns": json.dumps(
            list(fitted.data.columns if fitted.data is not None else fitted.spec.columns)
        ),
        "spec_options": json.dumps(fitted.spec.options(), sort_keys=True),
        "settings": json.dumps(fitted.settings, sort_keys=True),
        "problems": json.dumps(list(fitted.problems)),
    }
    groups["posterior"] = groups["posterior"].assign_attrs(attrs)
    return groups


def _check_models(models: Any) -> None:
    """Raise ``TypeError`` unless ``models`` is a fitted model or a mapping of them."""
    from clvbayes.models.base import FittedModel

    accepts = "save accepts a FittedModel (from spec.fit) or a mapping {name: FittedModel}"
    if isinstance(models, FittedModel):
        return
    if not isinstance(models, Mapping):
        raise TypeError(f"{accepts}; got {type(models).__name__}.")
    if not models:
        raise TypeError(f"{accepts}; got an empty {type(models).__name__}.")
    for name, fitted in models.items():
        if not isinstance(name, str):
            raise TypeError(f"{accepts}; key {name!r} is a {type(name).__name__}, not a str.")
        if not isinstance(fitted, FittedModel):
            raise TypeError(f"{accepts}; {name!r} is a {type(fitted).__name__}.")


_ZARR_METADATA = frozenset({"zarr.json", ".zgroup", ".zattrs", ".zmetadata"})


def _is_saved_store(path: Path) -> bool:
    """Whether the folder ``path`` is a zarr store that :func:`save` wrote, and only that.

    It must open as a tree with a clvbayes model node (the ``format`` attribute) at its
    root or one level below, and hold nothing but zarr metadata and the tree's groups.
    """
    if not any((path / name).is_file() for name in _ZARR_METADATA):
        return False
    try:
        tree = xr.open_datatree(path, engine="zarr")
    except Exception:  # zarr raises many types for a folder that is not a store
        return False
    try:
        nodes = [tree, *tree.children.values()]
        ours = any(_is_model_node(node) for node in nodes)
        known = _ZARR_METADATA | set(tree.children) | {str(v) for v in tree.variables}
    finally:
        tree.close()
    return ours and all(entry.name in known for entry in os.scandir(path))


def _write_zarr(dt: xr.DataTree, path: Path) -> None:
    """Write ``dt`` as the zarr store ``path``, replacing only a store :func:`save` wrote."""
    if path.is_symlink() or (path.exists() and not (path.is_dir() and _is_saved_store(path))):
        raise FileExistsError(
            f"{str(path)!r} exists and is not a zarr store written by clvbayes.save; it is "
            "left as it is. Choose another path (or remove it yourself)."
        )
    tmp = sibling_temp(path)
    try:
        dt.to_zarr(tmp, mode="w-")
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
        shutil.rmtree(old)  # checked above: a store that save wrote
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)  # our own temporary store


def save(models: Any, path: str | Path, *, include_data: bool = True) -> None:
    """Write one fitted model, or a mapping ``{name: fitted}``, to ``path``.

    The file is written under a temporary name next to ``path`` and renamed at the end,
    so a failed write leaves an earlier file intact. An existing regular file at ``path``
    is replaced; a folder is never removed, except a ``.zarr`` store that ``save`` wrote.

    Parameters
    ----------
    models : FittedModel or mapping of str to FittedModel
        What to save. Several models go into named groups of one file.
    path : str or Path
        ``*.zarr`` writes a zarr store (a folder); anything else a netCDF4 file (HDF5,
        via h5netcdf).
    include_data : bool
        Store the compressed data (needed for the pointwise log-likelihood and LOO);
        a CDNOW-master fit is about 0.5 MB with it.

    Raises
    ------
    TypeError
        When ``models`` is neither a fitted model nor a mapping of names to them.
    ValueError
        When a model name is empty or contains ``/``.
    IsADirectoryError
        When a netCDF ``path`` is a folder.
    FileExistsError
        When a ``.zarr`` ``path`` exists and is not a store that ``save`` wrote.
    """
    _check_models(models)
    path = Path(path)
    if isinstance(models, Mapping):
        tree: dict[str, xr.Dataset] = {}
        for name, fitted in models.items():
            if "/" in name or not name:
                raise ValueError(f"model name {name!r} must be non-empty without '/'.")
            for group, ds in _to_node(fitted, include_data).items():
                tree[f"{name}/{group}"] = ds
    else:
        tree = _to_node(models, include_data)
    dt = xr.DataTree.from_dict(tree)
    if path.suffix == ".zarr":
        _write_zarr(dt, path)
    else:
        with atomic_file(path) as tmp:
            dt.to_netcdf(tmp, engine="h5netcdf")


def _from_node(node: xr.DataTree, where: str) -> Any:
    from clvbayes.models.base import FittedModel

    posterior = node["posterior"].to_dataset()
    attrs = posterior.attrs
    kind = attrs.get("model_kind")
    registry = _model_registry()
    if kind not in registry:
        raise ValueError(f"{where}: unknown model type {kind!r}; known: {sorted(registry)}.")
    priors = {k: Prior.from_dict(v) for k, v in json.loads(attrs["priors"]).items()}
    spec = registry[kind](priors=priors, **json.loads(attrs.get("spec_options", "{}")))
    # segment labels (segmented fits) live in the posterior's "segment" coordinate
    segments = [str(s) for s in posterior["segment"].to_numpy()] if spec.options() else []
    data = None
    if "constant_data" in node.children:
        cd = node["constant_data"].to_dataset()
        arrays = {k: cd[k].to_numpy() for k in cd.data_vars}
        data = CompressedRFM.from_dict(arrays, json.loads(attrs["data_columns"]), segments=segments)
    groups = {"posterior": posterior.assign_attrs({})}
    if "sample_stats" in node.children:
        groups["sample_stats"] = node["sample_stats"].to_dataset()
    return FittedModel(
        spec=spec,
        idata=xr.DataTree.from_dict(groups),
        data=data,
        fingerprint=attrs["data_fingerprint"],
        settings=json.loads(attrs["settings"]),
        problems=tuple(json.loads(attrs["problems"])),
    )


def _is_model_node(node: xr.DataTree) -> bool:
    return "posterior" in node.children and (node["posterior"].attrs.get("format") == _FORMAT)


def load(path: str | Path, model: str | type | None = None) -> Any:
    """Load what :func:`save` wrote.

    Parameters
    ----------
    path : str or Path
        A ``.nc`` or ``.zarr`` file written by clvbayes.
    model : str or model class, optional
        Expected model type (``"BGNBD"`` or ``clvbayes.BGNBD``); a file holding another
        type raises ``ValueError``.

    Returns
    -------
    FittedModel, or dict of str to FittedModel for a file of several models.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        if path.suffix == ".zarr":
            tree = xr.open_datatree(path, engine="zarr").load()
        else:
            tree = xr.open_datatree(path, engine="h5netcdf").load()
    except Exception as err:  # h5py/zarr raise many types for a damaged file
        raise ValueError(
            f"{path}: cannot be read as a clvbayes model file ({type(err).__name__}: {err}); "
            "the file may be truncated or not written by clvbayes.save."
        ) from err
    if _is_model_node(tree):
        result: Any = _from_node(tree, str(path))
        found = {result.kind}
    else:
        named = {k: v for k, v in tree.children.items() if _is_model_node(v)}
        if not named:
            raise ValueError(f"{path}: not a clvbayes model file (no fitted model inside).")
        result = {k: _from_node(v, f"{path}:{k}") for k, v in named.items()}
        found = {m.kind for m in result.values()}
    if model is not None:
        expected = model if isinstance(model, str) else model.kind
        if found != {expected}:
            raise ValueError(
                f"{path} holds {sorted(found)}, not {expected!r}; load it without "
                "model=..., or with the type it holds."
            )
    return result
