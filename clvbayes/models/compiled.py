"""Models compiled for nutpie, cached in the process and on disk.

Compiling a PyMC model for nutpie costs several seconds in every new process (PyTensor's
graph rewrites, then numba's compilation of the two C callbacks nutpie calls: the log
density with its gradient, and the "expand" function that computes the deterministics),
which used to be half of a fit on CDNOW master. :func:`compile_model` keeps the compiled
callbacks

- **in the process**: a second model with the same graph (same priors, same data
  *structure*; the data arrays are inputs, see
  :class:`~clvbayes.models.shared_data.SharedRFM`) reuses them with its own data swapped
  in (nutpie's ``with_data``), so it starts sampling after building the model;
- **on disk**: the callbacks' machine code (numba's object code and the environments it
  references, as numba's own cache stores them) under :func:`cache_dir`, so a fresh
  process (a notebook kernel restart, a CLI run) skips the compilation as well.

Keys. An entry is keyed by a SHA-256 of the model's graph (its random variables,
potentials and deterministics, from which PyMC, whose version is in the key, derives the
log density: every node's operation and properties, every constant's bytes, every data
input's name and type, the free variables with their transforms and initial values, the
deterministics kept, the dims' sizes but not their labels: models that differ only in
their segments' names share an entry), of the
source of any operation defined outside PyTensor/PyMC (clvbayes's own
``SoftplusWithSigmoid``), of the PyTensor rewrites left out (:data:`EXCLUDED_REWRITES`),
of the versions of Python, numpy, numba, llvmlite, PyTensor, PyMC, nutpie and clvbayes,
and of the CPU the code was compiled for. Anything else changes the key, so a stale
entry is never found; an entry is also checked when read (its SHA-256 checksum, its own
copy of the key and versions), and one that does not check out (a truncated or corrupted
file, an entry of another version) is deleted and compiled again. The code is the same
machine code either way (no fast-math), so a fit gives identical draws from a fresh
compilation, the process cache and the disk cache.

Where. ``$CLVBAYES_CACHE_DIR`` if set (``off``, ``0``, ``false``, ``no`` or ``none``
disable the disk cache), else the user cache directory (``platformdirs.user_cache_dir``:
``~/.cache/clvbayes`` on Linux). Entries are a few MB each; :func:`clear_cache` removes
them (or delete the directory).

Entries are Python pickles, as in numba's own cache: only put a directory you trust in
``CLVBAYES_CACHE_DIR``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import os
import pickle
import shutil
import sys
import tempfile
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from clvbayes.imports import import_nutpie

__all__ = [
    "CACHE_ENV",
    "EXCLUDED_REWRITES",
    "CompiledCallback",
    "cache_dir",
    "clear_cache",
    "compile_mode",
    "compile_model",
    "graph_key",
    "start_unjittered",
]

CACHE_ENV = "CLVBAYES_CACHE_DIR"
"""Environment variable: the disk cache's directory, or ``off`` to disable it."""

_OFF = {"off", "0", "false", "no", "none"}
_FORMAT = 1  # bump when the entry layout changes
_MAGIC = b"clvbayes-nutpie-cache\n"
_LIBRARIES = ("numpy", "numba", "llvmlite", "pytensor", "pymc", "nutpie")
_MEMORY: OrderedDict[str, _Entry] = OrderedDict()
_MEMORY_SIZE = 64  # compiled models kept in the process (least recently used dropped)
EXCLUDED_REWRITES = (
    "pre_local_IncSubtensor_serialize",
    "local_IncSubtensor_serialize",
    "local_add_of_sparse_write",
)
"""PyTensor rewrites left out when compiling for nutpie (part of the cache key).

They turn a sum of gradient scatter-adds ``g + zeros[idx].inc(v)`` into a chain
``g[idx].inc(v)``. In the time-effect models two gathers of the rows read quantities of
the same level (``C(c)`` and ``log(α + M(T))`` per level of ``T``), so the chain makes
one scatter's target depend on another scatter of the same backward loop; PyTensor's
numba backend then cannot fuse the gathers and scatters into the likelihood's loops (the
fused loop would depend on itself) and each is a separate pass over the rows. Without
these rewrites the time-effect BG/NBD's log density and gradient on CDNOW master take
about 15 % less time; the other families' are as fast as before (``python
benchmarks/bench_perf.py gradient``; numbers in ``benchmarks/RESULTS.md``).
"""
_LOCK = threading.Lock()


def compile_mode(excluded: tuple[str, ...] = EXCLUDED_REWRITES) -> Any:
    """PyTensor's numba mode without the rewrites ``excluded`` (default:
    :data:`EXCLUDED_REWRITES`, the mode the cache compiles with)."""
    from pytensor.compile.mode import get_mode

    return get_mode("NUMBA").excluding(*excluded)


def cache_dir() -> Path | None:
    """The disk cache's directory (None when disabled by ``$CLVBAYES_CACHE_DIR``)."""
    configured = os.environ.get(CACHE_ENV)
    if configured is not None:
        if configured.strip().lower() in _OFF or not configured.strip():
            return None
        return Path(configured).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("clvbayes"))


def clear_cache(*, memory: bool = True) -> int:
    """Delete the compiled models on disk (and, with ``memory``, in this process).

    Returns
    -------
    int
        The number of disk entries removed.
    """
    if memory:
        with _LOCK:
            _MEMORY.clear()
    root = cache_dir()
    if root is None or not (root / "nutpie").is_dir():
        return 0
    entries = list((root / "nutpie").glob("*/*.nutpie"))
    shutil.rmtree(root / "nutpie", ignore_errors=True)
    return len(entries)


@dataclasses.dataclass(frozen=True)
class CompiledCallback:
    """A compiled C callback as nutpie uses it (its ``address``), holding the numba
    compile result that owns the machine code."""

    address: int
    result: Any = dataclasses.field(repr=False)


@dataclasses.dataclass(frozen=True)
class _Entry:
    """What a compiled model is made of besides its data and the PyMC model."""

    logp: CompiledCallback
    expand: CompiledCallback
    n_dim: int
    n_expanded: int
    shape_info: tuple[list[str], list[slice], list[tuple[int, ...]]]
    free: tuple[tuple[str, tuple[int, ...]], ...]  # free variables (value names, shapes)
    reparameterized: tuple[str, ...]
    shared: tuple[tuple[str, str, int, str], ...]  # (input name, key, ndim, dtype)


# --- keys ---------------------------------------------------------------------------------


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    import clvbayes

    found = {"python": sys.version, "clvbayes": clvbayes.__version__, "format": str(_FORMAT)}
    found.update({name: version(name) for name in _LIBRARIES})
    return found


def _machine() -> tuple[str, ...]:
    from numba.core.registry import cpu_target

    return tuple(str(v) for v in cpu_target.target_context.codegen().magic_tuple())


def _describe_op(op: Any, sources: dict[str, str]) -> str:
    """An operation with its properties; the source of operations defined outside
    PyTensor/PyMC (their implementation is not covered by a library version)."""
    for obj in (op, getattr(op, "scalar_op", None)):
        module = type(obj).__module__ if obj is not None else ""
        if module and not module.startswith(("pytensor", "pymc", "builtins")):
            if module not in sources:
                source = inspect.getsource(sys.modules[module])
                sources[module] = hashlib.sha256(source.encode()).hexdigest()
    props = getattr(op, "_props_dict", None)
    detail = repr(sorted(props().items(), key=lambda kv: kv[0])) if props else ""
    return f"{type(op).__module__}.{type(op).__qualname__}:{op}:{detail}"


def _describe_variable(var: Any) -> str:
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.basic import Constant

    if isinstance(var, Constant):
        data = np.asarray(var.data)
        if data.dtype == object:
            payload = repr(var.data).encode()
        else:
            payload = np.ascontiguousarray(data).tobytes()
        digest = hashlib.sha256(payload).hexdigest()
        return f"constant {var.type} {data.dtype} {data.shape} {digest}"
    kind = "shared" if isinstance(var, SharedVariable) else "input"
    return f"{kind} {var.name} {var.type}"


def _describe_initial(value: Any) -> str:
    """An initial value: None, a strategy name, a number/array, or a graph."""
    if value is None or isinstance(value, str):
        return repr(value)
    if hasattr(value, "owner"):
        return "graph " + _describe_variable(value) if value.owner is None else f"graph {value}"
    data = np.ascontiguousarray(np.asarray(value, dtype=float))
    return f"array {data.shape} {hashlib.sha256(data.tobytes()).hexdigest()}"


def graph_key(model: Any) -> str:
    """A SHA-256 of everything the compiled model depends on (see the module docstring).

    Data inputs (``pm.Data``) enter by name and type only: models that differ in their
    data arrays alone share a key (and a compiled model).
    """
    from pytensor.graph.traversal import graph_inputs, io_toposort

    # the model's own graphs (its variables, potentials and deterministics in terms of
    # the random variables, and the observed variables' data) determine its log density
    # and what it keeps, given PyMC's version (in the key): hashing them skips deriving
    # the log density, about 0.3 s of a time-effect refit
    observed = [model.rvs_to_values[rv] for rv in model.observed_RVs]
    outputs = [*model.free_RVs, *model.observed_RVs, *observed, *model.potentials]
    outputs += model.deterministics
    inputs = list(graph_inputs(outputs))
    ids: dict[Any, int] = {}
    lines: list[str] = []
    sources: dict[str, str] = {}

    def ref(var: Any) -> int:
        if var not in ids:
            ids[var] = len(ids)
            if var.owner is None:
                lines.append(f"v{ids[var]} = {_describe_variable(var)}")
        return ids[var]

    for node in io_toposort(inputs, outputs):
        args = ",".join(f"v{ref(v)}" for v in node.inputs)
        outs = ",".join(f"v{ref(v)}:{v.type}" for v in node.outputs)
        lines.append(f"{outs} = {_describe_op(node.op, sources)}({args})")
    lines.append("outputs " + ",".join(f"v{ref(v)}" for v in outputs))
    for rv in model.free_RVs:
        value = model.rvs_to_values[rv]
        # the transform itself is in the graph (log density, deterministics); its name here
        transform = type(model.rvs_to_transforms.get(rv)).__qualname__
        initial = _describe_initial(model.rvs_to_initial_values.get(rv))
        lines.append(f"free {rv.name} {value.name} {transform} {initial}")
    lines.append(f"deterministics {[v.name for v in model.deterministics]}")
    # the labels of a dim do not reach the compiled code (the sizes are in the types);
    # models that differ only in their segment names share an entry
    lines.append(f"coords {sorted((k, len(v or ())) for k, v in model.coords.items())}")
    lines.append(f"check_bounds {model.check_bounds}")
    lines.append(f"excluded rewrites {EXCLUDED_REWRITES}")
    lines.append(f"sources {sorted(sources.items())}")
    lines.append(f"versions {sorted(_versions().items())} machine {_machine()}")
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


# --- compiling ------------------------------------------------------------------------------


class _Capture:
    """A numba cache that keeps the compile result it is asked to save (numba's ``CFunc``
    calls ``load_overload`` and ``save_overload``)."""

    def __init__(self) -> None:
        self.result: Any = None

    def load_overload(self, sig: Any, target_context: Any) -> None:
        return None

    def save_overload(self, sig: Any, cres: Any) -> None:
        self.result = cres


def _cfunc(pyfunc: Callable, signature: Any) -> CompiledCallback:
    """Compile ``pyfunc`` as a numba C callback of ``signature``, keeping its result."""
    from numba.core import sigutils
    from numba.core.ccallback import CFunc

    args, restype = sigutils.normalize_signature(signature)
    callback = CFunc(pyfunc, (args, restype), locals={}, options={})
    capture = _Capture()
    callback._cache = capture
    callback.compile()
    return CompiledCallback(callback.address, capture.result)


def start_unjittered(*variables: Any) -> None:
    """Mark free variables to start NUTS at PyMC's support point itself, without the
    U(-1, 1) jitter the others get (:func:`_initial_point_function`).

    For coordinates whose posterior is far narrower than 1 on the unconstrained scale
    (the calendar-time path of :mod:`clvbayes.models.calendar`), the jitter starts each
    chain dozens of posterior standard deviations away, and the first warm-up iterations
    pay for it with deep trees at tiny step sizes.
    """
    for variable in variables:
        variable.tag.start_unjittered = True


def _initial_point_function(model: Any, free: tuple[tuple[str, tuple[int, ...]], ...]) -> Any:
    """nutpie's initial-point function of ``model``: PyMC's support point jittered by
    U(-1, 1) on the unconstrained scale (nutpie's default) except for the variables
    marked by :func:`start_unjittered`, as one flat array."""
    from pymc.initial_point import make_initial_point_fn

    flat_array_wrapper = import_nutpie("nutpie.compile_pymc")._rv_dict_to_flat_array_wrapper

    point = make_initial_point_fn(
        model=model,
        overrides=None,
        default_strategy="support_point",
        jitter_rvs={v for v in model.free_RVs if not getattr(v.tag, "start_unjittered", False)},
        return_transformed=True,
    )
    lock = threading.Lock()

    def locked(seed: Any = None) -> dict[str, np.ndarray]:
        with lock:
            return point(seed)

    names, shapes = [n for n, _ in free], [s for _, s in free]
    return flat_array_wrapper(locked, names=names, shapes=shapes)


def _compile(model: Any) -> _Entry:
    """Compile ``model`` for nutpie's numba backend (as ``nutpie.compile_pymc_model``
    does, keeping numba's compile results for the cache)."""
    from pytensor import config as pytensor_config

    ncp = import_nutpie("nutpie.compile_pymc")

    with pytensor_config.change_flags(numba__fastmath=False):
        n_dim, n_expanded, logp_pt, expand_pt, _, shape_info, reparam = ncp._make_functions(
            model,
            mode=compile_mode(),
            compute_grad=True,
            join_expanded=True,
            pymc_initial_point_fn=lambda seed=None: {},
            var_names=None,
        )
        shared_vars: list[Any] = []
        for var in [*logp_pt.get_shared(), *expand_pt.get_shared()]:
            if var not in shared_vars:
                shared_vars.append(var)
        keys = {var: f"shared{i}" for i, var in enumerate(shared_vars)}
        values = {keys[v]: _frozen(v.get_value()) for v in shared_vars}
        user_data = ncp.make_user_data(keys, values)
        logp_raw, logp_sig = ncp._make_c_logp_func(
            n_dim, logp_pt.vm.jit_fn, user_data, [keys[v] for v in logp_pt.get_shared()], values
        )
        expand_raw, expand_sig = ncp._make_c_expand_func(
            n_dim,
            n_expanded,
            expand_pt.vm.jit_fn,
            user_data,
            [keys[v] for v in expand_pt.get_shared()],
            values,
        )
        logp = _cfunc(logp_raw, logp_sig)
        expand = _cfunc(expand_raw, expand_sig)
    names, _, shapes = shape_info
    free = tuple((names[i], tuple(int(d) for d in shapes[i])) for i in range(len(model.free_RVs)))
    shared = tuple((v.name, keys[v], int(v.ndim), str(v.dtype)) for v in shared_vars)
    return _Entry(logp, expand, n_dim, n_expanded, shape_info, free, tuple(reparam), shared)


def _compile_uncached(model: Any) -> Any:
    nutpie = import_nutpie()
    from pytensor import config as pytensor_config

    with pytensor_config.change_flags(numba__fastmath=False):
        return nutpie.compile_pymc_model(model, backend="numba")


def _frozen(value: Any) -> np.ndarray:
    array = np.array(value, order="C", copy=True)
    array.flags.writeable = False
    return array


def _assemble(entry: _Entry, model: Any) -> Any:
    """The nutpie model of ``entry`` on ``model``'s data (its ``pm.Data`` values)."""
    ncp = import_nutpie("nutpie.compile_pymc")
    named = {v.name: v for v in model.data_vars}
    keys, values = {}, {}
    for name, key, ndim, dtype in entry.shared:
        var = named[name]
        if var.ndim != ndim or str(var.dtype) != dtype:
            raise ValueError(f"data input {name!r} changed type; recompile.")
        keys[var] = key
        values[key] = _frozen(var.get_value())
    dims, coords = ncp._prepare_dims_and_coords(model, entry.shape_info, entry.reparameterized)
    names, _, shapes = entry.shape_info
    return ncp.CompiledPyMCModel(
        _n_dim=entry.n_dim,
        dims=dims,
        _coords=coords,
        _shapes={n: tuple(s) for n, s in zip(names, shapes, strict=True)},
        compiled_logp_func=entry.logp,
        compiled_expand_func=entry.expand,
        initial_point_func=_initial_point_function(model, entry.free),
        shared_data=values,
        shared_var_keys=keys,
        user_data=ncp.make_user_data(keys, values),
        n_expanded=entry.n_expanded,
        shape_info=entry.shape_info,
        logp_func=None,
        expand_func=None,
        reparameterized_names=list(entry.reparameterized),
    )


# --- the disk cache -------------------------------------------------------------------------


def _path(root: Path, key: str) -> Path:
    return root / "nutpie" / key[:2] / f"{key}.nutpie"


def _store(root: Path, key: str, entry: _Entry) -> None:
    """Write ``entry`` atomically (a temporary file renamed into place); a failure to
    write (read-only or full disk) only costs the next process a compilation."""
    from numba.core.serialize import dumps

    for callback in (entry.logp, entry.expand):
        library = callback.result.library
        if library.has_dynamic_globals or any(not x.can_cache for x in callback.result.lifted):
            return  # machine code that points into this process: not reusable
    fields = {f.name: getattr(entry, f.name) for f in dataclasses.fields(entry)}
    fields.update(logp=None, expand=None)
    payload = dumps(
        {
            "key": key,
            "versions": _versions(),
            "entry": fields,
            "logp": entry.logp.result._reduce(),
            "expand": entry.expand.result._reduce(),
        }
    )
    header = _MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n"
    path = _path(root, key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(header + payload)
        os.replace(tmp, path)
    except OSError as err:
        warnings.warn(f"clvbayes could not write its compile cache ({err}).", stacklevel=3)


def _load(root: Path, key: str) -> _Entry | None:
    """The entry of ``key``, or None (missing; or corrupted/stale: then deleted)."""
    path = _path(root, key)
    try:
        blob = path.read_bytes()
    except OSError:
        return None
    try:
        return _decode(blob, key)
    except Exception:  # any damage: recompile
        path.unlink(missing_ok=True)
        return None


def _decode(blob: bytes, key: str) -> _Entry:
    from numba.core.compiler import CompileResult
    from numba.core.registry import cpu_target

    import_nutpie()  # before the entry's pickles import it (clvbayes.imports)
    if not blob.startswith(_MAGIC):
        raise ValueError("not a clvbayes cache entry")
    checksum, _, payload = blob[len(_MAGIC) :].partition(b"\n")
    if hashlib.sha256(payload).hexdigest().encode() != checksum:
        raise ValueError("checksum mismatch")
    data = pickle.loads(payload)  # our own cache directory (see the module docstring)
    if data["key"] != key or data["versions"] != _versions():
        raise ValueError("stale entry")
    context = cpu_target.target_context
    context.refresh()  # as numba's cache does: the runtime (NRT) and the registries
    callbacks = {}
    for name in ("logp", "expand"):
        result = CompileResult._rebuild(context, *data[name])
        address = result.library.get_pointer_to_function(result.fndesc.llvm_cfunc_wrapper_name)
        callbacks[name] = CompiledCallback(address, result)
    fields = dict(data["entry"])
    fields.update(callbacks)
    return _Entry(**fields)


# --- the public entry point -----------------------------------------------------------------


def compile_model(model: Any) -> tuple[Any, str]:
    """``model`` compiled for nutpie, from the process cache, the disk cache or afresh.

    Parameters
    ----------
    model : pymc.Model
        A built model; its ``pm.Data`` inputs are the data the compiled model starts with.

    Returns
    -------
    compiled : nutpie CompiledPyMCModel
        Ready for ``nutpie.sample``.
    source : {"memory", "disk", "compiled"}
        Where it came from.
    """
    key = graph_key(model)
    with _LOCK:
        entry = _MEMORY.get(key)
    source = "memory"
    root = cache_dir()
    if entry is None and root is not None:
        entry, source = _load(root, key), "disk"
    if entry is None:
        try:
            entry, source = _compile(model), "compiled"
        except (ImportError, AttributeError, TypeError):
            # nutpie's internals are not what this module was written for: compile
            # through its public function, without caching
            return _compile_uncached(model), "compiled"
        if root is not None:
            _store(root, key, entry)
    with _LOCK:
        _MEMORY[key] = entry
        _MEMORY.move_to_end(key)
        while len(_MEMORY) > _MEMORY_SIZE:
            _MEMORY.popitem(last=False)
    return _assemble(entry, model), source
