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
"""

from __future__ import annotations

import types
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import pymc as pm
from pymc_extras.prior import Prior

from clvbayes import inference
from clvbayes.data.compress import SEGMENT, CompressedRFM, compress
from clvbayes.data.validate import check_rfm
from clvbayes.math.family import Family
from clvbayes.models.hierarchy import (
    Pooling,
    check_segment_options,
    check_segment_sizes,
    read_segments,
    segment_priors,
)
from clvbayes.models.likelihood import build_model, row_loglik, weighted_loglik
from clvbayes.models.registry import register_spec
from clvbayes.priors import resolve_priors

if TYPE_CHECKING:
    from clvbayes.models.fitted import FittedModel

__all__ = ["ModelSpec"]


class ModelSpec:
    """Base class of model specifications; a subclass sets ``family`` and its priors.

    Class attributes
    ----------------
    family : Family
        The model family (:mod:`clvbayes.math.family`); ``kind``, ``params``,
        ``columns``, ``supports_segments``, ``segment_links`` and
        ``reusable_compilation`` are read from it when the subclass is defined.
    default_priors, prior_names, prior_alternatives
        Default priors, every prior name accepted, and groups of names that replace
        others together (e.g. ``a, b`` for ``phi_dropout, kappa_dropout``).
    hierarchical_priors
        Hyperpriors ``<name>_mu``/``<name>_sigma`` of ``pooling="partial"``.
    selection_note
        Which customers the model uses (see :meth:`select`), for error messages.
    """

    family: ClassVar[Family]
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
    ) -> None:
        if segments is not None:
            if not self.supports_segments:
                raise ValueError(f"{self.kind} does not support segments yet.")
            check_segment_options(segments, pooling, centered)
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

    # --- what the options mean ------------------------------------------------------------
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

    def add_priors(self, data: CompressedRFM | None = None) -> dict[str, Any]:
        """Create the prior variables inside the current model context (plain, or per
        segment: :func:`clvbayes.models.hierarchy.segment_priors`)."""
        if self.segments is None or self.pooling == "complete":
            return {name: prior.create_variable(name) for name, prior in self._priors.items()}
        if data is None:
            raise ValueError("segmented priors need the data (for the segment sizes).")
        return segment_priors(
            self._priors, self.pooling, self.segment_links, self.centered, data.segment_counts()
        )

    def weighted_loglik(self, params: Mapping[str, Any], data: Any) -> Any:
        """``Σ counts x per-row log-likelihood``, the PyMC model's potential
        (:func:`clvbayes.models.likelihood.weighted_loglik`)."""
        return weighted_loglik(self, params, data)

    def row_loglik(self, params: Mapping[str, Any], data: CompressedRFM) -> Any:
        """Log-likelihood per unique row (:func:`clvbayes.models.likelihood.row_loglik`)."""
        return row_loglik(self, params, data)

    # --- the quantities partial pooling works on -------------------------------------------
    def pooled_values(self, params: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """The quantities partial pooling works on (keys of ``segment_links``) from the
        model parameters, on their natural scale (the family's reparametrisation)."""
        pooled = self._reparametrisation().pooled
        return pooled({k: np.asarray(params[k], dtype=float) for k in self.params})

    def from_pooled_values(self, pooled: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """The inverse of :meth:`pooled_values`: model parameters."""
        links = self._reparametrisation().links
        return self.complete({k: np.asarray(pooled[k], dtype=float) for k in links})

    def link_values(self, params: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """:meth:`pooled_values` on the link scale of the hierarchical prior (where
        ``<name>_mu`` and ``<name>_sigma`` live): what segments are compared and shrunk on."""
        return self._reparametrisation().link_values({k: params[k] for k in self.params})

    def from_link_values(self, links: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Model parameters from link-scale values (the inverse of :meth:`link_values`)."""
        return self._reparametrisation().from_link_values(links)

    def _reparametrisation(self) -> Any:
        if self.family.reparametrisation is None:
            raise NotImplementedError(f"{self.kind} has no segment parametrisation.")
        return self.family.reparametrisation

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
        **inference_kwargs: Any,
    ) -> FittedModel:
        """Fit the model to an RFM table and return the fitted model.

        Delegates to :func:`clvbayes.inference.fit`, which documents every argument:
        ``method`` ("nuts", "map", "advi", "pathfinder"), ``draws``/``tune``/``chains``
        of NUTS, ``seed`` (the same seed gives identical draws), ``progressbar``, and
        ``sampler``/``target_accept``/``advi_steps``.
        """
        settings = {"method": method, "draws": draws, "tune": tune, "chains": chains}
        settings.update(seed=seed, progressbar=progressbar, **inference_kwargs)
        return inference.fit(self, rfm, **settings)

    def fit_many(self, datasets: Iterable[Any], **settings: Any) -> list[FittedModel]:
        """Fit to several RFM tables, compiling the model once (simulation studies):
        :func:`clvbayes.inference.fit_many` (``seeds=``, and the settings of :meth:`fit`)."""
        return inference.fit_many(self, datasets, **settings)
