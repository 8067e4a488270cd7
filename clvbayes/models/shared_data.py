"""Unique rows as named PyMC data inputs, so one compiled model serves many data sets.

A model built by ``spec.build(data)`` on a :class:`~clvbayes.data.compress.CompressedRFM`
holds the rows as constants: every new data set is a new graph and a new compilation
(about 2 s with nutpie's numba backend, often more than the sampling itself). Built on
a :class:`SharedRFM` instead, every array the builder reads (a column, a factor's levels
and index, the counts, the same per segment block) becomes a named ``pm.Data`` input;
:meth:`SharedRFM.inputs` then gives the same arrays for another data set of the same
*structure* (:func:`structure`), to be swapped into the compiled model
(``nutpie``'s ``with_data``). This is what :meth:`ModelSpec.fit_many` does.

The builders do not know the difference: a ``SharedRFM`` answers the calls they make
(``factor``, ``crossed``, ``profiles``, ``[column]``, ``moments``,
``counts``, ``segmented``, ``segments``, ``segment_counts``, ``segment_blocks``,
``profile_blocks``) with symbolic inputs where a
``CompressedRFM`` answers with arrays.
Only the data-dependent *structure* (segment labels, which segments have rows, and
anything the priors derive from the segment sizes) stays concrete, and a data set with
another structure needs a new build.

Data-only parts of the graph. Built on constants, PyTensor folds whatever depends on
the data alone (the customer counts summed per distinct frequency or age, the
frequencies gathered to the rows, ...) into constants once; built on inputs it would
recompute them at every log-density evaluation (on CDNOW master a third more time per
gradient). :meth:`SharedRFM.hoist` therefore turns each maximal data-only part of the
finished graph into one more named input, computed from the data (by the same PyTensor
operations, evaluated once per data set in numpy) when the model is built and for every
data set swapped in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from clvbayes.data.compress import CompressedRFM
from clvbayes.math.ops import Factor

__all__ = ["SharedRFM", "structure"]

Getter = Callable[[CompressedRFM], np.ndarray]


def structure(data: CompressedRFM) -> tuple[Any, ...]:
    """What a graph built on ``data`` depends on besides its arrays.

    Columns, segment labels, the codes of the segments that have rows (each gets its
    own block of inputs) and the number of covariate profile blocks of each
    (:meth:`~clvbayes.data.compress.CompressedRFM.profile_blocks`). Two data sets with
    equal structure can share a compiled model.
    """
    codes: tuple[int, ...] = ()
    parts = [data]
    if data.segmented:
        codes = tuple(code for code, _, _ in data.segment_blocks())
        parts = [block for _, _, block in data.segment_blocks()]
    profiles = tuple(_profile_count(part) for part in parts)
    return (data.columns, data.segments, codes, profiles)


def _profile_count(data: CompressedRFM) -> int:
    """Number of covariate profile blocks of (unsegmented) ``data``; 0 when its rows are
    not cut by profile."""
    blocks = data.profile_blocks()
    return 0 if blocks is None else len(blocks)


class SharedRFM:
    """A :class:`CompressedRFM` whose arrays enter the model as named ``pm.Data``.

    Create it inside nothing; its inputs are created on first access, which must happen
    inside the ``pm.Model`` context being built. Blocks of segmented data and covariate
    profile blocks are ``SharedRFM`` views sharing one registry of inputs (names
    prefixed ``segment<code>_``, ``profile<k>_``).

    Parameters
    ----------
    data : CompressedRFM
        The data set the model is built on (its arrays are the inputs' initial values).
    """

    def __init__(
        self, data: CompressedRFM, *, _path: tuple[tuple[str, int], ...] = (), _registry=None
    ):
        self._data = data
        self._path = _path
        self._registry: dict[str, tuple[tuple[tuple[str, int], ...], Getter, Any]] = (
            {} if _registry is None else _registry
        )
        # hoisted data-only parts: (input names they read, their function, output names)
        self._derived: list[tuple[tuple[str, ...], Callable[..., Any], tuple[str, ...]]] = []

    # --- the CompressedRFM interface the builders use ---------------------------------
    @property
    def columns(self) -> tuple[str, ...]:
        return self._data.columns

    @property
    def segments(self) -> tuple[str, ...]:
        return self._data.segments

    @property
    def segmented(self) -> bool:
        return self._data.segmented

    def segment_counts(self) -> np.ndarray:
        """Customers per segment of the template data (concrete: part of the structure)."""
        return self._data.segment_counts()

    @property
    def extras(self) -> dict[str, Any]:
        """The template's extras (concrete: their arrays enter through :meth:`derived`)."""
        return self._data.extras

    def derived(self, name: str, getter: Getter) -> Any:
        """``getter(data)`` as the named input ``name`` (recomputed for every data set)."""
        return self._input(name, getter)

    def factor(self, column: str) -> Factor:
        """``column`` as a Factor of two inputs, ``<column>_levels`` and ``<column>_index``."""
        levels = self._input(f"{column}_levels", lambda d: d.factor(column).levels)
        index = self._input(f"{column}_index", lambda d: d.factor(column).index)
        return Factor(levels, index)

    def crossed(self, column: str) -> Factor:
        """``column`` crossed with the covariate profiles, as a Factor of three inputs
        (``<column>_crossed_levels``, ``_index``, ``_profiles``)."""
        parts = ("levels", "index", "profiles")
        return Factor(
            *(
                self._input(f"{column}_crossed_{part}", lambda d, k=k: d.crossed(column)[k])
                for k, part in enumerate(parts)
            )
        )

    def profiles(self) -> tuple[dict[str, Any], Any]:
        """Each profile column's value per profile (inputs ``<column>_profiles``) and
        each row's profile (input ``profile_index``); see
        :meth:`~clvbayes.data.compress.CompressedRFM.profiles`."""
        values, _ = self._data.profiles()
        out = {c: self._input(f"{c}_profiles", lambda d, c=c: d.profiles()[0][c]) for c in values}
        return out, self._input("profile_index", lambda d: d.profiles()[1])

    def __getitem__(self, column: str) -> Any:
        return self._input(column, lambda d: d.rows[column])

    def moments(self, column: str) -> tuple[Any, Any]:
        """The column's mean and standard deviation over the customers, as two inputs
        (``<column>_mean``, ``<column>_sd``; e.g. a covariate's standardization)."""
        mean = self._input(f"{column}_mean", lambda d: d.moments(column)[0])
        sd = self._input(f"{column}_sd", lambda d: d.moments(column)[1])
        return mean, sd

    @property
    def counts(self) -> Any:
        return self._input("counts", lambda d: d.counts)

    def segment_blocks(self) -> tuple[tuple[int, slice, SharedRFM], ...]:
        """The template's segment blocks as ``SharedRFM`` views with their own inputs."""
        return self._views("segment", self._data.segment_blocks())

    def profile_blocks(self) -> tuple[tuple[int, slice, SharedRFM], ...] | None:
        """The template's covariate profile blocks as ``SharedRFM`` views (None as for
        :meth:`~clvbayes.data.compress.CompressedRFM.profile_blocks`)."""
        blocks = self._data.profile_blocks()
        return None if blocks is None else self._views("profile", blocks)

    def _views(self, kind: str, blocks: Any) -> tuple[tuple[int, slice, SharedRFM], ...]:
        return tuple(
            (k, part, SharedRFM(block, _path=(*self._path, (kind, k)), _registry=self._registry))
            for k, part, block in blocks
        )

    # --- inputs -----------------------------------------------------------------------
    def _name(self, key: str) -> str:
        return "".join(f"{kind}{k}_" for kind, k in self._path) + key

    def _input(self, key: str, getter: Getter) -> Any:
        import pymc as pm

        name = self._name(key)
        if name not in self._registry:
            variable = pm.Data(name, getter(self._data))
            self._registry[name] = (self._path, getter, variable)
        return self._registry[name][2]

    def hoist(self, expression: Any, name: str = "derived") -> Any:
        """``expression`` with each maximal data-only subgraph replaced by a new input.

        A subgraph is data-only when every input it reads is one of this object's inputs
        or a constant (no random variable). Its value for the template data becomes a
        ``pm.Data`` named ``<name><i>`` (call inside the model context), and
        :meth:`inputs` computes it for other data sets.
        """
        import pymc as pm
        import pytensor
        import pytensor.tensor as pt
        from pymc.distributions.distribution import SymbolicRandomVariable
        from pytensor.compile.mode import Mode
        from pytensor.graph.basic import Constant
        from pytensor.graph.replace import clone_replace, graph_replace
        from pytensor.graph.traversal import ancestors, graph_inputs, io_toposort
        from pytensor.tensor.random.op import RandomVariable
        from pytensor.tensor.type import TensorType

        by_variable = {entry[2]: key for key, entry in self._registry.items()}
        known = set(by_variable)
        nodes = io_toposort(list(graph_inputs([expression])), [expression])
        data_only = set(known)
        for node in nodes:
            reads = [v for v in node.inputs if not isinstance(v, Constant)]
            if reads and all(v in data_only for v in reads):
                data_only.update(node.outputs)
        # a random variable's inputs stay as they are: replacing one of their ancestors
        # would clone the variable out of the model (e.g. a hierarchical prior's mean
        # relative to the data's mean spend)
        random = (RandomVariable, SymbolicRandomVariable)  # e.g. a pm.CustomDist's
        rv_inputs = [v for node in nodes if isinstance(node.op, random) for v in node.inputs]
        feeds_rvs = set(ancestors(rv_inputs)) if rv_inputs else set()
        # only tensors become inputs: a data-only scalar (e.g. a length as a Scalar type)
        # stays computed from its data-only ancestors, which is equally correct
        frontier: list[Any] = []
        for node in nodes:
            if node.outputs[0] in data_only:
                continue
            for v in node.inputs:
                hoistable = isinstance(v.type, TensorType) and v not in known
                hoistable = hoistable and v not in feeds_rvs
                if v in data_only and hoistable and v not in frontier:
                    frontier.append(v)
        if expression in data_only and expression not in known:
            frontier.append(expression)
        if not frontier:
            return expression
        used = [v for v in graph_inputs(frontier) if v in known]
        symbols = [v.type() for v in used]
        outputs = clone_replace(frontier, dict(zip(used, symbols, strict=True)))
        fn = pytensor.function(symbols, outputs, mode=Mode(linker="py", optimizer=None))
        values = fn(*(v.get_value() for v in used))
        start = sum(len(out) for _, _, out in self._derived)
        names = tuple(f"{name}{start + i}" for i in range(len(frontier)))
        replacements = {}
        for var, value, key in zip(frontier, values, names, strict=True):
            new = pm.Data(key, np.asarray(value, dtype=var.dtype))
            if new.dtype != var.dtype:
                new = pt.cast(new, var.dtype)
            fixed = [i for i, n in enumerate(var.type.shape) if n == 1]
            replacements[var] = pt.specify_broadcastable(new, *fixed) if fixed else new
            self._registry[key] = ((), _derived_getter, new)
        self._derived.append((tuple(by_variable[v] for v in used), fn, names))
        # graph_replace rebuilds every node between the replaced variables and the output
        # that it cannot prove independent of them, and its walk can count a random
        # variable as dependent when one of its ancestors was reached first by another
        # path; a rebuilt random variable is a clone outside the model (its likelihood
        # term then reads a variable with no value: no gradient). Naming each random
        # variable as replaced by itself keeps it.
        read = {v for node in nodes for v in node.inputs} | {expression}  # the graph's
        keep = {v: v for n in nodes if isinstance(n.op, random) for v in n.outputs if v in read}
        return graph_replace(expression, {**keep, **replacements})

    def inputs(self, data: CompressedRFM) -> dict[str, np.ndarray]:
        """Every input's array for ``data``, by input name.

        Raises
        ------
        ValueError
            If ``data`` has another :func:`structure` than the template.
        """
        if structure(data) != structure(self._data):
            raise ValueError(
                "these data have another structure (columns, segments with rows) than the "
                "ones the model was built on; build the model again."
            )
        out = {}
        for name, (path, getter, _) in self._registry.items():
            if getter is _derived_getter:
                continue
            node = data
            for kind, k in path:
                blocks = node.segment_blocks() if kind == "segment" else node.profile_blocks()
                node = next(block for c, _, block in blocks if c == k)
            out[name] = getter(node)
        for reads, fn, names in self._derived:
            values = fn(*(np.asarray(out[k], dtype=self._registry[k][2].dtype) for k in reads))
            out.update({k: np.asarray(v) for k, v in zip(names, values, strict=True)})
        return out


def _derived_getter(data: CompressedRFM) -> np.ndarray:
    """Marks a hoisted input (computed by :meth:`SharedRFM.inputs` from the others)."""
    raise AssertionError("hoisted inputs are computed from the other inputs")
