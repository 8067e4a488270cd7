"""Posterior inference for a built PyMC model: NUTS, MAP, or a fast approximation.

================  ===========================================================================
``method``        when to use it
================  ===========================================================================
``"nuts"``        The default and the reference: full posterior by the No-U-Turn sampler
                  (nutpie, compiled with numba; PyMC's own NUTS if nutpie is missing or
                  ``sampler="pymc"``). Seconds on hundreds of thousands of customers because
                  the likelihood runs over unique rows.
``"map"``         A point estimate (the posterior mode on the original scale; with flat priors,
                  the maximum-likelihood estimate). For quick checks and comparison with
                  lifetimes/BTYD; carries no uncertainty: per-customer predictions then
                  reflect only the customers' own latent-state uncertainty.
``"advi"``        Mean-field ADVI: a Gaussian approximation on the unconstrained scale. Use
                  when many models must be fitted quickly (e.g. screening priors); it
                  underestimates posterior spread and ignores correlations.
``"pathfinder"``  Multi-path Pathfinder (pymc-extras): usually closer to NUTS than ADVI at a
                  similar cost; a good initialisation or a cheap approximation.
================  ===========================================================================

Every method returns an arviz DataTree with a ``posterior`` group (``chain``, ``draw``)
and the settings that produced it, so downstream code never branches on the method.

Settings are checked before any work (:func:`check_sampler_settings`): whole numbers of
draws and chains >= 1, tuning steps >= 0 (>= :data:`MIN_TUNE` for NUTS: nutpie's
adaptation panics without a tuning step), a seed in ``[0, 2**64)``, ``target_accept`` in
``(0, 1)``; each error names the argument.

Interrupts. Ctrl-C (SIGINT) while a method runs stops it and raises
``KeyboardInterrupt``: nutpie and PyMC would otherwise hand back what they had (chains
padded with NaN, or shorter), which looks like a finished fit. Only with
``allow_partial=True`` is such a fit returned, trimmed to the draws every chain finished
and marked: ``settings["interrupted"]`` is True, ``settings["draws"]`` the draws kept and
``settings["draws_requested"]`` the number asked for; it warns and lists the interrupt
among its ``problems``.

:func:`fit` is what ``spec.fit(rfm)`` runs: the spec prepares the data (validate,
select, compress) and builds the PyMC model; this module runs the inference, checks
convergence (:mod:`clvbayes.diagnostics`) and returns a new
:class:`~clvbayes.models.fitted.FittedModel`. :func:`fit_many` fits one spec to many data
sets and compiles the model once (:mod:`clvbayes.models.shared_data`).

Compilation for nutpie is cached (:mod:`clvbayes.models.compiled`): NUTS models are built
with the data as inputs, so a second fit of the same spec to data of the same structure
in a process reuses the compiled model with its data swapped in, and a fresh process
loads the machine code from the disk cache instead of compiling (``$CLVBAYES_CACHE_DIR``;
:func:`clvbayes.models.compiled.clear_cache`). The draws are the same either way.
"""

from __future__ import annotations

import contextlib
import importlib.util
import numbers
import signal
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

import numpy as np
import pymc as pm
import xarray as xr
from pytensor import config as pytensor_config

from clvbayes.data.compress import CompressedRFM
from clvbayes.data.rfm import time_unit_of
from clvbayes.diagnostics import diagnose, warn_problems
from clvbayes.imports import import_nutpie
from clvbayes.models.calendar import TIME_EFFECT_TUNE
from clvbayes.models.compiled import compile_model
from clvbayes.models.fitted import FittedModel
from clvbayes.models.hierarchy import centered_mask, partial_sampler_defaults
from clvbayes.models.shared_data import SharedRFM, structure
from clvbayes.progress import progress_bar

__all__ = [
    "METHODS",
    "MIN_TUNE",
    "SAMPLERS",
    "InferenceResult",
    "build_compiled",
    "check_sampler_settings",
    "compile_nutpie",
    "fit",
    "fit_many",
    "interrupted_problem",
    "run_inference",
    "uses_nutpie",
]

METHODS = ("nuts", "map", "advi", "pathfinder")
Method = Literal["nuts", "map", "advi", "pathfinder"]
SAMPLERS = ("auto", "nutpie", "pymc")

MIN_TUNE = 1
"""Fewest NUTS tuning steps accepted: nutpie 0.16 panics (``early_end < num_tune``) with
none. A reliable step size and mass matrix need a few hundred (the default is 1,000)."""


def _label(name: str, value: Any, cli: bool) -> str:
    """``tune=0`` (API) or ``--tune 0`` (command line)."""
    return f"--{name.replace('_', '-')} {value}" if cli else f"{name}={value!r}"


def _whole(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_sampler_settings(
    *,
    method: Any = "nuts",
    draws: Any = 1000,
    tune: Any = None,
    chains: Any = 4,
    seed: Any = None,
    sampler: Any = "auto",
    target_accept: Any = None,
    advi_steps: Any = 20_000,
    allow_partial: Any = False,
    cli: bool = False,
) -> None:
    """Raise ``ValueError`` (naming the argument) on an inference setting that cannot work.

    Parameters
    ----------
    method, draws, tune, chains, seed, sampler, target_accept, advi_steps, allow_partial
        As for :func:`run_inference` (``tune`` None: the model's default).
    cli : bool
        Name the arguments as command-line options (``--tune 0``) instead of keywords
        (``tune=0``).

    Raises
    ------
    ValueError
        For an unknown method or sampler; ``draws``, ``chains`` or ``advi_steps`` that are
        not whole numbers >= 1; ``tune`` that is not a whole number >= 0, or below
        :data:`MIN_TUNE` for NUTS; a ``seed`` outside ``[0, 2**64)``; ``target_accept``
        outside ``(0, 1)``; a non-boolean ``allow_partial``.
    """
    if method not in METHODS:
        raise ValueError(f"{_label('method', method, cli)}: use one of {list(METHODS)}.")
    if sampler not in SAMPLERS:
        raise ValueError(f"{_label('sampler', sampler, cli)}: use one of {list(SAMPLERS)}.")
    for name, value in (("draws", draws), ("chains", chains), ("advi_steps", advi_steps)):
        if not (_whole(value) and value >= 1):
            raise ValueError(f"{_label(name, value, cli)}: must be a whole number >= 1.")
    if tune is not None:
        if not (_whole(tune) and tune >= 0):
            raise ValueError(f"{_label('tune', tune, cli)}: must be a whole number >= 0.")
        if method == "nuts" and tune < MIN_TUNE:
            raise ValueError(
                f"{_label('tune', tune, cli)}: NUTS adapts its step size and mass matrix "
                f"while tuning and needs at least {MIN_TUNE} tuning step (a reliable "
                "adaptation a few hundred); leave it at the default (1,000)."
            )
    if seed is not None and not (_whole(seed) and 0 <= seed < 2**64):
        raise ValueError(
            f"{_label('seed', seed, cli)}: must be a whole number from 0 to 2**64 - 1."
        )
    if target_accept is not None and not (
        isinstance(target_accept, numbers.Real) and 0 < target_accept < 1
    ):
        raise ValueError(
            f"{_label('target_accept', target_accept, cli)}: must be in (0, 1), e.g. 0.9."
        )
    if not isinstance(allow_partial, bool):
        raise ValueError(f"{_label('allow_partial', allow_partial, cli)}: must be True or False.")


@contextlib.contextmanager
def _watch_interrupts() -> Iterator[list[int]]:
    """Record the SIGINTs received in the block (then handled as before).

    PyMC's samplers and optimisers catch ``KeyboardInterrupt`` and return what they have;
    the record tells the caller that the result is partial. Signal handlers live in the
    main thread only; elsewhere (and when SIGINT is ignored) nothing is recorded.
    """
    seen: list[int] = []
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or not callable(previous):
        yield seen
        return

    def record(signum: int, frame: Any) -> None:
        seen.append(signum)
        previous(signum, frame)

    signal.signal(signal.SIGINT, record)
    try:
        yield seen
    finally:
        signal.signal(signal.SIGINT, previous)


def _wait_for(sampler: Any, allow_partial: bool) -> xr.DataTree:
    """The trace of a running nutpie sampler (``nutpie.sample(..., blocking=False)``).

    On an interrupt the sampler is stopped and the interrupt raised (nutpie's own
    blocking call would return the partial trace instead); with ``allow_partial`` the
    partial trace is returned.
    """
    try:
        return sampler.wait()
    except KeyboardInterrupt:
        if not allow_partial:
            sampler.cancel()
            raise
        try:
            return sampler.abort()
        except Exception:  # nutpie: "Sampler has no results to take" (still tuning)
            raise KeyboardInterrupt("NUTS was interrupted before its first draw") from None
    except RuntimeError as err:
        sampler.cancel()
        if "initialization points failed" not in str(err):
            raise
        cause = " ".join(str(err).split("Stack backtrace")[0].split())
        raise RuntimeError(
            "NUTS (nutpie) could not start any chain: at every initial point it tried, the "
            "log density or its gradient was not finite or a gradient was exactly 0 "
            f"(nutpie: {cause}). Check the data for degenerate columns; sampler='pymc' "
            "starts without nutpie's check, and method='map' shows where the density "
            "stands. Please report it with the data's shape if the data look sound."
        ) from None
    except BaseException:  # SIGTERM (the command line's handler), errors
        sampler.cancel()
        raise


def _finished_draws(tree: xr.DataTree) -> int:
    """The number of leading draws that every chain completed (nutpie pads the chains of
    an interrupted run with NaN to the longest)."""
    post = tree["posterior"].to_dataset()
    done = np.ones(post.sizes["draw"], dtype=bool)
    for values in post.data_vars.values():
        axes = tuple(i for i, d in enumerate(values.dims) if d != "draw")
        done &= ~np.isnan(values.to_numpy()).any(axis=axes)
    return int(np.argmin(done)) if not done.all() else int(done.size)


def _trimmed(tree: xr.DataTree, n_draws: int) -> xr.DataTree:
    groups = {k: tree[k].to_dataset().isel(draw=slice(0, n_draws)) for k in tree.children}
    return xr.DataTree.from_dict(groups)


@dataclass(frozen=True)
class InferenceResult:
    """The posterior (DataTree) and what produced it."""

    idata: xr.DataTree
    settings: dict[str, Any] = field(default_factory=dict)


def nutpie_available() -> bool:
    """Whether nutpie can be imported."""
    return importlib.util.find_spec("nutpie") is not None


def _posterior_tree(draws: dict[str, np.ndarray], model: pm.Model | None = None) -> xr.DataTree:
    """DataTree with a posterior group from arrays shaped ``(chain, draw, ...)``, the
    further dimensions named as in ``model`` (``segment``, ``period``,
    ``purchase_covariate``, ..., with the model's coordinates except ``segment``), else
    ``segment`` for one further dimension."""
    n_chain, n_draw = next(iter(draws.values())).shape[:2]
    coords: dict[str, Any] = {"chain": np.arange(n_chain), "draw": np.arange(n_draw)}
    named = {} if model is None else model.named_vars_to_dims
    arrays = {}
    for k, v in draws.items():
        extra = tuple(named.get(k) or ())
        if not extra:
            extra = (
                ("segment",)
                if np.ndim(v) == 3
                else tuple(f"{k}_dim_{i}" for i in range(np.ndim(v) - 2))
            )
        arrays[k] = (("chain", "draw", *extra), np.asarray(v))
        for dim in extra:
            if model is not None and model.coords.get(dim) is not None and dim != "segment":
                coords[dim] = np.asarray(model.coords[dim])
    return xr.DataTree.from_dict({"posterior": xr.Dataset(arrays, coords)})


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
    """The model compiled for nutpie (numba backend, IEEE arithmetic), through the
    compile cache (:func:`clvbayes.models.compiled.compile_model`).

    With fast-math, a kernel compiled fresh (and inlined) and the same kernel loaded from
    numba's cache can differ in the last bits, so the same seed gave different draws on a
    new machine; without it the draws are identical.
    """
    return compile_model(model)[0]


def _nuts(
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
    allow_partial=False,
    interrupts=(),
):
    """NUTS by nutpie (low-rank mass-matrix adaptation) or PyMC.

    ``compiled``: a model already compiled for nutpie (e.g. with new data swapped in);
    without it the model is compiled here.

    nutpie's low-rank adaptation learns the strong r-alpha correlation of BTYD
    posteriors: on CDNOW master it cuts leapfrog steps per draw from 5.0 to 3.6 and
    roughly triples the effective sample size of the same number of draws.

    ``interrupts``: the SIGINTs seen so far (:func:`_watch_interrupts`). PyMC ends only
    the running chain on Ctrl-C and starts the next; its callback ends each of them at
    its first draw once an interrupt was seen.
    """
    use_nutpie = compiled is not None or uses_nutpie(sampler)
    if use_nutpie:
        nutpie = import_nutpie()

        if compiled is None:
            compiled = compile_nutpie(model)
        if interrupts:  # Ctrl-C while compiling: numba's callbacks may have swallowed it
            raise KeyboardInterrupt("NUTS was interrupted while compiling")
        kwargs = {} if target_accept is None else {"target_accept": target_accept}
        running = nutpie.sample(
            compiled,
            draws=draws,
            tune=tune,
            chains=chains,
            seed=seed,
            progress_bar=progressbar,
            save_warmup=False,
            adaptation="low_rank",
            blocking=False,
            **kwargs,
        )
        return _keep(_wait_for(running, allow_partial), var_names), "nutpie"
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
            callback=partial(_stop_if_interrupted, interrupts),
        )
    return _keep(tree, var_names), "pymc"


def _stop_if_interrupted(interrupts: Sequence[int], **_: Any) -> None:
    """PyMC sampling callback: end the chain once an interrupt was seen."""
    if interrupts:
        raise KeyboardInterrupt


# L-BFGS-B's default stop (relative change of the log-density below 2.2e-9) leaves the
# estimates of a flat likelihood ~1e-4 from its maximum (apparel Pareto/NBD with
# covariates: alpha 92.956 against the optimum's 92.943); stopping on the gradient
# instead costs a few more iterations and reaches ~1e-7.
_MAP_OPTIONS = {"ftol": 1e-15, "gtol": 1e-9, "maxiter": 5000}


def _map(model, var_names, seed):
    with model:
        point = pm.find_MAP(
            progressbar=False, seed=seed, include_transformed=False, options=_MAP_OPTIONS
        )
    return _posterior_tree(
        {v: np.reshape(point[v], (1, 1, *np.shape(point[v]))) for v in var_names}, model
    )


def _advi(model, var_names, draws, chains, seed, progressbar, n_steps):
    with model:
        approx = pm.fit(n=n_steps, method="advi", random_seed=seed, progressbar=progressbar)
        tree = approx.sample(draws * chains, random_seed=seed, return_inferencedata=True)
    post = tree["posterior"].to_dataset()
    arrays = {v: _by_chain(post[v], chains, draws) for v in var_names}
    return _posterior_tree(arrays, model)


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
    return _posterior_tree(arrays, model)


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
    allow_partial: bool = False,
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
        Posterior draws per chain (>= 1), tuning steps (NUTS only; >= :data:`MIN_TUNE`),
        number of chains (>= 1).
    seed : int, optional
        Random seed in ``[0, 2**64)``; the same seed gives identical draws.
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
    allow_partial : bool
        On Ctrl-C, return what was computed, marked as interrupted (see the module
        docstring), instead of raising ``KeyboardInterrupt``.

    Returns
    -------
    InferenceResult

    Raises
    ------
    ValueError
        On a setting that cannot work (:func:`check_sampler_settings`).
    KeyboardInterrupt
        When interrupted (unless ``allow_partial``, and some draws were made).
    """
    check_sampler_settings(
        method=method,
        draws=draws,
        tune=tune,
        chains=chains,
        seed=seed,
        sampler=sampler,
        target_accept=target_accept,
        advi_steps=advi_steps,
        allow_partial=allow_partial,
    )
    if seed is None:
        seed = int(np.random.default_rng().integers(2**31))
    start = time.perf_counter()
    used = method
    # IEEE arithmetic in every compiled function (PyTensor's numba default is fast-math):
    # with fast-math a kernel compiled fresh and the same kernel read from numba's disk
    # cache can differ in the last bits, so the same seed gave another MAP optimum on the
    # first run of a machine (customers.csv differing in the 7th digit) than on later ones
    with _watch_interrupts() as interrupts, pytensor_config.change_flags(numba__fastmath=False):
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
                allow_partial,
                interrupts,
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
    if method == "nuts":
        finished = _finished_draws(tree)
        if finished < draws:  # nutpie pads, PyMC shortens the chains of a stopped run
            interrupts.append(signal.SIGINT)
            tree = _trimmed(tree, finished)
            settings.update(draws=finished, draws_requested=int(draws))
    if interrupts:
        if not allow_partial or settings["draws"] == 0:
            raise KeyboardInterrupt(f"{method} was interrupted; nothing is returned")
        settings["interrupted"] = True
        settings["chains"] = int(tree["posterior"].sizes["chain"])  # PyMC may drop some
    return InferenceResult(tree, settings)


def interrupted_problem(settings: dict[str, Any]) -> str | None:
    """What an interrupted fit (``allow_partial=True``) lacks, in words (None if it was
    not interrupted)."""
    if not settings.get("interrupted"):
        return None
    if "draws_requested" in settings:
        done = f"after {settings['draws']:,} of {settings['draws_requested']:,} draws per chain"
    else:
        done = "before it converged"
    return (
        f"{settings['method']} was interrupted {done}: a partial fit "
        "(settings['interrupted']); refit without interrupting before relying on it."
    )


# --- fitting a spec ---------------------------------------------------------------------


def fit(
    spec: Any,
    rfm: Any,
    *,
    method: Method = "nuts",
    draws: int = 1000,
    tune: int | None = None,
    chains: int = 4,
    seed: int | None = None,
    progressbar: bool = True,
    time_unit: str | None = None,
    **inference_kwargs: Any,
) -> FittedModel:
    """Fit a model spec to an RFM table and return the fitted model.

    Parameters
    ----------
    spec : ModelSpec
        E.g. ``clvbayes.BGNBD()``; not modified.
    rfm : DataFrame
        One row per customer with the model's columns (``spec.columns``).
    method : {"nuts", "map", "advi", "pathfinder"}
        Inference method (see the module docstring for when to use each).
    draws, tune, chains : int
        Posterior draws per chain, NUTS tuning steps (default 1,000; with calendar-time
        effects :data:`~clvbayes.models.calendar.TIME_EFFECT_TUNE`, 600; partially
        pooled segmented fits: :func:`clvbayes.models.hierarchy.partial_sampler_defaults`),
        chains.
    seed : int, optional
        Random seed; the same seed gives identical draws.
    progressbar : bool
        Show progress.
    time_unit : str, optional
        The unit of ``recency`` and ``T`` (``"D"``, ``"W"``, ...), recorded on the fit
        (``settings["time_unit"]``, :attr:`FittedModel.time_unit`) so that predictions
        can refuse data and options in another unit. Default: the unit
        :func:`clvbayes.rfm_summary` recorded on the table (``rfm.attrs["time_unit"]``);
        unrecorded if neither says. Given and different from the table's: an error.
    **inference_kwargs
        Passed to :func:`run_inference` (``sampler``, ``target_accept``,
        ``advi_steps``, ``allow_partial``). Partially pooled segmented fits default to
        ``target_accept=0.995`` and 2,000 tuning steps, or in the marginal forms of the
        hierarchical prior (every segment centred) to the settings of
        :data:`clvbayes.models.hierarchy.MARGINAL_SAMPLER` (BG/NBD: 0.9 and 600) or
        :data:`clvbayes.models.hierarchy.MEAN_MARGINAL_SAMPLER`.

    Returns
    -------
    FittedModel

    Raises
    ------
    ValueError
        On bad data, or a setting that cannot work (:func:`check_sampler_settings`),
        before any work.
    KeyboardInterrupt
        When interrupted (Ctrl-C); ``allow_partial=True`` returns a marked partial fit.
    """
    settings = {"method": method, "draws": draws, "tune": tune, "chains": chains}
    settings.update(seed=seed, progressbar=progressbar, **inference_kwargs)
    _check_fit_settings(settings)
    unit = time_unit_of(rfm, time_unit)
    data = spec.prepare(rfm)
    if method == "nuts" and uses_nutpie(inference_kwargs.get("sampler", "auto")):
        model, compiled, source = build_compiled(spec, data)
        return _fit_built(
            spec, data, model, compiled=compiled, compiled_from=source, time_unit=unit, **settings
        )
    return _fit_built(spec, data, spec.build(data), time_unit=unit, **settings)


def _check_fit_settings(settings: dict[str, Any]) -> None:
    """:func:`check_sampler_settings` on the settings of :func:`fit` / :func:`fit_many`."""
    known = ("method", "draws", "tune", "chains", "seed", "sampler", "target_accept")
    known += ("advi_steps", "allow_partial")
    check_sampler_settings(**{k: v for k, v in settings.items() if k in known})


def build_compiled(spec: Any, data: CompressedRFM) -> tuple[pm.Model, Any, str]:
    """``spec``'s model on ``data``, compiled for nutpie through the compile cache.

    Families whose graph depends on the data only through arrays
    (``spec.reusable_compilation``) are built with the data as inputs
    (:class:`~clvbayes.models.shared_data.SharedRFM`), so any data of the same structure
    reuse the compiled model; the others on constants (their cache entries are then
    per data set).

    Returns
    -------
    model : pymc.Model
    compiled : nutpie's compiled model, with ``data``
    source : {"memory", "disk", "compiled"}
        Where the compiled model came from (:func:`clvbayes.models.compiled.compile_model`).
    """
    model = spec.build(SharedRFM(data) if spec.reusable_compilation else data)
    compiled, source = compile_model(model)
    return model, compiled, source


def fit_many(
    spec: Any,
    datasets: Iterable[Any],
    *,
    seeds: int | Sequence[int] | None = None,
    progressbar: bool = True,
    **settings: Any,
) -> list[FittedModel]:
    """Fit a spec to each of several RFM tables, compiling the model once.

    For simulation studies (parameter recovery, simulation-based calibration), where
    compiling the model (about 2 s with nutpie's numba backend) would cost more than
    sampling. With NUTS on nutpie and a spec whose graph depends on the data only
    through its arrays (``spec.reusable_compilation``), the model is built once on
    symbolic data inputs (:class:`~clvbayes.models.shared_data.SharedRFM`), compiled
    once, and every data set of the same structure (columns; segments with rows) is
    swapped into the compiled sampler; otherwise each data set is fitted by :func:`fit`.
    Results equal separate :func:`fit` calls with the same seeds.

    Parameters
    ----------
    spec : ModelSpec
        The model to fit.
    datasets : iterable of DataFrame
        RFM tables.
    seeds : int or sequence of int, optional
        One seed per data set, or one seed from which they are derived
        (``numpy.random.SeedSequence``); None: random.
    progressbar : bool
        Show a progress bar over the data sets (fits per second, time left) once the
        work has taken two seconds (:mod:`clvbayes.progress`); the samplers' own bars
        stay off.
    **settings
        As for :func:`fit` (``method, draws, tune, chains``, ``time_unit``, inference
        options); checked before the first fit.

    Returns
    -------
    list of FittedModel
        In the order of ``datasets``.
    """
    datasets = list(datasets)
    _check_fit_settings(settings)
    if isinstance(seeds, int | np.integer) or seeds is None:
        check_sampler_settings(seed=seeds)
        state = np.random.SeedSequence(seeds).generate_state(len(datasets))
        seeds = [int(s) >> 1 for s in state]
    if len(seeds) != len(datasets):
        raise ValueError(f"fit_many: {len(seeds)} seeds for {len(datasets)} data sets.")
    for seed in seeds:
        check_sampler_settings(seed=seed)
    seeds = [int(s) for s in seeds]
    settings["progressbar"] = False
    time_unit = settings.pop("time_unit", None)
    reuse = (
        settings.get("method", "nuts") == "nuts"
        and spec.reusable_compilation
        and uses_nutpie(settings.get("sampler", "auto"))
    )
    fits = []
    program: tuple[Any, SharedRFM, pm.Model, Any] | None = None
    with progress_bar(
        len(datasets), desc="fit_many", unit="fits", unit_scale=False, enabled=progressbar
    ) as bar:
        for rfm, seed in zip(datasets, seeds, strict=True):
            settings["time_unit"] = time_unit_of(rfm, time_unit)
            data = spec.prepare(rfm)
            if not reuse:
                fits.append(_fit_built(spec, data, spec.build(data), seed=seed, **settings))
                bar.update(1)
                continue
            key = _structure(spec, data)
            if program is None or program[0] != key:
                shared = SharedRFM(data)
                model = spec.build(shared)
                program = (key, shared, model, compile_model(model)[0])
                compiled = program[3]
            else:
                known = {v.name for v in program[3].shared_var_keys}
                inputs = program[1].inputs(data)
                compiled = program[3].with_data(**{k: v for k, v in inputs.items() if k in known})
            fits.append(
                _fit_built(spec, data, program[2], compiled=compiled, seed=seed, **settings)
            )
            bar.update(1)
    return fits


def _structure(spec: Any, data: CompressedRFM) -> tuple[Any, ...]:
    """What the graph built on ``data`` depends on besides the arrays: the data's
    structure and, for partial pooling, which segments are centred."""
    key = structure(data)
    grid = data.extras.get("calendar")
    if grid is not None:  # the time effects' graph has a variable per period and covariate
        key += ((grid.n_periods, grid.n_free, grid.covariate_names),)
    if data.segmented and spec.partially_pooled:
        key += (tuple(centered_mask(spec.centered, data.segment_counts())),)
    return key


def _fit_built(
    spec: Any,
    data: CompressedRFM,
    model: pm.Model,
    *,
    method: Method = "nuts",
    draws: int = 1000,
    tune: int | None = None,
    chains: int = 4,
    seed: int | None = None,
    progressbar: bool = True,
    compiled: Any = None,
    compiled_from: str | None = None,
    time_unit: str | None = None,
    **inference_kwargs: Any,
) -> FittedModel:
    """Inference on ``model`` (built on ``data``), diagnosis, the fitted object.

    ``compiled``: ``model`` compiled for nutpie with ``data`` swapped in (the model was
    built on :class:`~clvbayes.models.shared_data.SharedRFM`); ``compiled_from``: where
    :func:`build_compiled` found it (recorded in the settings). ``time_unit``: the data's
    unit, recorded in the settings (if known)."""
    default_tune = 1000 if spec.time_effects is None else TIME_EFFECT_TUNE
    if spec.partially_pooled:
        target_accept, default_tune = partial_sampler_defaults(spec, data.segment_counts())
        if method == "nuts":
            inference_kwargs.setdefault("target_accept", target_accept)
    if tune is None:
        tune = default_tune
    names = spec.posterior_names(data)
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
    interrupted = interrupted_problem(result.settings)
    problems: tuple[str, ...] = () if interrupted is None else (interrupted,)
    if method == "nuts":
        problems += diagnose(idata, names).problems
    warn_problems(problems, spec.kind)
    settings = dict(result.settings)
    if compiled_from is not None:
        settings["compiled_from"] = compiled_from
    elif compiled is not None:
        settings["shared_inputs"] = True
    if time_unit is not None:
        settings["time_unit"] = time_unit
    return FittedModel(
        spec=spec,
        idata=idata,
        data=data,
        fingerprint=data.fingerprint(),
        settings=settings,
        problems=problems,
        calendar=data.extras.get("calendar"),
    )


def _with_segment_coords(idata: xr.DataTree, levels: tuple[str, ...]) -> xr.DataTree:
    """The same tree with the posterior's ``segment`` coordinate set to the labels (also
    under complete pooling, where no parameter has that dimension)."""
    groups = {k: idata[k].to_dataset() for k in idata.children}
    groups["posterior"] = groups["posterior"].assign_coords(segment=np.array(levels, dtype=str))
    return xr.DataTree.from_dict(groups)
