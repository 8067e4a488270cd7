"""Dependency direction: the maths layer loads neither PyMC, PyTensor, pandas nor xarray."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("pymc", "pytensor", "pandas", "xarray")


@pytest.mark.parametrize("module", ["clvbayes.math", "clvbayes.simulate"])
def test_importing_math_layer_loads_no_heavy_dependency(module):
    code = (
        f"import sys, {module}\n"
        f"heavy = {HEAVY!r}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]", out.stdout


def test_the_check_would_notice_a_heavy_import():
    code = "import sys, clvbayes.math, pandas\nprint('pandas' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "True"


# --- the data layer knows no model (AST: every import, lazy ones inside functions too) ---

DATA_DIR = Path(__file__).resolve().parents[1] / "clvbayes" / "data"
ABOVE_DATA = (
    "clvbayes.models",
    "clvbayes.inference",
    "clvbayes.predict",
    "clvbayes.simulate",
    "clvbayes.ppc",
    "clvbayes.comparison",
    "clvbayes.validation",
    "clvbayes.segments",
    "clvbayes.scale",
    "clvbayes.plots",
    "clvbayes.report",
    "clvbayes.cli",
    "clvbayes.io",
)


def _imported_modules(source: str, package: str) -> set[str]:
    """Every module an import statement anywhere in ``source`` names (relative ones
    resolved against ``package``), including ``from pkg import module`` targets."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base]) if base else ".".join(parts)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _forbidden(modules: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes))


def test_data_layer_imports_no_model_prediction_report_or_cli():
    offenders = {}
    for path in sorted(DATA_DIR.glob("*.py")):
        bad = _forbidden(_imported_modules(path.read_text(), "clvbayes.data"), ABOVE_DATA)
        if bad:
            offenders[path.name] = bad
    assert offenders == {}


def test_validate_does_not_import_rfm():
    modules = _imported_modules((DATA_DIR / "validate.py").read_text(), "clvbayes.data")
    assert _forbidden(modules, ("clvbayes.data.rfm",)) == []


def test_the_import_rule_sees_lazy_relative_and_from_imports():
    source = (
        "import numpy\n"
        "def f():\n"
        "    from clvbayes.models import BGNBD\n"
        "    from ..report import crm\n"
        "    from clvbayes import cli\n"
        "    import clvbayes.predict.customers as pc\n"
    )
    modules = _imported_modules(source, "clvbayes.data")
    assert _forbidden(modules, ABOVE_DATA) == [
        "clvbayes.cli",
        "clvbayes.models",
        "clvbayes.models.BGNBD",
        "clvbayes.predict.customers",
        "clvbayes.report",
        "clvbayes.report.crm",
    ]


# --- what a fit's imports cost: nothing the fit does not use ---


def _run(code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    return out.stdout.strip()


def test_model_imports_skip_pymc_extras_init():
    # pymc_extras/__init__ imports its inference and state-space code (1.4 s of a fresh
    # process); the Prior class needs none of it
    code = (
        "import sys, clvbayes.models, clvbayes.inference\n"
        "print(sorted(m for m in sys.modules if m.startswith(('pymc_extras.inference', "
        "'pymc_extras.statespace'))))\n"
    )
    assert _run(code) == "[]"


def test_the_deferred_pymc_extras_package_is_whole_when_used():
    code = (
        "import clvbayes.priors as cp\n"
        "import pymc_extras\n"
        "print(callable(pymc_extras.fit_pathfinder), pymc_extras.prior.Prior is cp.Prior)\n"
        "from pymc_extras import fit_laplace\n"
        "from pymc_marketing.clv import BetaGeoModel\n"
        "print(type(pymc_extras).__name__, callable(fit_laplace))\n"
    )
    assert _run(code).split() == ["True", "True", "module", "True"]


def test_pymc_extras_imported_first_is_left_as_it_is():
    code = (
        "import pymc_extras, clvbayes.priors as cp\n"
        "print(type(pymc_extras).__name__, pymc_extras.prior.Prior is cp.Prior)\n"
    )
    assert _run(code).split() == ["module", "True"]


def test_a_fit_loads_neither_plotting_nor_scipy_stats_and_arviz_stays_whole():
    # arviz/__init__ loads arviz_plots (matplotlib) and arviz_stats (scipy.stats), ~0.8 s
    # of a fresh process; nutpie imports arviz and needs only arviz_base's from_dict;
    # arviz_base/__init__ loads every converter (the numpyro one inspects the stack when
    # jax is absent, ~0.3 s)
    code = (
        "import sys\n"
        "from clvbayes import BGNBD\n"
        "from clvbayes.simulate import simulate_bgnbd\n"
        "import numpy as np, pandas as pd\n"
        "sim = simulate_bgnbd(0.5, 5.0, 1.0, 3.0, np.full(300, 30.0), rng=np.random.default_rng(0))\n"
        "rfm = pd.DataFrame({k: sim[k] for k in ('frequency', 'recency', 'T')})\n"
        "fit = BGNBD().fit(rfm, draws=30, tune=30, chains=2, seed=1, progressbar=False)\n"
        "heavy = ('matplotlib', 'scipy.stats', 'arviz_plots', 'arviz_stats', "
        "'arviz_base.io_numpyro')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
        "print(fit.settings['sampler'], type(sys.modules['arviz']).__name__)\n"
        "import arviz as az, arviz_base\n"
        "print(az.from_dict is arviz_base.from_dict, callable(az.plot_dist), type(az).__name__, "
        "type(arviz_base).__name__)\n"
        "print(list(fit.summary().index) == ['r', 'alpha', 'a', 'b'])\n"
    )
    lines = _run(code).splitlines()[-4:]
    assert lines[0] == "[]"
    assert lines[1] == "nutpie Deferred_arviz"
    assert lines[2:] == ["True True module module", "True"]


def test_arviz_imported_first_is_left_as_it_is():
    code = (
        "import arviz\n"
        "from clvbayes.imports import import_nutpie\n"
        "import_nutpie()\n"
        "import sys\n"
        "print(type(sys.modules['arviz']).__name__, sys.modules['arviz'] is arviz)\n"
    )
    assert _run(code).split() == ["module", "True"]
