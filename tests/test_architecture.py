"""The layer rules of docs/architecture.md hold, and the checker that enforces them would notice a breach."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter is not installed (the test extra)")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )


def contracts() -> list[dict]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def test_the_import_contracts_are_kept():
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(contracts())} kept, 0 broken." in result.stdout


def test_every_module_is_bound_by_the_contracts():
    """A new top-level module or package must be placed in the rules, not slip past them."""
    modules = {
        f"edge.{p.stem}" if p.is_file() else f"edge.{p.name}"
        for p in (REPO / "edge").iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").exists())
    }
    entry_points = {"edge.app", "edge.cli", "edge.__main__"}
    (nothing_imports_the_cli,) = [c for c in contracts() if c["name"].startswith("Nothing imports the CLI")]
    assert modules - entry_points == set(nothing_imports_the_cli["source_modules"])


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("appliance/policy.py", "import edge.mqtt.sink", "The appliance gets its engine, gallery and sinks handed in"),
        ("vision/align.py", "from edge.engine import Engine", "Stages and the ground floor import nothing above them"),
        ("config.py", "from edge.mqtt import client", "The configuration is a schema"),
    ],
)
def test_a_forbidden_import_breaks_a_contract(tmp_path, module, line, contract):
    shutil.copytree(REPO / "edge", tmp_path / "edge", ignore=shutil.ignore_patterns("__pycache__", "models"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "edge" / module
    target.write_text(target.read_text() + f"\n{line}  # noqa\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0, result.stdout
    assert f"{contract} BROKEN" in result.stdout
