"""The architecture, enforced: layers, public seams, no cycles, small units.

Read from the source with ``ast`` (imports inside functions included), so a lazy import
cannot hide an upward dependency or a cycle. The layers, low to high (a module may import
its own layer and the ones below):

==  =======================================================================================
0   ``math`` -- pure array maths of the model families; numpy/scipy only (PyTensor only
    through the ops shim)
1   ``data``, ``datasets``, ``priors``, ``imports``, ``diagnostics``, ``files``, ``io``,
    ``simulate``, ``progress``, ``display``
2   ``models``, ``inference`` -- PyMC specs, the fitted model, fitting
3   ``predict``, ``ppc``, ``compare`` -- per-customer predictions, checks, comparison
4   ``analyses``, ``segments``, ``covariates``, ``scale`` -- analyses built on predictions,
    Dask
5   ``plots`` -- figures from results; computes nothing
6   ``report`` -- content and HTML
7   ``cli``, ``__main__``
==  =======================================================================================
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "clvbayes"

LAYERS = {
    "math": 0,
    "data": 1,
    "datasets": 1,
    "priors": 1,
    "imports": 1,
    "diagnostics": 1,
    "files": 1,
    "io": 1,
    "simulate": 1,
    "progress": 1,
    "display": 1,
    "models": 2,
    "inference": 2,
    "predict": 3,
    "ppc": 3,
    "comparison": 3,
    "analyses": 4,
    "segments": 4,
    "scale": 4,
    "covariates": 4,
    "plots": 5,
    "report": 6,
    "cli": 7,
    "__main__": 7,
}
HEAVY = ("pandas", "xarray", "pymc", "pymc_extras", "arviz", "duckdb", "matplotlib")
SHIM = {"clvbayes.math.ops", "clvbayes.math.softplus"}  # may import PyTensor (lazily)
MAX_CLASS_LINES = 250
MAX_FUNCTION_LINES = 150


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_module(name: str) -> bool:
    return name in MODULES


def _imports(name: str) -> Iterator[tuple[str, list[str], int]]:
    """``(imported module, imported names, line)`` for every import in module ``name``."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            yield base, [a.name for a in node.names], node.lineno


def _targets(name: str) -> Iterator[tuple[str, int]]:
    """The clvbayes modules module ``name`` imports (``from pkg import submodule``
    resolved to the submodule)."""
    for module, names, line in _imports(name):
        if not module.startswith("clvbayes"):
            continue
        submodules = [f"{module}.{n}" for n in names if _is_module(f"{module}.{n}")]
        if submodules:
            yield from ((s, line) for s in submodules)
        if not names or len(submodules) < len(names):
            yield module, line


def _layer(name: str) -> int | None:
    parts = name.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def test_every_module_has_a_layer():
    missing = [m for m in MODULES if m != "clvbayes" and _layer(m) is None]
    assert not missing, f"add these modules to LAYERS (and the docstring's table): {missing}"


def test_no_module_imports_a_higher_layer():
    upward = []
    for name in MODULES:
        own = _layer(name)
        if own is None:
            continue
        for target, line in _targets(name):
            layer = _layer(target)
            if layer is not None and layer > own:
                upward.append(f"{name}:{line} -> {target} (layer {own} -> {layer})")
    assert not upward, "\n".join(upward)


def test_math_imports_no_heavy_library_and_pytensor_only_through_the_shim():
    bad = []
    for name in MODULES:
        if _layer(name) != 0:
            continue
        for module, _, line in _imports(name):
            top = module.split(".")[0]
            if top in HEAVY or (top == "pytensor" and name not in SHIM):
                bad.append(f"{name}:{line} imports {module}")
            if module.startswith("clvbayes") and _layer(module) not in (0, None):
                bad.append(f"{name}:{line} imports {module}")
    assert not bad, "\n".join(bad)


def test_data_knows_no_model_and_nothing_below_report_imports_report_or_cli():
    bad = []
    for name in MODULES:
        for target, line in _targets(name):
            if name.startswith("clvbayes.data") and target.startswith(
                ("clvbayes.models", "clvbayes.inference", "clvbayes.predict")
            ):
                bad.append(f"{name}:{line} -> {target}")
            if target.startswith(("clvbayes.report", "clvbayes.cli")) and not name.startswith(
                ("clvbayes.report", "clvbayes.cli", "clvbayes.__main__")
            ):
                bad.append(f"{name}:{line} -> {target}")
    assert not bad, "\n".join(bad)


def test_no_module_imports_another_modules_private_names():
    private = []
    for name in MODULES:
        for module, names, line in _imports(name):
            if not module.startswith("clvbayes") or module == name:
                continue
            if any(part.startswith("_") and part != "__main__" for part in module.split(".")):
                private.append(f"{name}:{line} imports private module {module}")
            for imported in names:
                if imported.startswith("_") and not imported.startswith("__"):
                    private.append(f"{name}:{line} imports {module}.{imported}")
    assert not private, "\n".join(private)


def test_no_import_cycles_lazy_imports_included():
    graph = {name: {t for t, _ in _targets(name) if t in MODULES and t != name} for name in MODULES}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    assert not cycles, f"import cycles: {cycles}"


def _units(kind: type) -> Iterator[tuple[str, int]]:
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, kind):
                yield f"{name}.{node.name}", node.end_lineno - node.lineno + 1


@pytest.mark.parametrize(
    ("kind", "limit"),
    [(ast.ClassDef, MAX_CLASS_LINES), (ast.FunctionDef, MAX_FUNCTION_LINES)],
    ids=["classes", "functions"],
)
def test_no_class_or_function_is_too_long(kind, limit):
    long = [f"{name}: {n} lines" for name, n in _units(kind) if n > limit]
    assert not long, f"over {limit} lines:\n" + "\n".join(long)


def test_the_checks_would_notice_a_violation(tmp_path, monkeypatch):
    """Each rule fires on a module written to break it (so none of them is vacuous)."""
    fake = tmp_path / "clvbayes"
    (fake / "math").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "math" / "__init__.py").write_text("")
    (fake / "math" / "bad.py").write_text(
        "import pandas\nfrom clvbayes.report import html\nfrom clvbayes.cli import _run\n"
        "from clvbayes.math import other\n"
        "def f():\n" + "    x = 1\n" * 160
    )
    (fake / "math" / "other.py").write_text("def g():\n    from clvbayes.math import bad\n")
    (fake / "report").mkdir()
    (fake / "report" / "__init__.py").write_text("")
    (fake / "report" / "html.py").write_text("")
    (fake / "cli.py").write_text("def _run():\n    pass\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    modules = {_module_name(p): p for p in sorted(fake.rglob("*.py"))}
    monkeypatch.setattr(__import__(__name__), "MODULES", modules)
    for check in (
        test_no_module_imports_a_higher_layer,
        test_math_imports_no_heavy_library_and_pytensor_only_through_the_shim,
        test_data_knows_no_model_and_nothing_below_report_imports_report_or_cli,
        test_no_module_imports_another_modules_private_names,
        test_no_import_cycles_lazy_imports_included,
    ):
        with pytest.raises(AssertionError):
            check()
    with pytest.raises(AssertionError):
        test_no_class_or_function_is_too_long(ast.FunctionDef, MAX_FUNCTION_LINES)
