"""Posterior inference for a built PyMC model: NUTS, MAP, or a fast approximation.

=============  ==============================================================================
``method``     when to use it
=============  ==============================================================================
``"nuts"``     The default and the reference: full posterior by the No-U-Turn sampler
               (nutpie, compiled with numba; PyMC's own NUTS if nutpie is missing or
               ``sampler="pymc"``). Seconds on hundreds of thousands of customers because
               the likelihood runs over unique rows.
``"map"``      A point estimate (the posterior mode on the original scale; with flat priors,
               the maximum-likelihood estimate). For quick checks and comparison with
               lifetimes/BTYD; carries no uncertainty: per-customer predictions then
               reflect only the customers' own latent-state uncertainty.
``"advi"``     Mean-field ADVI: a Gaussian approximation on the unconstrained scale. Use
               when many models must be fitted quickly (e.g. screening priors); it
               underestimates posterior spread and ignores correlations.
``"pathfinder"`` Multi-path Pathfinder (pymc-extras): usually closer to NUTS than ADVI at a
               similar cost; a good initialisation or a cheap approximation.
=============  ==============================================================================

Every method returns an arviz DataTree with a ``posterior`` group (``chain``, ``draw``)
and the settings that produced it, so downstream code never branches on the method.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pymc as pm
import xarray as xr

__all__ = ["METHODS", "InferenceResult", "compile_nutpie", "run_inference", "uses_nutpie"]

METHODS = ("nuts", "map", "advi", "pathfinder")
Method = Literal["nuts", "map", "advi", "pathfinder"]


@dataclass(frozen=True)
class InferenceResult:
    """The posterior (DataTree) and what produced it."""

    idata: xr.DataTree
    settings: dict[str, Any] = field(default_factory=dict)


def nutpie_available() -> bool:
    """Whether nutpie can be imported."""
    return importlib.util.find_spec("nutpie") is not None


def _posterior_tree(draws: dict[str, np.ndarray]) -> xr.DataTree:
    """DataTree with a posterior group from arrays shaped ``(chain, draw)`` or, for
    per-segment parameters, ``(chain, draw, segment)``."""
    n_chain, n_draw = next(iter(draws.values())).shape[:2]
    coords = {"chain": np.arange(n_chain), "draw": np.arange(n_draw)}
    dims = {2: ("chain", "draw"), 3: ("chain", "draw", "segment")}
    ds = xr.Dataset({k: (dims[np.ndim(v)], np.asarray(v)) for k, v in draws.items()}, coords)
    return xr.DataTree.from_dict({"posterior": ds})


def _by_chain(values: xr.DataArray, chains: int, draws: int) -> np.ndarray:
    """All ``chains * draws`` samples of ``values`` (one chain in an approximation's
    output) as ``(chains, draws, *other dims)``."""
    rest = [values.sizes[d] for d in values.dims if d not in ("chain", "draw")]
    return values.to_numpy().reshape(chains, draws, *rest)


def _keep(tree: xr.DataTree, var_names: list[str]) -> xr.DataTree:
    """Only the posterior (restricted to ``var_names``) and sample_stats groups."""
    groups = {"posterior": tree["posterior"].to_dataset()[var_names]}
    if "sample_stats" in tree.children:
        groups["sample_stats"] = tree["sample_stats"].to_dataset()
    return xr.DataTree.from_dict(groups)


def uses_nutpie(sampler: str) -> bool:
    """Whether NUTS with ``sampler`` ("auto", "nutpie" or "pymc") runs on nutpie."""
    return sampler == "nutpie" or (sampler == "auto" and nutpie_available())


def compile_nutpie(model: pm.Model) -> Any:
    """The model compiled for nutpie (numba backend, IEEE arithmetic).

    With fast-math, a kernel compiled fresh (and inlined) and the same kernel loaded from
    numba's cache can differ in the last bits, so the same seed gave different draws on a
    new machine; without it the draws are identical.
    """
    import nutpie
    from pytensor import config as pytensor_config

    with pytensor_config.change_flags(numba__fastmath=False):
        return nutpie.compile_pymc_model(model, backend="numba")


def _nuts(
    model, var_names, draws, tune, chains, seed, progressbar, sampler, target_accept, compiled
):
    """NUTS by nutpie (low-rank mass-matrix adaptation) or PyMC.

    ``compiled``: a model already compiled for nutpie (e.g. with new data swapped in);
    without it the model is compiled here.

    nutpie's low-rank adaptation learns the strong r-alpha correlation of BTYD
    posteriors: on CDNOW master it cuts leapfrog steps per draw from 5.0 to 3.6 and
    roughly triples the effective sample size of the same number of draws.
    """
    use_nutpie = compiled is not None or uses_nutpie(sampler)
    if use_nutpie:
        import nutpie

        if compiled is None:
            compiled = compile_nutpie(model)
        kwargs = {} if target_accept is None else {"target_accept": target_accept}
        tree = nutpie.sample(
            compiled,
            draws=draws,
            tune=tune,
            chains=chains,
            seed=seed,
            progress_bar=progressbar,
            save_warmup=False,
            adaptation="low_rank",
            **kwargs,
        )
        return _keep(tree, var_names), "nutpie"
    with model:
        tree = pm.sample(
            draws=draws,
            tune=tune,
            chains=chains,
            random_seed=seed,
            progressbar=progressbar,
            nuts_sampler="pymc",
            target_accept=target_accept or 0.8,
            compute_convergence_checks=False,
        )
    return _keep(tree, var_names), "pymc"


def _map(model, var_names, seed):
    with model:
        point = pm.find_MAP(progressbar=False, seed=seed, include_transformed=False)
    return _posterior_tree(
        {v: np.reshape(point[v], (1, 1, *np.shape(point[v]))) for v in var_names}
    )


def _advi(model, var_names, draws, chains, seed, progressbar, n_steps):
    with model:
        approx = pm.fit(n=n_steps, method="advi", random_seed=seed, progressbar=progressbar)
        tree = approx.sample(draws * chains, random_seed=seed, return_inferencedata=True)
    post = tree["posterior"].to_dataset()
    arrays = {v: _by_chain(post[v], chains, draws) for v in var_names}
    return _posterior_tree(arrays)


def _pathfinder(model, var_names, draws, chains, seed, progressbar):
    import pymc_extras as pmx

    tree = pmx.fit_pathfinder(
        model=model,
        num_paths=max(chains, 1),
        num_draws=draws * chains,
        random_seed=seed,
        progressbar=progressbar,
    )
    post = tree["posterior"].to_dataset()
    arrays = {v: _by_chain(post[v], chains, draws) for v in var_names}
    return _posterior_tree(arrays)


def run_inference(
    model: pm.Model,
    var_names: list[str],
    *,
    method: Method = "nuts",
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int | None = None,
    progressbar: bool = True,
    sampler: Literal["auto", "nutpie", "pymc"] = "auto",
    target_accept: float | None = None,
    advi_steps: int = 20_000,
    compiled: Any = None,
) -> InferenceResult:
    """Fit ``model`` and return the posterior of ``var_names`` as a DataTree.

    Parameters
    ----------
    model : pymc.Model
        A built model.
    var_names : list of str
        Variables to keep in the posterior group (population parameters).
    method : {"nuts", "map", "advi", "pathfinder"}
        See the module docstring for when to use each.
    draws, tune, chains : int
        Posterior draws per chain, tuning steps (NUTS only), number of chains.
    seed : int, optional
        Random seed; the same seed gives identical draws.
    progressbar : bool
        Show the sampler's progress.
    sampler : {"auto", "nutpie", "pymc"}
        NUTS implementation; "auto" uses nutpie when installed.
    target_accept : float, optional
        NUTS target acceptance rate (raise to 0.9-0.95 if divergences appear).
    advi_steps : int
        Optimisation steps for ADVI.
    compiled : optional
        ``model`` already compiled for nutpie (:func:`compile_nutpie`, possibly with other
        data swapped in); NUTS then samples it without compiling again.

    Returns
    -------
    InferenceResult
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not one of {METHODS}.")
    if seed is None:
        seed = int(np.random.default_rng().integers(2**31))
    start = time.perf_counter()
    used = method
    if method == "nuts":
        tree, used = _nuts(
            model,
            var_names,
            draws,
            tune,
            chains,
            seed,
            progressbar,
            sampler,
            target_accept,
            compiled,
        )
    elif method == "map":
        tree = _map(model, var_names, seed)
    elif method == "advi":
        tree = _advi(model, var_names, draws, chains, seed, progressbar, advi_steps)
    else:
        tree = _pathfinder(model, var_names, draws, chains, seed, progressbar)
    settings = {
        "method": method,
        "sampler": used,
        "draws": int(draws),
        "tune": int(tune) if method == "nuts" else 0,
        "chains": int(chains),
        "seed": int(seed),
        "target_accept": -1.0 if target_accept is None else float(target_accept),
        "seconds": round(time.perf_counter() - start, 3),
    }
    return InferenceResult(tree, settings)
