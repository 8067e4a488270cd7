"""The compile cache (``clvbayes.models.compiled``): same draws, safe keys, safe entries.

Oracle: nutpie's own ``compile_pymc_model`` on the same model, with the same PyTensor
rewrites left out (the cache compiles the same functions and must give the same draws),
and a fresh compilation with every cache emptied. A cache that returned another model's
code, a stale or a damaged entry would change the draws or crash; each case is made to
happen here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pymc_extras.prior import Prior

from clvbayes.diagnostics import ConvergenceWarning
from clvbayes.inference import build_compiled
from clvbayes.models import BGNBD, GammaGamma
from clvbayes.models import compiled as cache
from clvbayes.models.shared_data import SharedRFM
from clvbayes.simulate import simulate_bgnbd

SAMPLE = {"draws": 60, "tune": 60, "chains": 2, "seed": 3, "progress_bar": False}


def _rfm(seed: int, n: int = 250, segments: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    T = np.round(rng.uniform(20, 40, size=n) * 7) / 7
    sim = simulate_bgnbd(0.5, 5.0, 0.8, 2.5, T, rng=rng)
    rfm = pd.DataFrame(
        {"frequency": sim["frequency"], "recency": np.floor(sim["recency"] * 7) / 7, "T": T}
    )
    if segments:
        rfm["channel"] = np.array(["web", "store", "tv"])[np.arange(n) % segments]
    return rfm


@pytest.fixture
def disk(tmp_path, monkeypatch):
    """An empty disk cache and an empty process cache."""
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "cache"))
    cache.clear_cache()
    yield tmp_path / "cache"
    cache.clear_cache()


def _draws(compiled) -> np.ndarray:
    import nutpie

    tree = nutpie.sample(compiled, **SAMPLE)
    return np.stack([tree["posterior"][v].to_numpy() for v in ("r", "alpha", "a", "b")])


@contextlib.contextmanager
def _nutpie_with_our_rewrites():
    """nutpie's own compilation, with the PyTensor rewrites the cache leaves out
    (``EXCLUDED_REWRITES``) left out too: other rewrites round differently."""
    import nutpie.compile_pymc as ncp

    original = ncp._make_functions

    def make_functions(model, *, mode, **kwargs):
        assert mode == "NUMBA"  # what nutpie passes; replaced by the cache's mode
        return original(model, mode=cache.compile_mode(), **kwargs)

    ncp._make_functions = make_functions
    try:
        yield
    finally:
        ncp._make_functions = original


def _entries(root: Path) -> list[Path]:
    return sorted(root.glob("nutpie/*/*.nutpie"))


def test_cache_dir_follows_the_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "here"))
    assert cache.cache_dir() == tmp_path / "here"
    for off in ("off", "0", "none", "False", ""):
        monkeypatch.setenv(cache.CACHE_ENV, off)
        assert cache.cache_dir() is None
    monkeypatch.delenv(cache.CACHE_ENV)
    assert cache.cache_dir().name == "clvbayes"


def test_the_key_depends_on_the_graph_not_on_the_data_values():
    spec = BGNBD()
    one = spec.build(SharedRFM(spec.prepare(_rfm(1))))
    other_values = spec.build(SharedRFM(spec.prepare(_rfm(2, n=300))))
    other_prior = BGNBD(priors={"r": Prior("Gamma", alpha=2, beta=2)})
    changed = other_prior.build(SharedRFM(other_prior.prepare(_rfm(1))))
    segmented = BGNBD(segments="channel")
    three = segmented.build(SharedRFM(segmented.prepare(_rfm(1, segments=3))))
    two = segmented.build(SharedRFM(segmented.prepare(_rfm(1, segments=2))))
    keys = [cache.graph_key(m) for m in (one, other_values, changed, three, two)]
    assert keys[0] == keys[1]  # same graph, other data
    assert len(set(keys[1:])) == 4  # prior, segments: other graphs
    relabelled = _rfm(1, segments=3).replace({"channel": {"web": "w", "store": "s", "tv": "t"}})
    renamed = segmented.build(SharedRFM(segmented.prepare(relabelled)))
    assert cache.graph_key(renamed) == keys[3]  # other segment names, same graph
    on_constants = spec.build(spec.prepare(_rfm(1)))  # data as constants: in the key
    assert cache.graph_key(on_constants) != cache.graph_key(spec.build(spec.prepare(_rfm(2))))


def test_the_key_changes_with_the_likelihood_and_the_priors_families():
    """The key hashes the model's variables, potentials and deterministics rather than
    the log density PyMC derives from them (the derivation is fixed by PyMC's version,
    in the key): another likelihood, another prior family (and so another value
    transform) or another deterministic is another key."""
    from clvbayes import MBGNBD

    rfm = _rfm(1)
    specs = [
        BGNBD(),
        MBGNBD(),  # another potential
        BGNBD(priors={"r": Prior("HalfNormal", sigma=2)}),  # another family, same transform
        BGNBD(priors={"a": Prior("Gamma", alpha=1, beta=1), "b": Prior("Gamma", alpha=1, beta=1)}),
        BGNBD(purchase_covariates=["age"]),  # a coefficient and its deterministic
    ]
    data = rfm.assign(age=np.arange(len(rfm), dtype=float))
    keys = [cache.graph_key(s.build(SharedRFM(s.prepare(data)))) for s in specs]
    assert len(set(keys)) == len(keys)


def test_the_key_covers_the_data_of_observed_variables():
    """clvbayes' likelihoods are potentials, but a model with an observed variable (its
    data are not ancestors of the variable in the graph) gets a key per data set too."""
    import pymc as pm

    def model(y):
        with pm.Model() as m:
            pm.Normal("y", pm.Normal("mu"), 1.0, observed=y)
        return m

    assert cache.graph_key(model(np.zeros(3))) != cache.graph_key(model(np.ones(3)))


def test_the_key_changes_with_the_rewrites_left_out(monkeypatch):
    # code compiled with other rewrites is other code: an entry compiled before the
    # rewrites left out changed must not be found
    spec = BGNBD()
    model = spec.build(SharedRFM(spec.prepare(_rfm(1))))
    before = cache.graph_key(model)
    monkeypatch.setattr(cache, "EXCLUDED_REWRITES", ())
    assert cache.graph_key(model) != before


@pytest.mark.slow
def test_the_key_is_the_same_in_a_new_process():
    code = (
        "import numpy as np, pandas as pd, json;"
        "from clvbayes.models import GammaGamma;"
        "from clvbayes.models.shared_data import SharedRFM;"
        "from clvbayes.models.compiled import graph_key;"
        "rfm = pd.DataFrame({'frequency': [1, 2, 3, 1], 'monetary_value': [10., 20., 5., 7.]});"
        "s = GammaGamma(); print(json.dumps(graph_key(s.build(SharedRFM(s.prepare(rfm))))))"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    keys = {
        json.loads(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        for _ in range(2)
    }
    assert len(keys) == 1


_MAP_FITS = """
import hashlib, numpy as np, clvbayes, warnings
warnings.simplefilter("ignore")
from clvbayes.datasets import load_cdnow
rfm = clvbayes.rfm_summary(load_cdnow("sample"), customer_col="customer_id", date_col="date",
                           value_col="value", calibration_end="1997-09-30")
rfm["channel"] = np.where(np.arange(len(rfm)) % 2 == 0, "A", "B")
out = []
for spec, data in ((clvbayes.BGNBD(segments="channel"), rfm),
                   (clvbayes.GammaGamma(segments="channel"), rfm[rfm.frequency > 0])):
    fit = spec.fit(data, method="map", seed=0, progressbar=False)
    out += [float(v).hex() for k in spec.params for v in np.ravel(fit.posterior[k].values)]
print(hashlib.sha1("".join(out).encode()).hexdigest())
"""


@pytest.mark.slow
def test_map_fits_are_identical_compiled_fresh_and_read_from_the_compile_caches(tmp_path):
    """PyTensor's numba default is fast-math, with which a kernel compiled fresh and the
    same kernel read from numba's disk cache differed in the last bits: the first MAP fit
    on a machine (segmented BG/NBD and Gamma-Gamma) found another optimum than later ones,
    and the report's customers.csv differed in the 7th digit. Three processes share fresh
    caches: the first compiles, the others read."""
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        "NUMBA_CACHE_DIR": str(tmp_path / "numba"),
        "PYTENSOR_FLAGS": f"base_compiledir={tmp_path / 'pytensor'}",
        "CLVBAYES_CACHE_DIR": str(tmp_path / "clvbayes"),
    }
    digests = [
        subprocess.run(
            [sys.executable, "-c", _MAP_FITS], capture_output=True, text=True, check=True, env=env
        ).stdout.split()[-1]
        for _ in range(3)
    ]
    assert len(set(digests)) == 1, digests


@pytest.mark.slow
def test_same_seed_same_draws_fresh_from_memory_and_from_disk(disk):
    """One spec, two data sets of one structure: the compiled model of the first serves
    the second (data swapped in), from the process and from disk, with the draws of
    nutpie's own compilation of the second."""
    import nutpie
    from pytensor import config

    spec = BGNBD()
    first, second = spec.prepare(_rfm(5)), spec.prepare(_rfm(7, n=333))
    source = build_compiled(spec, first)[2]
    assert source == "compiled" and len(_entries(disk)) == 1
    model, swapped, source = build_compiled(spec, second)
    assert source == "memory"
    with config.change_flags(numba__fastmath=False), _nutpie_with_our_rewrites():
        oracle = _draws(nutpie.compile_pymc_model(model))
    np.testing.assert_array_equal(_draws(swapped), oracle)
    cache._MEMORY.clear()
    _, loaded, source = build_compiled(spec, second)
    assert source == "disk"
    np.testing.assert_array_equal(_draws(loaded), oracle)
    assert len(_entries(disk)) == 1


@pytest.mark.slow
def test_segments_with_other_names_reuse_the_compiled_model_under_their_own_names(disk):
    """Segment names do not reach the compiled code: a model whose segments are only
    renamed (same data, same order) is served from memory, samples the same draws and
    labels them with its own names."""
    import nutpie

    spec = GammaGamma(segments="channel", pooling="none")
    rng = np.random.default_rng(4)
    rfm = pd.DataFrame(
        {
            "frequency": rng.integers(1, 6, size=120),
            "monetary_value": rng.gamma(4.0, 10.0, size=120),
            "channel": np.array(["web", "store"])[np.arange(120) % 2],
        }
    )
    names = {"store": "a-store", "web": "b-web"}  # the same sorted order
    _, first, source = build_compiled(spec, spec.prepare(rfm))
    assert source == "compiled"
    _, second, source = build_compiled(spec, spec.prepare(rfm.replace({"channel": names})))
    assert source == "memory"
    trees = [nutpie.sample(compiled, **SAMPLE) for compiled in (first, second)]
    labels = [list(tree["posterior"]["p"].coords["segment"].values) for tree in trees]
    assert labels == [list(names), list(names.values())]
    for name in ("p", "q", "v"):
        np.testing.assert_array_equal(
            trees[0]["posterior"][name].to_numpy(), trees[1]["posterior"][name].to_numpy()
        )


@pytest.mark.slow
def test_a_damaged_or_stale_entry_is_deleted_and_rebuilt_never_used(disk):
    from numba.core.serialize import dumps

    spec = GammaGamma()
    rfm = pd.DataFrame({"frequency": [1, 2, 3, 1, 4], "monetary_value": [10.0, 20, 5, 7, 9]})
    data = spec.prepare(rfm)
    _, good, _ = build_compiled(spec, data)
    (path,) = _entries(disk)
    blob, key = path.read_bytes(), path.stem
    payload = blob[len(cache._MAGIC) :].partition(b"\n")[2]
    stale = pickle.loads(payload)  # an intact entry written by another numba
    stale["versions"]["numba"] = "0.0"  # (its key would differ; forced under this one)
    stale = dumps(stale)
    i = len(blob) - 1000
    damaged = {
        "truncated": blob[: len(blob) // 2],
        "flipped": blob[:i] + bytes([blob[i] ^ 0xFF]) + blob[i + 1 :],
        "garbage": b"not a cache entry",
        "stale": cache._MAGIC + hashlib.sha256(stale).hexdigest().encode() + b"\n" + stale,
    }
    for name, content in damaged.items():
        path.write_bytes(content)
        assert cache._load(disk, key) is None, name
        assert not path.exists(), name
    path.write_bytes(damaged["flipped"])
    cache._MEMORY.clear()
    _, rebuilt, source = build_compiled(spec, data)
    assert source == "compiled"  # not the damaged entry ...
    assert cache._load(disk, key) is not None  # ... which was replaced by a good one
    same = [nutpie_draws(c, "p") for c in (good, rebuilt)]
    np.testing.assert_array_equal(*same)
    assert cache.clear_cache() == 1
    assert not _entries(disk) and not cache._MEMORY


@pytest.mark.slow
def test_a_disabled_cache_writes_nothing(tmp_path, monkeypatch):
    spec = GammaGamma()
    data = spec.prepare(pd.DataFrame({"frequency": [1, 2, 3], "monetary_value": [1.0, 2, 3]}))
    monkeypatch.setenv(cache.CACHE_ENV, "off")
    monkeypatch.setenv("HOME", str(tmp_path))  # nor in the default place
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / ".cache"))
    cache.clear_cache()
    assert build_compiled(spec, data)[2] == "compiled"
    assert not list(tmp_path.iterdir())


def nutpie_draws(compiled, name: str) -> np.ndarray:
    import nutpie

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return nutpie.sample(compiled, **SAMPLE)["posterior"][name].to_numpy()


@pytest.mark.slow
def test_a_fresh_process_loads_from_disk_and_samples_the_same_draws(disk):
    code = (
        "import sys, json, numpy as np, pandas as pd;"
        "sys.path.insert(0, sys.argv[1]);"
        "from test_compile_cache import _rfm;"
        "from clvbayes.models import BGNBD;"
        "f = BGNBD().fit(_rfm(9), draws=60, tune=60, chains=2, seed=4, progressbar=False);"
        "print(json.dumps([f.settings['compiled_from'], f.posterior['r'].to_numpy().tolist()]))"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    runs = [
        json.loads(
            subprocess.run(
                [sys.executable, "-W", "ignore", "-c", code, str(Path(__file__).parent)],
                capture_output=True,
                text=True,
                check=True,
                env=env,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        for _ in range(2)
    ]
    assert [r[0] for r in runs] == ["compiled", "disk"]
    assert runs[0][1] == runs[1][1]
