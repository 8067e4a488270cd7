"""What every model shares: an immutable spec that fits, and the fitted object it returns.

A spec (``BGNBD(priors=...)``) holds options only. ``spec.fit(rfm, ...)`` validates and
compresses the data, builds the PyMC model from the pure maths in :mod:`clvbayes.math`,
runs inference, checks convergence and returns a new :class:`FittedModel`; the spec and
the user's priors are left untouched, so fitting twice never sees stale state.

Segments. A spec that supports them (``supports_segments``) takes ``segments="column"``
and ``pooling`` (see :mod:`clvbayes.models.hierarchy`): the data are compressed with the
segment code in the unique-row key, the parameters get a ``segment`` dimension and the
one-population likelihood (``_population_terms``) is evaluated per segment block.
Fitted segmented models have posterior dims ``(chain, draw, segment)``.
"""

from __future__ import annotations

import hashlib
import json
import types
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr
from pymc_extras.prior import Prior

from clvbayes.data.compress import SEGMENT, CompressedRFM, compress
from clvbayes.data.validate import check_rfm
from clvbayes.diagnostics import Diagnosis, diagnose, warn_problems
from clvbayes.inference import Method, run_inference
from clvbayes.math._ops import LogLikTerms
from clvbayes.models.hierarchy import (
    PARTIAL_TARGET_ACCEPT,
    PARTIAL_TUNE,
    POOLING,
    Pooling,
    by_segment,
    centered_mask,
    check_segment_sizes,
    from_link,
    hierarchical_parameter,
    read_segments,
    segment_prior,
    sum_by_segment,
    to_link,
)
from clvbayes.priors import resolve_priors

__all__ = ["FittedModel", "ModelSpec"]


class ModelSpec(ABC):
    """Base class of model specifications. Subclasses define the class variables below."""

    kind: ClassVar[str]
    columns: ClassVar[tuple[str, ...]]
    params: ClassVar[tuple[str, ...]]
    default_priors: ClassVar[Mapping[str, Prior]]
    prior_names: ClassVar[frozenset[str]]
    prior_alternatives: ClassVar[Mapping[frozenset[str], frozenset[str]]] = {}
    #: whether ``segments=`` is supported; such a spec implements ``_population_terms``
    supports_segments: ClassVar[bool] = False
    #: link scale of each hierarchically pooled parameter (``pooling="partial"``)
    segment_links: ClassVar[Mapping[str, str]] = {}
    #: hyperpriors ``<name>_mu``/``<name>_sigma`` of ``pooling="partial"``
    hierarchical_priors: ClassVar[Mapping[str, Prior]] = {}
    #: whether :meth:`fit_many` may compile once and swap the data in: the builder's graph
    #: must depend on the data only through the inputs of
    #: :class:`~clvbayes.models.shared_data.SharedRFM` (not so for the Pareto/NBD, whose
    #: likelihood groups rows by pairs of concrete values)
    reusable_compilation: ClassVar[bool] = True

    def __init__(
        self,
        priors: Mapping[str, Any] | None = None,
        *,
        segments: str | None = None,
        pooling: Pooling = "partial",
        centered: bool | Literal["auto"] = "auto",
    ) -> None:
        if segments is not None:
            if not self.supports_segments:
                raise ValueError(f"{self.kind} does not support segments yet.")
            if not isinstance(segments, str):
                raise TypeError(f"segments must name a column (a str), got {segments!r}.")
            if pooling not in POOLING:
                raise ValueError(f"pooling={pooling!r} is not one of {POOLING}.")
            if not (isinstance(centered, bool) or centered == "auto"):
                raise ValueError(f"centered must be True, False or 'auto', got {centered!r}.")
        hierarchical = segments is not None and pooling == "partial"
        resolved = resolve_priors(
            self.hierarchical_priors if hierarchical else self.default_priors,
            priors,
            allowed=frozenset(self.hierarchical_priors) if hierarchical else self.prior_names,
            alternatives=None if hierarchical else self.prior_alternatives,
        )
        object.__setattr__(self, "_priors", types.MappingProxyType(resolved))
        object.__setattr__(self, "segments", segments)
        object.__setattr__(self, "pooling", pooling if segments is not None else "complete")
        object.__setattr__(self, "centered", centered)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable; create a new spec.")

    def __repr__(self) -> str:
        options = "".join(f", {k}={v!r}" for k, v in self.options().items())
        return f"{type(self).__name__}(priors={dict(self._priors)!r}{options})"

    def options(self) -> dict[str, Any]:
        """Constructor options besides the priors (``{}`` for an unsegmented spec)."""
        if self.segments is None:
            return {}
        return {"segments": self.segments, "pooling": self.pooling, "centered": self.centered}

    @property
    def segmented(self) -> bool:
        """Whether the spec has segments."""
        return self.segments is not None

    @property
    def hyper_params(self) -> tuple[str, ...]:
        """Hyperparameters kept in the posterior (``pooling="partial"``): ``<name>_mu``,
        ``<name>_sigma`` on the link scale."""
        if self.segments is None or self.pooling != "partial":
            return ()
        return tuple(f"{n}_{h}" for n in self.segment_links for h in ("mu", "sigma"))

    @property
    def priors(self) -> dict[str, Prior]:
        """The resolved priors (copies: changing them does not change the spec)."""
        return {k: v.deepcopy() for k, v in self._priors.items()}

    # --- what a subclass provides -----------------------------------------------------
    def select(self, values: dict[str, np.ndarray]) -> np.ndarray:
        """Boolean mask of the customers this model uses (all, by default)."""
        return np.ones(len(next(iter(values.values()))), dtype=bool)

    @abstractmethod
    def build(self, data: CompressedRFM, *, likelihood: bool = True) -> pm.Model:
        """The PyMC model on compressed data (priors only if ``likelihood`` is False)."""

    @abstractmethod
    def row_loglik(self, params: Mapping[str, Any], data: CompressedRFM) -> np.ndarray:
        """Log-likelihood per unique row; ``params`` arrays broadcast against rows."""

    def pooled_values(self, params: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """The quantities partial pooling works on (keys of ``segment_links``), from the
        model parameters (e.g. BG/NBD ``r, alpha, a, b`` -> ``r``, the mean purchase rate
        ``r/alpha``, ``phi_dropout``, ``kappa_dropout``), on their natural scale."""
        raise NotImplementedError(f"{self.kind} has no segment parametrisation.")

    def from_pooled_values(self, pooled: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """The inverse of :meth:`pooled_values`: model parameters."""
        raise NotImplementedError(f"{self.kind} has no segment parametrisation.")

    def link_values(self, params: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """:meth:`pooled_values` on the link scale of the hierarchical prior (where
        ``<name>_mu`` and ``<name>_sigma`` live): what segments are compared and shrunk on."""
        pooled = self.pooled_values(params)
        return {n: to_link(link, pooled[n]) for n, link in self.segment_links.items()}

    def from_link_values(self, links: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Model parameters from link-scale values (the inverse of :meth:`link_values`)."""
        pooled = {n: from_link(link, links[n]) for n, link in self.segment_links.items()}
        return self.from_pooled_values(pooled)

    # --- shared machinery -------------------------------------------------------------
    def prepare(self, rfm: Any) -> CompressedRFM:
        """Validate ``rfm``, select this model's customers and compress them.

        Segmented specs add each customer's segment code as the first compressed column;
        the segment labels are learnt from all customers of ``rfm`` (also those the model
        does not use), so every segment has parameters.
        """
        values = check_rfm(rfm, self.columns)
        keep = self.select(values)
        if not keep.any():
            raise ValueError(
                f"{self.kind}: none of the {keep.size} customers can inform this model "
                f"({self.selection_note})."
            )
        if self.segments is None:
            return compress({c: v[keep] for c, v in values.items()}, self.columns)
        codes, levels = read_segments(rfm, self.segments)
        kept = {SEGMENT: codes[keep].astype(float)}
        kept.update({c: v[keep] for c, v in values.items()})
        data = compress(kept, (SEGMENT, *self.columns), segments=levels)
        what = "customers" if keep.all() else f"customers used ({self.selection_note})"
        check_segment_sizes(data.segment_counts(), levels, self.pooling, self.kind, what)
        return data

    selection_note: ClassVar[str] = "all customers are used"

    def _add_priors(self, data: CompressedRFM | None = None) -> dict[str, Any]:
        """Create the prior variables inside the current model context.

        For segmented specs (``data`` needed) parameters have dims ``("segment",)``:
        independent plain priors (``pooling="none"``) or the hierarchical prior on the
        parameters of ``segment_links`` (``"partial"``); ``"complete"`` is the plain model.
        """
        if self.segments is None or self.pooling == "complete":
            return {name: prior.create_variable(name) for name, prior in self._priors.items()}
        if data is None:
            raise ValueError("segmented priors need the data (for the segment sizes).")
        if self.pooling == "none":
            return {
                name: segment_prior(prior).create_variable(name)
                for name, prior in self._priors.items()
            }
        mask = centered_mask(self.centered, data.segment_counts())
        return {
            name: hierarchical_parameter(
                name, link, self._priors[f"{name}_mu"], self._priors[f"{name}_sigma"], mask
            )
            for name, link in self.segment_links.items()
        }

    def _model_coords(self, data: CompressedRFM) -> dict[str, list[str]]:
        """PyMC coords: ``segment`` labels for segmented data."""
        return {"segment": list(data.segments)} if data.segmented else {}

    def _population_terms(self, params: Mapping[str, Any], data: CompressedRFM) -> LogLikTerms:
        """One population's log-likelihood as terms (segment-capable specs define it):
        ``.per_row()`` for the pointwise values, ``.weighted_sum(counts)`` for the total."""
        raise NotImplementedError(f"{self.kind} does not define _population_terms.")

    def _population_loglik(self, params: Mapping[str, Any], data: CompressedRFM) -> Any:
        """Log-likelihood per row of one population."""
        return self._population_terms(params, data).per_row()

    def _rows_loglik(self, params: Mapping[str, Any], data: CompressedRFM) -> Any:
        """Per-row log-likelihood; per segment block when the parameters are per segment.

        ``params`` broadcast against the rows (one population), or, for segmented specs
        with ``pooling`` "partial"/"none", have the segment axis last (PyTensor vectors
        or numpy ``(chain, draw, n_segments)``).
        """
        if data.segmented and self.pooling != "complete":
            return by_segment(self._population_loglik, params, data)
        return self._population_loglik(params, data)

    def _weighted_loglik(self, params: Mapping[str, Any], data: CompressedRFM) -> Any:
        """``Σ counts x per-row log-likelihood`` (the PyMC model's potential), with the
        per-level terms summed per level (:class:`~clvbayes.math._ops.LogLikTerms`);
        per segment block when the parameters are per segment."""

        def total(p: Mapping[str, Any], block: CompressedRFM) -> Any:
            return self._population_terms(p, block).weighted_sum(block.counts)

        if data.segmented and self.pooling != "complete":
            return sum_by_segment(total, params, data)
        return total(params, data)

    def fit(
        self,
        rfm: Any,
        *,
        method: Method = "nuts",
        draws: int = 1000,
        tune: int | None = None,
        chains: int = 4,
        seed: int | None = None,
        progressbar: bool = True,
        **inference_kwargs: Any,
    ) -> FittedModel:
        """Fit the model to an RFM table and return the fitted model.

        Parameters
        ----------
        rfm : DataFrame
            One row per customer with the model's columns (see ``columns``).
        method : {"nuts", "map", "advi", "pathfinder"}
            Inference method (:mod:`clvbayes.inference` says when to use each).
        draws, tune, chains : int
            Posterior draws per chain, NUTS tuning steps (default 1,000; 2,000 for
            partially pooled segmented fits,
            :data:`clvbayes.models.hierarchy.PARTIAL_TUNE`), chains.
        seed : int, optional
            Random seed; the same seed gives identical draws.
        progressbar : bool
            Show progress.
        **inference_kwargs
            Passed to :func:`clvbayes.inference.run_inference` (``sampler``,
            ``target_accept``, ``advi_steps``). Partially pooled segmented fits default to
            ``target_accept=0.995`` (:data:`clvbayes.models.hierarchy.PARTIAL_TARGET_ACCEPT`).

        Returns
        -------
        FittedModel
        """
        data = self.prepare(rfm)
        return self._fit_prepared(
            data,
            self.build(data),
            method=method,
            draws=draws,
            tune=tune,
            chains=chains,
            seed=seed,
            progressbar=progressbar,
            **inference_kwargs,
        )

    def fit_many(
        self,
        datasets: Iterable[Any],
        *,
        seeds: int | Sequence[int] | None = None,
        method: Method = "nuts",
        draws: int = 1000,
        tune: int | None = None,
        chains: int = 4,
        progressbar: bool = False,
        **inference_kwargs: Any,
    ) -> list[FittedModel]:
        """Fit the model to each of several RFM tables, compiling it once.

        For simulation studies (parameter recovery, simulation-based calibration),
        bootstraps and backtests that refit the same model many times. With NUTS on
        nutpie the model is built once on named data inputs
        (:class:`~clvbayes.models.shared_data.SharedRFM`) and compiled once; each data
        set is then swapped into the compiled sampler, which saves the 2-5 s of numba
        compilation that every :meth:`fit` pays (often more than the sampling itself).
        A data set of another structure (other segments with customers) is compiled
        anew. Other methods, PyMC's sampler and specs whose graph depends on concrete
        data (``reusable_compilation`` False: the Pareto/NBD) fit one by one.

        Each result is a :class:`FittedModel` like :meth:`fit` returns, with
        ``settings["shared_inputs"]`` True where the data were swapped in. The draws are
        reproducible for the same seeds, but not bit-identical to :meth:`fit`'s for the
        same seed: a graph on inputs is compiled differently from one on constants
        (the posterior is the same; ``tests/test_fit_many.py`` checks the log density).

        Parameters
        ----------
        datasets : iterable of DataFrame
            RFM tables with the model's columns.
        seeds : int or sequence of int, optional
            One seed per data set, or one seed from which they are derived
            (``numpy.random.SeedSequence``); None: random.
        method, draws, tune, chains, progressbar, **inference_kwargs
            As for :meth:`fit` (the progress bar is off by default).

        Returns
        -------
        list of FittedModel
            In the order of ``datasets``.
        """
        from clvbayes.inference import compile_nutpie, uses_nutpie
        from clvbayes.models.shared_data import SharedRFM

        datasets = list(datasets)
        if isinstance(seeds, int | np.integer) or seeds is None:
            state = np.random.SeedSequence(seeds).generate_state(len(datasets))
            seeds = [int(s) >> 1 for s in state]
        seeds = [int(s) for s in seeds]
        if len(seeds) != len(datasets):
            raise ValueError(f"fit_many: {len(seeds)} seeds for {len(datasets)} data sets.")
        kw = {"method": method, "draws": draws, "tune": tune, "chains": chains}
        kw.update(progressbar=progressbar, **inference_kwargs)
        reuse = (
            method == "nuts"
            and self.reusable_compilation
            and uses_nutpie(inference_kwargs.get("sampler", "auto"))
        )
        fits = []
        program: tuple[Any, SharedRFM, pm.Model, Any] | None = None
        for rfm, seed in zip(datasets, seeds, strict=True):
            data = self.prepare(rfm)
            if not reuse:
                fits.append(self._fit_prepared(data, self.build(data), seed=seed, **kw))
                continue
            key = self._structure(data)
            if program is None or program[0] != key:
                shared = SharedRFM(data)
                model = self.build(shared)  # type: ignore[arg-type]
                program = (key, shared, model, compile_nutpie(model))
                compiled = program[3]
            else:
                known = {v.name for v in program[3].shared_var_keys}
                inputs = program[1].inputs(data)
                compiled = program[3].with_data(**{k: v for k, v in inputs.items() if k in known})
            fits.append(
                self._fit_prepared(
                    data, program[2], compiled=compiled, shared_inputs=True, seed=seed, **kw
                )
            )
        return fits

    def _structure(self, data: CompressedRFM) -> tuple[Any, ...]:
        """What the graph built on ``data`` depends on besides the arrays: the data's
        structure and, for partial pooling, which segments are centred."""
        from clvbayes.models.shared_data import structure

        key = structure(data)
        if data.segmented and self.pooling == "partial":
            key += (tuple(centered_mask(self.centered, data.segment_counts())),)
        return key

    def _fit_prepared(
        self,
        data: CompressedRFM,
        model: pm.Model,
        *,
        method: Method,
        draws: int,
        tune: int | None,
        chains: int,
        seed: int | None,
        progressbar: bool,
        compiled: Any = None,
        shared_inputs: bool = False,
        **inference_kwargs: Any,
    ) -> FittedModel:
        """Inference on ``model`` (built on ``data``), diagnosis, the fitted object.

        ``compiled``: ``model`` compiled for nutpie with ``data`` swapped in
        (``shared_inputs``: built on :class:`~clvbayes.models.shared_data.SharedRFM`)."""
        partial = self.pooling == "partial" and self.segments is not None
        if partial and method == "nuts":
            inference_kwargs.setdefault("target_accept", PARTIAL_TARGET_ACCEPT)
        if tune is None:
            tune = PARTIAL_TUNE if partial else 1000
        names = [*self.params, *self.hyper_params]
        result = run_inference(
            model,
            names,
            method=method,
            draws=draws,
            tune=tune,
            chains=chains,
            seed=seed,
            progressbar=progressbar,
            compiled=compiled,
            **inference_kwargs,
        )
        idata = result.idata
        if data.segmented:
            idata = _with_segment_coords(idata, data.segments)
        problems: tuple[str, ...] = ()
        if method == "nuts":
            problems = _diagnose(idata, names).problems
            warn_problems(problems, self.kind)
        settings = {**result.settings, **({"shared_inputs": True} if shared_inputs else {})}
        return FittedModel(
            spec=self,
            idata=idata,
            data=data,
            fingerprint=fingerprint(data),
            settings=settings,
            problems=problems,
        )


def _with_segment_coords(idata: xr.DataTree, levels: tuple[str, ...]) -> xr.DataTree:
    """The same tree with the posterior's ``segment`` coordinate set to the labels (also
    under complete pooling, where no parameter has that dimension)."""
    groups = {k: idata[k].to_dataset() for k in idata.children}
    groups["posterior"] = groups["posterior"].assign_coords(segment=np.array(levels, dtype=str))
    return xr.DataTree.from_dict(groups)


def _diagnose(idata: xr.DataTree, names: list[str]) -> Diagnosis:
    """:func:`clvbayes.diagnostics.diagnose`, with per-segment parameters checked one by
    one (as scalar variables ``name[label]``)."""
    post = idata["posterior"].to_dataset()
    flat: dict[str, xr.DataArray] = {}
    for name in names:
        values = post[name]
        if "segment" in values.dims:
            for label in values["segment"].to_numpy():
                flat[f"{name}[{label}]"] = values.sel(segment=label, drop=True)
        else:
            flat[name] = values
    groups = {"posterior": xr.Dataset(flat)}
    if "sample_stats" in idata.children:
        groups["sample_stats"] = idata["sample_stats"].to_dataset()
    return diagnose(xr.DataTree.from_dict(groups), list(flat))


def fingerprint(data: CompressedRFM) -> str:
    """SHA-256 of the compressed rows, counts and customer order (first 16 hex digits)."""
    h = hashlib.sha256()
    for c in data.columns:
        h.update(c.encode())
        h.update(np.ascontiguousarray(data.rows[c], dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(data.counts, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(data.inverse, dtype=np.int64).tobytes())
    return h.hexdigest()[:16]


@dataclass(frozen=True, eq=False)
class FittedModel:
    """A fitted model: the spec, the posterior, the data fingerprint and the settings.

    Attributes
    ----------
    spec : ModelSpec
        The specification that was fitted.
    idata : xarray.DataTree
        ``posterior`` (population parameters, dims ``chain, draw``), for NUTS
        ``sample_stats``, and ``observed_data``: the unique rows fitted (one variable per
        data column and ``count``, dim ``row``) and ``customer_row``, each customer's row
        (dim ``customer``), so ``observed_data[c][customer_row]`` is the fitted RFM
        column. The root's attributes hold the model type, data fingerprint, priors
        (JSON) and the fit settings (method, sampler, draws, tune, chains, seed, ...).
        Built from the other fields when the object is created.
    data : CompressedRFM or None
        The unique rows the model was fitted on (None if saved without data).
    fingerprint : str
        Hash of the data, to tell whether two fits saw the same customers.
    settings : dict
        Inference settings (method, sampler, draws, tune, chains, seed, seconds).
    problems : tuple of str
        Convergence problems found at fit time (each also raised as a warning).
    """

    spec: ModelSpec
    idata: xr.DataTree
    data: CompressedRFM | None
    fingerprint: str
    settings: dict[str, Any] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        groups = {
            k: self.idata[k].to_dataset() for k in self.idata.children if k != "observed_data"
        }
        if self.data is not None:
            d = self.data
            arrays = {c: ("row", d.rows[c]) for c in d.columns}
            arrays.update(count=("row", d.counts), customer_row=("customer", d.inverse))
            groups["observed_data"] = xr.Dataset(arrays)
        tree = xr.DataTree.from_dict(groups)
        tree.attrs = {
            "model_kind": self.spec.kind,
            "data_fingerprint": self.fingerprint,
            "priors": self.priors_json(),
            **self.settings,
        }
        object.__setattr__(self, "idata", tree)

    def __repr__(self) -> str:
        post = self.posterior
        n = f"{post.sizes['chain']}x{post.sizes['draw']}"
        customers = self.data.n_customers if self.data is not None else "?"
        means = ", ".join(f"{k}={float(post[k].mean()):.4g}" for k in self.spec.params)
        return (
            f"<Fitted {self.kind}: {self.settings.get('method')} {n} draws, "
            f"{customers} customers, {means}; {len(self.problems)} convergence problem(s)>"
        )

    @property
    def kind(self) -> str:
        """Model type, e.g. ``"BGNBD"``."""
        return self.spec.kind

    @property
    def posterior(self) -> xr.Dataset:
        """Posterior draws of the population parameters (dims ``chain, draw`` and, for
        segmented fits with partial or no pooling, ``segment``)."""
        return self.idata["posterior"].to_dataset()

    @property
    def segment_column(self) -> str | None:
        """Name of the RFM column that defines the segments (None if unsegmented)."""
        return self.spec.segments

    @property
    def segment_levels(self) -> tuple[str, ...]:
        """Segment labels in code order (empty if unsegmented)."""
        if self.spec.segments is None:
            return ()
        return tuple(str(v) for v in self.posterior["segment"].to_numpy())

    def segment_codes(self, rfm: Any) -> np.ndarray | None:
        """Each customer's segment code in ``rfm`` (None for an unsegmented fit).

        Raises ``ValueError`` for a missing column, missing values, or segments the model
        was not fitted on.
        """
        if self.spec.segments is None:
            return None
        codes, _ = read_segments(rfm, self.spec.segments, self.segment_levels)
        return codes

    def params(self) -> dict[str, np.ndarray]:
        """Posterior draws as numpy arrays.

        Shape ``(chain, draw)``, or ``(chain, draw, n_segments)`` for a segmented fit
        (complete pooling repeats the one population for every segment); segments are
        in the order of :attr:`segment_levels`.
        """
        post = self.posterior
        out = {p: post[p].to_numpy() for p in self.spec.params}
        if self.spec.segments is not None and self.spec.pooling == "complete":
            n = post.sizes["segment"]
            out = {k: np.repeat(v[..., None], n, axis=-1) for k, v in out.items()}
        return out

    def customer_params(self, rfm: Any, take: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Each customer's parameter draws: its segment's for a segmented fit.

        Parameters
        ----------
        rfm : DataFrame or mapping
            The customers (with the segment column for a segmented fit). Not modified.
        take : array of int, optional
            Flat ``chain * draw`` indices of the draws to use (default: all).

        Returns
        -------
        dict of str to ndarray
            Per parameter, ``(n_draws, n_customers)`` for a segmented fit and
            ``(n_draws, 1)`` otherwise (broadcasting against the customers).
        """
        codes = self.segment_codes(rfm)
        out = {}
        for name, values in self.params().items():
            flat = values.reshape(-1, values.shape[-1]) if codes is not None else values.reshape(-1)
            if take is not None:
                flat = flat[take]
            out[name] = flat[:, codes] if codes is not None else flat[:, None]
        return out

    def summary(self, ci_prob: float = 0.9) -> pd.DataFrame:
        """Parameter table: mean, sd, equal-tailed interval, ESS, R-hat.

        Parameters
        ----------
        ci_prob : float
            Probability mass of the credible interval.
        """
        import arviz as az

        n_draws = self.posterior.sizes["chain"] * self.posterior.sizes["draw"]
        kind = "all" if n_draws > 1 and self.posterior.sizes["chain"] > 1 else "stats"
        with warnings.catch_warnings():
            # single-chain/single-draw fits (MAP) have no defined R-hat: said in the docs
            warnings.simplefilter("ignore", RuntimeWarning)
            table = az.summary(
                self.posterior,
                var_names=[*self.spec.params, *self.spec.hyper_params],
                kind=kind,
                ci_prob=ci_prob,
                round_to="none",
            )
        table.index.name = "parameter"
        return table

    def diagnostics(self) -> Diagnosis:
        """R-hat, bulk/tail ESS, divergences and E-BFMI (NUTS fits)."""
        if "sample_stats" not in self.idata.children:
            raise ValueError(
                f"diagnostics need NUTS output; this fit used method="
                f"{self.settings.get('method')!r}."
            )
        return _diagnose(self.idata, [*self.spec.params, *self.spec.hyper_params])

    def log_likelihood(self, per_customer: bool = False) -> xr.DataArray:
        """Pointwise log-likelihood under every posterior draw.

        Parameters
        ----------
        per_customer : bool
            False: one value per unique data row (dims ``chain, draw, row``; weight each
            row by ``data.counts``). True: expanded to one value per customer (dims
            ``chain, draw, customer``), in the order of the fitted RFM table.

        Returns
        -------
        xarray.DataArray
        """
        if self.data is None:
            raise ValueError("this model was saved without its data; refit or reload with it.")
        if self.spec.segments is not None and self.spec.pooling != "complete":
            params = self.params()  # segment axis last: row_loglik works per segment
        else:
            params = {k: self.posterior[k].to_numpy()[..., None] for k in self.spec.params}
        ll = self.spec.row_loglik(params, self.data)
        if per_customer:
            return xr.DataArray(self.data.expand(ll), dims=("chain", "draw", "customer"))
        return xr.DataArray(ll, dims=("chain", "draw", "row"))

    def save(self, path: str, *, include_data: bool = True) -> None:
        """Write to netCDF (``.nc``) or zarr (``.zarr``); see :func:`clvbayes.io.save`."""
        from clvbayes.io import save

        save(self, path, include_data=include_data)

    def priors_json(self) -> str:
        """The resolved priors as JSON (Prior's dict form)."""
        return json.dumps({k: v.to_dict() for k, v in self.spec.priors.items()}, sort_keys=True)
