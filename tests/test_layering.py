"""Dependency direction: the maths layer loads neither PyMC, PyTensor, pandas nor xarray."""

from __future__ import annotations

import subprocess
import sys

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
