"""What every model shares: an immutable spec that fits, and the fitted object it returns.

A spec (``BGNBD(priors=...)``) holds options only. ``spec.fit(rfm, ...)`` validates and
compresses the data, builds the PyMC model from the pure maths in :mod:`clvbayes.math`,
runs inference, checks convergence and returns a new :class:`FittedModel`; the spec and
the user's priors are left untouched, so fitting twice never sees stale state.
"""

from __future__ import annotations

import hashlib
import json
import types
import warnings
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr
from pymc_extras.prior import Prior

from clvbayes.data.checks import check_rfm
from clvbayes.data.compress import CompressedRFM, compress
from clvbayes.diagnostics import Diagnosis, diagnose, warn_problems
from clvbayes.inference import Method, run_inference
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

    def __init__(self, priors: Mapping[str, Any] | None = None) -> None:
        resolved = resolve_priors(
            self.default_priors,
            priors,
            allowed=self.prior_names,
            alternatives=self.prior_alternatives,
        )
        object.__setattr__(self, "_priors", types.MappingProxyType(resolved))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable; create a new spec.")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(priors={dict(self._priors)!r})"

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

    # --- shared machinery -------------------------------------------------------------
    def prepare(self, rfm: Any) -> CompressedRFM:
        """Validate ``rfm``, select this model's customers and compress them."""
        values = check_rfm(rfm, self.columns)
        keep = self.select(values)
        if not keep.any():
            raise ValueError(
                f"{self.kind}: none of the {keep.size} customers can inform this model "
                f"({self.selection_note})."
            )
        return compress({c: v[keep] for c, v in values.items()}, self.columns)

    selection_note: ClassVar[str] = "all customers are used"

    def _add_priors(self) -> dict[str, Any]:
        """Create the prior variables inside the current model context."""
        return {name: prior.create_variable(name) for name, prior in self._priors.items()}

    def fit(
        self,
        rfm: Any,
        *,
        method: Method = "nuts",
        draws: int = 1000,
        tune: int = 1000,
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
            Posterior draws per chain, NUTS tuning steps, chains.
        seed : int, optional
            Random seed; the same seed gives identical draws.
        progressbar : bool
            Show progress.
        **inference_kwargs
            Passed to :func:`clvbayes.inference.run_inference` (``sampler``,
            ``target_accept``, ``advi_steps``).

        Returns
        -------
        FittedModel
        """
        data = self.prepare(rfm)
        model = self.build(data)
        result = run_inference(
            model,
            list(self.params),
            method=method,
            draws=draws,
            tune=tune,
            chains=chains,
            seed=seed,
            progressbar=progressbar,
            **inference_kwargs,
        )
        problems: tuple[str, ...] = ()
        if method == "nuts":
            problems = diagnose(result.idata, list(self.params)).problems
            warn_problems(problems, self.kind)
        return FittedModel(
            spec=self,
            idata=result.idata,
            data=data,
            fingerprint=fingerprint(data),
            settings=result.settings,
            problems=problems,
        )


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
        ``posterior`` (population parameters, dims ``chain, draw``) and, for NUTS,
        ``sample_stats``.
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
        """Posterior draws of the population parameters (dims ``chain, draw``)."""
        return self.idata["posterior"].to_dataset()

    def params(self) -> dict[str, np.ndarray]:
        """Posterior draws as numpy arrays of shape ``(chain, draw)``."""
        post = self.posterior
        return {p: post[p].to_numpy() for p in self.spec.params}

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
                var_names=list(self.spec.params),
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
        return diagnose(self.idata, list(self.spec.params))

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
        params = {k: v[..., None] for k, v in self.params().items()}
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
