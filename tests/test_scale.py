"""Dask execution (clvbayes.scale) on a 2-worker distributed.LocalCluster.

Oracles: the single-machine functions themselves. ``rfm_summary_dask`` must give the
table of ``clvbayes.rfm_summary`` (and its error messages, with whole-log counts);
``predict_customers_dask`` must give ``predict_customers``'s analytic columns on the
whole table, its simulated columns when run per partition with ``partition_seed``, and
``rank_columns``'s ``p_top`` on the CLV draws of all customers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

dd = pytest.importorskip("dask.dataframe", exc_type=ImportError)
distributed = pytest.importorskip("distributed", exc_type=ImportError)

import clvbayes  # noqa: E402
from clvbayes.datasets import load_cdnow  # noqa: E402
from clvbayes.predict.summaries import rank_columns  # noqa: E402
from clvbayes.scale import (  # noqa: E402
    _slim,
    partition_seed,
    predict_customers_dask,
    rfm_summary_dask,
)

RFM_KW = {
    "customer_col": "customer_id",
    "date_col": "date",
    "value_col": "value",
    "calibration_end": "1997-09-30",
    "observation_end": "1998-06-30",
}
SEED = 20260


def assert_same_rfm(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Counts and times identical; value columns to 1e-12 relative.

    Value columns are DuckDB sums, whose floating-point order is not fixed: two runs of
    rfm_summary on the same log can differ in the last bit.
    """
    got = got.sort_values("customer_id", ignore_index=True)
    exact = [c for c in expected if c not in ("monetary_value", "holdout_value")]
    pd.testing.assert_frame_equal(got[exact], expected[exact], check_exact=True)
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-12, atol=0)


PREDICT_KW = {"horizon": 39.0, "n_draws": 48, "annual_discount": 0.1, "thresholds": [50.0]}


@pytest.fixture(scope="module")
def client():
    # worker processes, as on a real cluster: the fitted models, the posterior draws and
    # the tasks are pickled to the workers and the results back
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


@pytest.fixture(scope="module")
def tx() -> pd.DataFrame:
    return load_cdnow("sample")


@pytest.fixture(scope="module")
def rfm(tx: pd.DataFrame) -> pd.DataFrame:
    return clvbayes.rfm_summary(tx, **RFM_KW)


@pytest.fixture(scope="module")
def fits(rfm: pd.DataFrame):
    return clvbayes.BGNBD().fit(rfm, method="map"), clvbayes.GammaGamma().fit(rfm, method="map")


@pytest.fixture(scope="module")
def rfm_ddf(rfm: pd.DataFrame):
    # customers in file order, 3 uneven partitions
    return dd.from_pandas(rfm, npartitions=3, sort=False)


@pytest.fixture(scope="module")
def scored(client, fits, rfm_ddf, tmp_path_factory) -> pd.DataFrame:
    bg, gg = fits
    out = tmp_path_factory.mktemp("scored")
    res = predict_customers_dask(bg, rfm_ddf, spend_fit=gg, seed=SEED, out=out, **PREDICT_KW)
    return res.compute().sort_values("customer_id", ignore_index=True)


def _per_partition(fits, rfm_ddf, **extra):
    bg, gg = fits
    return [
        clvbayes.predict_customers(
            bg,
            rfm_ddf.partitions[i].compute(),
            spend_fit=gg,
            seed=partition_seed(SEED, i),
            ranks=False,
            **PREDICT_KW,
            **extra,
        )
        for i in range(rfm_ddf.npartitions)
    ]


# --- RFM ------------------------------------------------------------------------------


@pytest.mark.slow
def test_rfm_summary_dask_matches_rfm_summary_with_holdout(client, tx, rfm):
    # rows split without regard to customers: the shuffle must bring them together
    ddf = dd.from_pandas(tx, npartitions=5, sort=False)
    got = rfm_summary_dask(ddf, **RFM_KW)
    assert got.npartitions == 5
    table = got.compute()
    assert not table["customer_id"].duplicated().any()
    assert_same_rfm(table, rfm)


@pytest.mark.slow
def test_rfm_summary_dask_from_parquet_glob_matches_file_path(client, tx, tmp_path):
    # oracle: rfm_summary reading one Parquet file through DuckDB; defaults for the period
    tx = tx[["customer_id", "date", "value"]]
    tx.to_parquet(tmp_path / "all.parquet")
    parts = tmp_path / "parts"
    parts.mkdir()
    for i, piece in enumerate(np.array_split(np.arange(len(tx)), 3)):
        tx.iloc[piece].to_parquet(parts / f"tx-{i}.parquet")
    kw = {"customer_col": "customer_id", "date_col": "date", "value_col": "value"}
    expected = clvbayes.rfm_summary(tmp_path / "all.parquet", time_unit="D", **kw)
    got = rfm_summary_dask(str(parts / "*.parquet"), time_unit="D", **kw).compute()
    assert_same_rfm(got, expected)


@pytest.mark.slow
def test_rfm_summary_dask_reports_whole_log_counts_like_rfm_summary(client, tx):
    bad = tx.copy()
    bad.loc[[5, 4000, 6500], "value"] = np.nan  # in different partitions
    with pytest.raises(ValueError) as expected:
        clvbayes.rfm_summary(bad, **RFM_KW)
    with pytest.raises(ValueError) as got:
        rfm_summary_dask(dd.from_pandas(bad, npartitions=4, sort=False), **RFM_KW)
    assert str(got.value) == str(expected.value)
    assert "3 of" in str(got.value)


def test_rfm_summary_dask_rejects_in_memory_frames(tx):
    with pytest.raises(TypeError, match=r"clvbayes\.rfm_summary"):
        rfm_summary_dask(tx, customer_col="customer_id", date_col="date")


# --- scoring --------------------------------------------------------------------------


@pytest.mark.slow
def test_analytic_columns_match_predict_customers_on_whole_table(scored, fits, rfm):
    bg, gg = fits
    whole = clvbayes.predict_customers(bg, rfm, spend_fit=gg, seed=1, **PREDICT_KW).summary
    np.testing.assert_array_equal(scored["customer_id"], whole["customer_id"])
    for column in ("p_alive", "expected_purchases", "clv_conditional_mean"):
        np.testing.assert_allclose(scored[column], whole[column], rtol=1e-12, err_msg=column)


@pytest.mark.slow
def test_simulated_columns_match_predict_customers_per_partition(scored, fits, rfm_ddf):
    # oracle: predict_customers on each partition with the partition's derived seed
    pieces = [r.summary for r in _per_partition(fits, rfm_ddf, keep_draws=())]
    expected = pd.concat(pieces).sort_values("customer_id", ignore_index=True)
    pd.testing.assert_frame_equal(scored[expected.columns], expected)
    assert "expected_rank" not in scored


@pytest.mark.slow
def test_p_top_matches_rank_columns_over_all_customers(scored, fits, rfm_ddf):
    # oracle: rank_columns on the CLV draws of every customer (per-partition runs joined)
    runs = _per_partition(fits, rfm_ddf, keep_draws=("clv",))
    ids = np.concatenate([r.summary["customer_id"].to_numpy() for r in runs])
    clv = np.concatenate(
        [r.draws["clv"].to_numpy().reshape(-1, len(r.summary)) for r in runs], axis=1
    )
    expected = pd.Series(rank_columns(clv, (0.1,))["p_top_10pct"], index=ids).sort_index()
    np.testing.assert_allclose(scored["p_top_10pct"], expected.to_numpy(), rtol=0, atol=1e-12)
    assert scored["p_top_10pct"].sum() == pytest.approx(0.1 * len(scored), rel=1e-12)


@pytest.mark.slow
def test_simulated_columns_consistent_with_whole_table_run(scored, fits, rfm):
    # Same population draws, independent customer-level randomness: the totals differ by
    # Monte Carlo error only (sd of a mean <= posterior sd / sqrt(draws); 5 sigma).
    bg, gg = fits
    whole = clvbayes.predict_customers(bg, rfm, spend_fit=gg, seed=2, **PREDICT_KW).summary
    draws = PREDICT_KW["n_draws"]
    for name in ("purchases", "clv"):
        diff = scored[f"{name}_mean"].sum() - whole[f"{name}_mean"].sum()
        se = np.sqrt(2 * (scored[f"{name}_sd"] ** 2).sum() / draws)
        assert abs(diff) < 5 * se, name
    assert np.corrcoef(scored["p_top_10pct"], whole["p_top_10pct"])[0, 1] > 0.9


@pytest.mark.slow
def test_scoring_is_deterministic_and_paths_agree(client, scored, fits, rfm_ddf, tmp_path):
    bg, gg = fits
    # the map_partitions path (no ranks) writes the same numbers as the ranks path
    plain = predict_customers_dask(
        bg, rfm_ddf, spend_fit=gg, seed=SEED, out=tmp_path / "a", ranks=False, **PREDICT_KW
    )
    plain = plain.compute().sort_values("customer_id", ignore_index=True)
    assert "p_top_10pct" not in plain
    pd.testing.assert_frame_equal(scored[plain.columns], plain)
    assert len(list((tmp_path / "a").glob("*.parquet"))) == rfm_ddf.npartitions


@pytest.mark.slow
def test_horizon_column_and_streamed_draws(client, fits, rfm_ddf, rfm, tmp_path):
    bg, _ = fits
    draws_dir = tmp_path / "draws"
    res = predict_customers_dask(
        bg,
        rfm_ddf,
        horizon="holdout_duration",
        n_draws=8,
        seed=1,
        out=tmp_path / "out",
        draws_to=draws_dir,
    ).compute()
    whole = clvbayes.predict_customers(bg, rfm, horizon=rfm["holdout_duration"], n_draws=8)
    got = res.sort_values("customer_id", ignore_index=True)
    np.testing.assert_allclose(
        got["expected_purchases"], whole.summary["expected_purchases"], rtol=1e-12
    )
    streamed = pd.read_parquet(draws_dir)
    assert len(streamed) == 8 * len(rfm)
    assert set(streamed["customer_id"]) == set(rfm["customer_id"])


def test_fit_ships_to_workers_without_its_data(fits, rfm):
    # what a worker receives: distributed's pickling of the slimmed fit
    from distributed.protocol.pickle import dumps, loads

    bg, _ = fits
    shipped = loads(dumps(_slim(bg)))
    assert shipped.data is None
    a = clvbayes.predict_customers(bg, rfm.iloc[:50], horizon=10, n_draws=4, seed=5)
    b = clvbayes.predict_customers(shipped, rfm.iloc[:50], horizon=10, n_draws=4, seed=5)
    pd.testing.assert_frame_equal(a.summary, b.summary)


def test_predict_customers_dask_checks_inputs(fits, rfm, tmp_path):
    bg, gg = fits
    with pytest.raises(ValueError, match="monetary_value"):
        predict_customers_dask(
            bg, rfm.drop(columns="monetary_value"), spend_fit=gg, horizon=1, out=tmp_path
        )
    with pytest.raises(TypeError, match="fit: expected a fitted transaction model"):
        predict_customers_dask(gg, rfm, horizon=1, out=tmp_path)
