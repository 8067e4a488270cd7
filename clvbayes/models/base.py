"""The model specification: options and priors of one family, and its PyMC graph.

A spec (``BGNBD(priors=...)``) is small and immutable. It names its family
(:mod:`clvbayes.math.family`: parameters, likelihood terms, reparametrisation), holds the
resolved priors and the segment options, prepares data (validate, select, compress) and
builds the PyMC model from the family's likelihood terms. Fitting is
:mod:`clvbayes.inference`'s (``spec.fit(...)`` delegates to it) and returns a new
:class:`~clvbayes.models.fitted.FittedModel`; the spec and the user's priors are never
changed, so fitting twice never sees stale state.

A concrete spec is a few lines: its ``family``, its default priors (and the prior
names it accepts) and a docstring; it registers itself by kind
(:mod:`clvbayes.models.registry`) when its class is defined.

Segments. A spec whose family has a reparametrisation takes ``segments="column"`` and
``pooling`` (see :mod:`clvbayes.models.hierarchy`): the data are compressed with the
segment code in the unique-row key, the parameters get a ``segment`` dimension and the
one-population likelihood terms are evaluated per segment block.

Covariates. ``purchase_covariates``, ``dropout_covariates`` (transaction models) and
``spend_covariates`` (Gamma-Gamma) name RFM columns that scale the family's parameters
per customer (:mod:`clvbayes.models.covariates`): the columns join the unique-row key and
the same likelihood terms run with per-row parameters. They combine with segments.
"""

from __future__ import annotations

import types
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import pymc as pm

from clvbayes import inference
from clvbayes.data.compress import SEGMENT, CompressedRFM, compress
from clvbayes.data.validate import check_informative, check_rfm
from clvbayes.math.covariates import CovariateDesign
from clvbayes.math.family import Family
from clvbayes.models.calendar import (
    TimeEffects,
    attach_calendar,
    check_time_effects,
    split_calendar,
    time_effect_names,
)
from clvbayes.models.covariates import (
    coefficient_priors,
    covariate_data,
    covariate_design,
    posterior_names,
)
from clvbayes.models.hierarchy import (
    Pooling,
    PoolingQuantities,
    check_segment_options,
    check_segment_sizes,
    read_segments,
)
from clvbayes.models.likelihood import build_model, create_priors, row_loglik, weighted_loglik
from clvbayes.models.registry import register_spec
from clvbayes.priors import Prior, resolve_priors

if TYPE_CHECKING:
    from clvbayes.models.fitted import FittedModel

__all__ = ["ModelSpec", "prepare_rfm", "spec_html"]


class ModelSpec(PoolingQuantities):
    """Base class of model specifications; a subclass sets ``family`` and its priors.

    The quantities partial pooling works on (``pooled_values``, ``link_values`` and their
    inverses) come from :class:`clvbayes.models.hierarchy.PoolingQuantities`.

    Class attributes
    ----------------
    family : Family
        The model family (:mod:`clvbayes.math.family`); ``kind``, ``params``,
        ``columns``, ``supports_segments``, ``segment_links`` and
        ``reusable_compilation`` are read from it when the subclass is defined.
    design : CovariateDesign
        (instance) The covariates and the parameters they scale (empty without).
    default_priors, prior_names, prior_alternatives
        Default priors, every prior name accepted, and groups of names that replace
        others together (e.g. ``a, b`` for ``phi_dropout, kappa_dropout``).
    hierarchical_priors, hierarchical_alternatives
        Hyperpriors ``<name>_mu``/``<name>_sigma`` of ``pooling="partial"`` (or
        ``<name>_mu_relative``, relative to a scale of the data), and the names that
        replace others.
    selection_note
        Which customers the model uses (see :meth:`select`), for error messages.
    """

    family: ClassVar[Family]
    design: CovariateDesign
    kind: ClassVar[str]
    params: ClassVar[tuple[str, ...]]
    columns: ClassVar[tuple[str, ...]]
    #: whether ``segments=`` is supported (the family has a reparametrisation)
    supports_segments: ClassVar[bool]
    #: link scale of each quantity partial pooling works on (empty if none)
    segment_links: ClassVar[Mapping[str, str]]
    #: whether one compiled model can take new data (:func:`clvbayes.inference.fit_many`)
    reusable_compilation: ClassVar[bool]
    default_priors: ClassVar[Mapping[str, Prior]]
    prior_names: ClassVar[frozenset[str]]
    prior_alternatives: ClassVar[Mapping[frozenset[str], frozenset[str]]] = {}
    hierarchical_priors: ClassVar[Mapping[str, Prior]] = {}
    hierarchical_alternatives: ClassVar[Mapping[frozenset[str], frozenset[str]]] = {}
    selection_note: ClassVar[str] = "all customers are used"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "family" in cls.__dict__:
            family, reparam = cls.family, cls.family.reparametrisation
            cls.kind, cls.params, cls.columns = family.kind, family.params, family.columns
            cls.supports_segments = reparam is not None
            cls.segment_links = {} if reparam is None else dict(reparam.links)
            cls.reusable_compilation = family.reusable_compilation
            register_spec(cls)

    def __init__(
        self,
        priors: Mapping[str, Any] | None = None,
        *,
        segments: str | None = None,
        pooling: Pooling = "partial",
        centered: bool | Literal["auto"] = "auto",
        time_effects: bool | TimeEffects | None = None,
        purchase_covariates: Sequence[str] | None = None,
        dropout_covariates: Sequence[str] | None = None,
        spend_covariates: Sequence[str] | None = None,
    ) -> None:
        te = check_time_effects(time_effects, self.family)
        if segments is not None:
            if not self.supports_segments:
                raise ValueError(f"{self.kind} does not support segments yet.")
            check_segment_options(segments, pooling, centered)
        design = covariate_design(
            self.family, purchase=purchase_covariates, dropout=dropout_covariates,
            spend=spend_covariates,
        )  # fmt: skip
        hierarchical = segments is not None and pooling == "partial"
        if hierarchical:
            alternatives = self.hierarchical_alternatives
            allowed = frozenset(self.hierarchical_priors).union(*alternatives)
        else:
            alternatives, allowed = self.prior_alternatives, self.prior_names
        coefficients = coefficient_priors(design)
        resolved = resolve_priors(
            {**(self.hierarchical_priors if hierarchical else self.default_priors), **coefficients},
            priors,
            allowed=allowed | frozenset(coefficients),
            alternatives=alternatives,
        )
        object.__setattr__(self, "_priors", types.MappingProxyType(resolved))
        object.__setattr__(self, "segments", segments)
        object.__setattr__(self, "pooling", pooling if segments is not None else "complete")
        object.__setattr__(self, "centered", centered)
        object.__setattr__(self, "time_effects", te)
        object.__setattr__(self, "design", design)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable; create a new spec.")

    def __repr__(self) -> str:
        shown = {
            **self.options(),
            **({"time_effects": self.time_effects} if self.time_effects else {}),
        }
        options = "".join(f", {k}={v!r}" for k, v in shown.items())
        return f"{type(self).__name__}(priors={dict(self._priors)!r}{options})"

    def _repr_html_(self) -> str:
        """Jupyter's display: the family, its data columns, priors and segment options."""
        return spec_html(self)

    # --- what the options mean ------------------------------------------------------------
    def options(self) -> dict[str, Any]:
        """Constructor options besides the priors, in JSON-friendly form (``{}`` for a
        plain spec)."""
        out: dict[str, Any] = {}
        if self.segments is not None:
            out = {"segments": self.segments, "pooling": self.pooling, "centered": self.centered}
        out.update({f"{r}_covariates": list(c) for r, c in self.design.roles.items()})
        if self.time_effects is not None:
            out["time_effects"] = self.time_effects.to_dict()
        return out

    @property
    def covariates(self) -> tuple[str, ...]:
        """The distinct covariate columns (empty without covariates)."""
        return self.design.names

    @property
    def segmented(self) -> bool:
        """Whether the spec has segments."""
        return self.segments is not None

    @property
    def partially_pooled(self) -> bool:
        """Whether the segments share a hierarchical prior (``pooling="partial"``)."""
        return self.segments is not None and self.pooling == "partial"

    @property
    def hyper_params(self) -> tuple[str, ...]:
        """Hyperparameters kept in the posterior (``pooling="partial"``): ``<name>_mu``,
        ``<name>_sigma`` on the link scale."""
        if not self.partially_pooled:
            return ()
        return tuple(f"{n}_{h}" for n in self.segment_links for h in ("mu", "sigma"))

    def posterior_names(self, data: CompressedRFM | None = None) -> list[str]:
        """The variables a fit keeps in its posterior: the parameters, the covariate
        coefficients (per unit and per sd, :func:`clvbayes.models.covariates.posterior_names`),
        the hyperparameters of partial pooling and, with calendar-time effects, those of
        the process (which depend on the data's grid: free periods, covariates)."""
        return [
            *self.params,
            *posterior_names(self.design),
            *self.hyper_params,
            *time_effect_names(self.time_effects, data),
        ]

    @property
    def priors(self) -> dict[str, Prior]:
        """The resolved priors (copies: changing them does not change the spec)."""
        return {k: v.deepcopy() for k, v in self._priors.items()}

    # --- data -----------------------------------------------------------------------------
    def select(self, values: dict[str, np.ndarray]) -> np.ndarray:
        """Boolean mask of the customers this model uses (all, by default)."""
        return np.ones(len(next(iter(values.values()))), dtype=bool)

    def prepare(self, rfm: Any) -> CompressedRFM:
        """Validate ``rfm``, select this model's customers and compress them.

        Segmented specs add each customer's segment code as the first compressed column;
        the segment labels are learnt from all customers of ``rfm`` (also those the model
        does not use), so every segment has parameters. Covariates follow as columns of
        their own (:func:`clvbayes.data.compress.covariate_column`); each must vary over
        the customers used.
        """
        return prepare_rfm(self, rfm)

    # --- the PyMC model (clvbayes.models.likelihood) -----------------------------------------
    def build(self, data: CompressedRFM, *, likelihood: bool = True) -> pm.Model:
        """The PyMC model on compressed data (priors only if ``likelihood`` is False):
        :func:`clvbayes.models.likelihood.build_model`."""
        return build_model(self, data, likelihood=likelihood)

    def complete(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The model parameters from the sampled quantities (the family's
        reparametrisation fills in e.g. ``a, b`` from ``phi_dropout, kappa_dropout``)."""
        reparam = self.family.reparametrisation
        if reparam is None or all(k in values for k in self.params):
            return {k: values[k] for k in self.params}
        return reparam.complete(values)

    def data_scale(self, data: Any) -> Any:
        """The scale of ``data`` that ``*_relative`` priors are relative to (e.g. the
        Gamma-Gamma's mean spend); a number, or a tensor for symbolic data."""
        raise NotImplementedError(f"{self.kind} has no priors relative to the data.")

    def add_priors(self, data: CompressedRFM | None = None) -> dict[str, Any]:
        """Create the prior variables inside the current model context:
        :func:`clvbayes.models.likelihood.create_priors` (plain, per segment, or relative
        to :meth:`data_scale` for ``*_relative`` priors)."""
        return create_priors(self, data)

    def weighted_loglik(self, params: Mapping[str, Any], data: Any, f: Any = None) -> Any:
        """``Σ counts x per-row log-likelihood``, the PyMC model's potential
        (:func:`clvbayes.models.likelihood.weighted_loglik`; ``f``: calendar-time
        effects' log multipliers)."""
        return weighted_loglik(self, params, data, f)

    def row_loglik(self, params: Mapping[str, Any], data: CompressedRFM, f: Any = None) -> Any:
        """Log-likelihood per unique row (:func:`clvbayes.models.likelihood.row_loglik`;
        ``f``: calendar-time effects' log multipliers)."""
        return row_loglik(self, params, data, f)

    # --- fitting (clvbayes.inference) ------------------------------------------------------
    def fit(
        self,
        rfm: Any,
        *,
        method: inference.Method = "nuts",
        draws: int = 1000,
        tune: int | None = None,
        chains: int = 4,
        seed: int | None = None,
        progressbar: bool = True,
        time_unit: str | None = None,
        **inference_kwargs: Any,
    ) -> FittedModel:
        """Fit the model to an RFM table and return the fitted model.

        Delegates to :func:`clvbayes.inference.fit`, which documents every argument:
        ``method`` ("nuts", "map", "advi", "pathfinder"), ``draws``/``tune``/``chains``
        of NUTS, ``seed`` (the same seed gives identical draws), ``progressbar``,
        ``time_unit`` (recorded on the fit; default: the table's), and
        ``sampler``/``target_accept``/``advi_steps``/``allow_partial``.
        """
        settings = {"method": method, "draws": draws, "tune": tune, "chains": chains}
        settings.update(seed=seed, progressbar=progressbar, time_unit=time_unit)
        settings.update(inference_kwargs)
        return inference.fit(self, rfm, **settings)

    def fit_many(self, datasets: Iterable[Any], **settings: Any) -> list[FittedModel]:
        """Fit to several RFM tables, compiling the model once (simulation studies):
        :func:`clvbayes.inference.fit_many` (``seeds=``, and the settings of :meth:`fit`)."""
        return inference.fit_many(self, datasets, **settings)


def spec_html(spec: ModelSpec) -> str:
    """The HTML card of a model spec (``ModelSpec._repr_html_``): the first line of its
    docstring, the data columns and parameters, the priors, the segment options and the
    calendar-time effects' options and priors; every value escaped."""
    from clvbayes.display import card, items_table

    doc = (type(spec).__doc__ or "").strip().splitlines()
    model = {"data columns": ", ".join(spec.columns), "parameters": ", ".join(spec.params)}
    if spec.segments is not None:
        model.update(segments=spec.segments, pooling=spec.pooling, centered=spec.centered)
    if spec.time_effects is not None:
        model["calendar-time effects"] = repr(spec.time_effects)
    priors = {name: str(prior) for name, prior in spec.priors.items()}
    if spec.time_effects is not None:
        priors.update({k: str(v) for k, v in spec.time_effects.priors.items()})
    return card(
        f"{type(spec).__name__} (not fitted)",
        ("Model", items_table(model)),
        ("Priors", items_table(priors)),
        note=doc[0] if doc else "",
    )


def prepare_rfm(spec: ModelSpec, rfm: Any) -> CompressedRFM:
    """``spec.prepare(rfm)``: validate ``rfm``, select the spec's customers, compress them
    (segment codes and covariates as columns of their own) and attach the calendar of
    calendar-time effects."""
    rfm, calendar = split_calendar(rfm, spec.time_effects, spec.kind)
    values = check_rfm(rfm, spec.columns)
    keep = spec.select(values)
    if not keep.any():
        raise ValueError(
            f"{spec.kind}: none of the {keep.size} customers can inform this model "
            f"({spec.selection_note})."
        )
    repeat = "made a repeat purchase (frequency > 0)"
    check_informative(keep & (values["frequency"] > 0), model=spec.kind, what=repeat,
                      stacklevel=6)  # fmt: skip
    what = "customers" if keep.all() else f"customers used ({spec.selection_note})"
    kept: dict[str, np.ndarray] = {}
    levels: tuple[str, ...] = ()
    if spec.segments is not None:
        codes, levels = read_segments(rfm, spec.segments)
        kept[SEGMENT] = codes[keep].astype(float)
    kept.update(covariate_data(spec.design, rfm, keep, what))
    kept.update({c: v[keep] for c, v in values.items()})
    data = compress(kept, tuple(kept), segments=levels)
    if spec.segments is not None:
        check_segment_sizes(data.segment_counts(), levels, spec.pooling, spec.kind, what)
    return attach_calendar(data, spec.time_effects, calendar, keep)
