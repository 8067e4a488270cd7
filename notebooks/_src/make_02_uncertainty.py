"""Generates notebooks/02_uncertainty.ipynb (run from the repository root)."""

import nbformat

md = nbformat.v4.new_markdown_cell
code = nbformat.v4.new_code_cell

cells = [
    md(
        "# How sure are we? Per-customer uncertainty on CDNOW\n\n"
        "The CDNOW sample (2,357 customers), calibrated on weeks 1-39 (to 1997-09-30) and "
        "checked against weeks 40-78 (to 1998-06-30). For every customer clvbayes gives a "
        "posterior of P(alive) and a **posterior predictive distribution** of future "
        "purchases and CLV that carries both sources of uncertainty: the population "
        "parameters (one simulation per posterior draw) and the customer's own latent state "
        "(alive or not, purchase rate, dropout probability, spend scale) drawn from its exact "
        "conditional posterior. We look at who is likely alive, contrast customers with the "
        "same frequency but different recency, compare the full predictive with the "
        "conditional-mean CLV that other packages report, look at rank uncertainty, and end "
        "with the holdout coverage check."
    ),
    code(
        "import os\n\n"
        "import matplotlib.pyplot as plt\n"
        "import numpy as np\n"
        "import pandas as pd\n\n"
        "import clvbayes\n"
        "from clvbayes.datasets import load_cdnow\n"
        "from clvbayes.math import bgnbd as bg_math, gamma_gamma as gg_math\n"
        "from clvbayes.math.clv import continuous_rate\n\n"
        "QUICK = os.environ.get('CLVBAYES_QUICK') == '1'  # the test suite uses few draws\n"
        "DRAWS = dict(draws=150, tune=300, chains=2) if QUICK else dict(draws=1000, tune=1000, chains=4)\n"
        "SEED = 7\n"
        "tx = load_cdnow('sample')\n"
        "rfm = clvbayes.rfm_summary(\n"
        "    tx, customer_col='customer_id', date_col='date', value_col='value',\n"
        "    calibration_end='1997-09-30', observation_end='1998-06-30', time_unit='W',\n"
        ")\n"
        "bgnbd = clvbayes.BGNBD().fit(rfm, seed=SEED, progressbar=False, **DRAWS)\n"
        "spend = clvbayes.GammaGamma().fit(rfm, seed=SEED, progressbar=False, **DRAWS)\n"
        "rfm.head()"
    ),
    md(
        "## 1. Who is likely alive?\n\n"
        "P(alive) is a posterior too: one value per posterior draw. Under the BG/NBD a "
        "customer without repeat purchases cannot have dropped out yet (P(alive) = 1); for the "
        "others it falls with the time since the last purchase, faster for frequent buyers, "
        "whose silence is more telling."
    ),
    code(
        "alive = clvbayes.p_alive(bgnbd, rfm)  # (chain, draw, customer_id)\n"
        "pa = alive.mean(('chain', 'draw')).to_numpy()\n"
        "gap = (rfm['T'] - rfm['recency']).to_numpy()\n"
        "fig, ax = plt.subplots(figsize=(7, 4))\n"
        "sc = ax.scatter(gap, rfm['frequency'], c=pa, cmap='viridis', s=12, vmin=0, vmax=1)\n"
        "fig.colorbar(sc, label='posterior mean P(alive)')\n"
        "ax.set(xlabel='weeks since last purchase (T - recency)', ylabel='repeat purchases',\n"
        "       ylim=(-0.5, 20), title='P(alive) by frequency and silence')\n"
        "band = alive.quantile([0.05, 0.95], dim=('chain', 'draw')).to_numpy()\n"
        "repeat = rfm['frequency'].to_numpy() > 0\n"
        "print(f'customers with P(alive) < 0.5: {(pa < 0.5).sum()} of {len(pa)}; median width of '\n"
        "      f'the 90% interval of P(alive), repeat buyers: {np.median((band[1] - band[0])[repeat]):.3f}')"
    ),
    md(
        "## 2. Same frequency, different recency\n\n"
        "Two customers with two repeat purchases and the same age: one bought recently, the "
        "other not since week ~5. Their predictive distributions of purchases over the next "
        "52 weeks differ mostly in the mass at zero, the chance they are gone."
    ),
    code(
        "two = rfm[(rfm.frequency == 2) & (rfm['T'] > 36)].sort_values('recency')\n"
        "pair = pd.concat([two.head(1), two.tail(1)])\n"
        "res_pair = clvbayes.predict_customers(\n"
        "    bgnbd, pair, horizon=52, spend_fit=spend, time_unit='W', annual_discount=0.10, seed=SEED\n"
        ")\n"
        "fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)\n"
        "for ax, cid in zip(axes, pair.customer_id):\n"
        "    counts = res_pair.draws['purchases'].sel(customer_id=cid).to_numpy().ravel()\n"
        "    ax.hist(counts, bins=np.arange(0, max(counts.max(), 10) + 2) - 0.5, density=True)\n"
        "    row = pair.set_index('customer_id').loc[cid]\n"
        "    ax.set(title=f'customer {cid}: x=2, recency={row['recency']:.1f}, T={row['T']:.1f}',\n"
        "           xlabel='purchases in the next 52 weeks')\n"
        "axes[0].set_ylabel('predictive probability')\n"
        "res_pair.summary[['customer_id', 'p_alive', 'expected_purchases', 'purchases_q05',\n"
        "                  'purchases_q95', 'clv_mean', 'clv_q05', 'clv_q95']].round(3)"
    ),
    md(
        "## 3. Conditional mean versus full predictive\n\n"
        "pymc-marketing's `expected_customer_lifetime_value` (and lifetimes') report, per "
        "posterior draw, the *conditional expected* CLV: expected discounted purchases times "
        "expected spend. Its spread over draws is the uncertainty about the population "
        "parameters only. What a customer will actually be worth also depends on whether they "
        "are still alive, how fast they buy and how much each order is: the full predictive "
        "below. Its 90% interval is many times wider, and for most customers starts at 0."
    ),
    code(
        "res = clvbayes.predict_customers(\n"
        "    bgnbd, rfm, horizon=52, spend_fit=spend, time_unit='W', annual_discount=0.10,\n"
        "    thresholds=[50, 200], seed=SEED,\n"
        ")\n"
        "summary = res.summary.merge(rfm[['customer_id', 'frequency', 'recency', 'T']])\n"
        "picks = summary.sort_values('clv_mean', ascending=False).iloc[[0, 10, 50, 200, 600]]\n"
        "post = {k: v.reshape(-1, 1) for k, v in {**bgnbd.params(), **spend.params()}.items()}\n"
        "sel = rfm.set_index('customer_id').loc[picks.customer_id]\n"
        "x, t_x, T = (sel[c].to_numpy(float) for c in ('frequency', 'recency', 'T'))\n"
        "z = np.where(x > 0, sel['monetary_value'].to_numpy(float), 0.0)\n"
        "delta = continuous_rate(0.10, 'W')\n"
        "e_disc = bg_math.expected_discounted_purchases(\n"
        "    post['r'], post['alpha'], post['a'], post['b'], x, t_x, T, 52.0, delta\n"
        ")\n"
        "conditional = e_disc * gg_math.expected_spend(post['p'], post['q'], post['v'], x, z)\n"
        "rows = []\n"
        "for j, cid in enumerate(picks.customer_id):\n"
        "    full = res.draws['clv'].sel(customer_id=cid).to_numpy().ravel()\n"
        "    cq, fq = np.quantile(conditional[:, j], [0.05, 0.95]), np.quantile(full, [0.05, 0.95])\n"
        "    rows.append({'customer_id': cid, 'frequency': x[j], 'recency': t_x[j],\n"
        "                 'conditional mean': conditional[:, j].mean(), 'conditional 5%': cq[0],\n"
        "                 'conditional 95%': cq[1], 'predictive mean': full.mean(),\n"
        "                 'predictive 5%': fq[0], 'predictive 95%': fq[1],\n"
        "                 'width ratio': (fq[1] - fq[0]) / (cq[1] - cq[0])})\n"
        "comparison = pd.DataFrame(rows)\n"
        "comparison.round(2)"
    ),
    code(
        "fig, ax = plt.subplots(figsize=(8, 3.8))\n"
        "ypos = np.arange(len(comparison))\n"
        "ax.hlines(ypos + 0.15, comparison['predictive 5%'], comparison['predictive 95%'],\n"
        "          color='C0', lw=3, label='full predictive 90%')\n"
        "ax.hlines(ypos - 0.15, comparison['conditional 5%'], comparison['conditional 95%'],\n"
        "          color='C3', lw=3, label='conditional mean 90% (parameter uncertainty only)')\n"
        "ax.plot(comparison['predictive mean'], ypos, 'k|', ms=14, label='mean (equal for both)')\n"
        "ax.set_yticks(ypos, [f'customer {c}' for c in comparison.customer_id])\n"
        "ax.set(xlabel='CLV, next 52 weeks, 10 % annual discount ($)')\n"
        "ax.legend(loc='lower right', fontsize=8);"
    ),
    md(
        "The two means agree (the predictive mean estimates the conditional mean, to Monte "
        "Carlo error); the intervals do not. A CRM team that targets customers whose "
        "*conditional* CLV interval clears a threshold will be much more confident than the "
        "data allow. `P(CLV > x)` from the full predictive is the honest number:"
    ),
    code(
        "summary[['p_clv_gt_50', 'p_clv_gt_200']].describe().round(3)"
    ),
    md(
        "## 4. Rank uncertainty: who is really in the top 10 %?\n\n"
        "In every posterior draw the customers are ranked by their simulated CLV. "
        "`expected_rank` averages the rank; `p_top_10pct` is the share of draws in which the "
        "customer is among the top 10 %. Even the 'best' customers are far from certain to be "
        "there."
    ),
    code(
        "top = summary.sort_values('expected_rank').head(30)\n"
        "from scipy.stats import rankdata\n"
        "clv_draws = res.draws['clv'].to_numpy().reshape(-1, len(summary))  # (sample, customer)\n"
        "ranks = rankdata(-clv_draws, axis=1)  # 1 = most valuable in that draw (ties averaged)\n"
        "column = pd.Index(res.draws['customer_id'].to_numpy()).get_indexer(top.customer_id)\n"
        "rank_band = np.quantile(ranks[:, column], [0.05, 0.95], axis=0)\n"
        "fig, ax = plt.subplots(figsize=(8, 4))\n"
        "ax.errorbar(np.arange(len(top)), top.expected_rank,\n"
        "            yerr=[top.expected_rank - rank_band[0], rank_band[1] - top.expected_rank],\n"
        "            fmt='o', capsize=2)\n"
        "ax.axhline(0.1 * len(summary), color='C3', ls='--', label='top-10 % cut-off')\n"
        "ax.set(xlabel='customers ordered by expected rank', ylabel='rank (90 % interval)')\n"
        "ax.legend()\n"
        "print('P(top 10 %) of the 10 highest expected ranks:',\n"
        "      np.round(top.p_top_10pct.head(10).to_numpy(), 2))\n"
        "print('expected number of true top-10 % customers among the 236 with the best expected rank:',\n"
        "      round(summary.nsmallest(236, 'expected_rank').p_top_10pct.sum(), 1))"
    ),
    md(
        "## 5. Does the uncertainty hold up? The holdout check\n\n"
        "`validate_holdout` predicts the holdout window (weeks 40-78) for every customer and "
        "compares the predictive distributions with what happened: total purchases with their "
        "predictive interval, the coverage of the 50/80/90 % central intervals (observed, and "
        "the coverage the model itself expects, which is above nominal for discrete counts), "
        "a randomized PIT histogram (flat if calibrated) and P(no purchase) by decile."
    ),
    code(
        "report = clvbayes.validate_holdout(bgnbd, rfm, spend_fit=spend, seed=SEED)\n"
        "report.totals.round(3)"
    ),
    code("report.coverage.round(3)"),
    code(
        "fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))\n"
        "pit = report.pit\n"
        "for ax, (quantity, part) in zip(axes, pit.groupby('quantity')):\n"
        "    ax.bar(part['bin_low'], part['share'], width=part['bin_high'] - part['bin_low'],\n"
        "           align='edge', edgecolor='white')\n"
        "    ax.axhline(part['expected_share'].iloc[0], color='k', ls='--')\n"
        "    ax.set(title=f'randomized PIT: {quantity}', xlabel='PIT', ylabel='share of customers')\n"
        "report.p_zero.round(3)"
    ),
    md(
        "**Why is the holdout total under-forecast?** The BG/NBD is stationary: each "
        "customer's purchase rate stays what it was in the calibration period. CDNOW's "
        "customers were all acquired in the first quarter of 1997 and buying in the holdout "
        "period (late 1997 to mid 1998, including the Christmas season) is a little higher "
        "than that model extrapolates; the maximum-likelihood plug-in misses the same way "
        "(1,653 predicted against 1,882 actual, -12.1 %). The posterior predictive adds "
        "honest intervals but cannot fix a structural gap; the coverage table shows that "
        "per-customer intervals are nevertheless close to what the model expects. With the "
        "default priors the posterior forecast (the posterior mean of the expected total) is "
        "a little closer to the actual than the plug-in (about 1,665, -11.5 %; the totals "
        "table above). Under a prior nearly flat in `a + b` (the "
        "concentration of the dropout Beta) the posterior's long tail towards large `a + b` "
        "pulled the forecast down to 1,641, below the plug-in; `clvbayes.priors` explains "
        "the default `HalfCauchy(1)`."
    ),
]

nb = nbformat.v4.new_notebook(cells=cells)
nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
nbformat.write(nb, "notebooks/02_uncertainty.ipynb")
