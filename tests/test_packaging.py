"""A regular (non-editable) install carries its models: build the wheel offline, install it
into a throwaway venv, and use it from outside the checkout."""

from __future__ import annotations

import email.parser
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from checkout import REPO, git_files

DISTRIBUTION = "edge-face-verify"
WHEEL_PREFIX = DISTRIBUTION.replace("-", "_")  # a wheel's file name normalises - to _


def _source_files() -> list[str]:
    """The checkout's files as git sees them (tracked + untracked, minus .gitignore)."""
    files = git_files()
    if files is None:
        pytest.skip("needs git to list the checkout's files")
    return files


def _sh(*cmd, **kw) -> subprocess.CompletedProcess:
    kw.setdefault("env", {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "EDGE_MODELS_DIR")})
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, stdin=subprocess.DEVNULL, **kw)
    assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Build the wheel from a clean copy of the checkout (no stale build/ dirs, repo untouched)."""
    for module in ("setuptools", "wheel"):
        if importlib.util.find_spec(module) is None:
            pytest.fail(f"{module} is not installed in {sys.prefix}; install the test extra: pip install -e '.[test]'")
    from importlib.metadata import version

    if int(version("setuptools").split(".")[0]) < 77:  # the SPDX license expression (PEP 639)
        pytest.fail(f"setuptools {version('setuptools')} in {sys.prefix} is older than 77; run bash scripts/setup.sh")
    src = tmp_path_factory.mktemp("src")
    for name in _source_files():
        if name.startswith(("tests/", "scripts/", ".ci/")):
            continue
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, src / name)
    dist = tmp_path_factory.mktemp("dist")
    _sh(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "-q",
        "-w",
        dist,
        src,
        cwd=src,
    )
    (built,) = dist.glob(f"{WHEEL_PREFIX}-*.whl")
    return built


def test_wheel_metadata_names_the_distribution_and_its_licences(wheel):
    """The distribution is edge-face-verify (`edge` on PyPI is another project's), with the SPDX
    licence expression and both licence files; the import package and the command are `edge`."""
    archive = zipfile.ZipFile(wheel)
    info = f"{WHEEL_PREFIX}-{wheel.name.split('-')[1]}.dist-info"
    metadata = email.parser.Parser().parsestr(archive.read(f"{info}/METADATA").decode())
    assert metadata["Name"] == DISTRIBUTION
    assert metadata["License-Expression"] == "Apache-2.0 AND MIT"
    assert sorted(metadata.get_all("License-File")) == ["LICENSE", "NOTICE"]
    for name in ("LICENSE", "NOTICE"):
        assert archive.read(f"{info}/licenses/{name}") == (REPO / name).read_bytes()
    assert "Apache License" in (REPO / "LICENSE").read_text() and "Version 2.0" in (REPO / "LICENSE").read_text()
    entry_points = archive.read(f"{info}/entry_points.txt").decode()
    assert "edge = edge.cli:main" in entry_points
    # Every model file's licence, as the manifest records it, is one NOTICE names.
    notice = (REPO / "NOTICE").read_text()
    for info_ in json.loads((REPO / "models" / "manifest.json").read_text())["models"].values():
        assert info_["file"] in notice, f"{info_['file']} is not in NOTICE"
        assert "Apache-2.0" in info_["license"] or info_["license"].startswith("MIT"), info_["license"]


def test_wheel_contents(wheel):
    manifest = json.loads((REPO / "models" / "manifest.json").read_text())
    names = set(zipfile.ZipFile(wheel).namelist())
    for info in manifest["models"].values():
        assert f"edge/models/{info['file']}" in names
    assert {
        "edge/models/manifest.json",
        "edge/models/README.md",
        "edge/__init__.py",
        "edge/runtime.py",
        "edge/cli.py",
        "edge/errors.py",
    } <= names
    # every package of the checkout ships (automatic discovery of edge*)
    for init in (REPO / "edge").rglob("__init__.py"):
        if "__pycache__" not in init.parts:
            assert init.relative_to(REPO).as_posix() in names
    # the web console's pages, script and stylesheet (docs/console.md): no build step, all in the wheel
    static = REPO / "edge" / "console" / "static"
    assert {f"edge/console/static/{p.name}" for p in static.iterdir()} <= names
    assert not [n for n in names if n.startswith(("models/", "tests/", "scripts/"))]
    assert any(n.endswith("entry_points.txt") for n in names)


@pytest.mark.slow
def test_installed_wheel_finds_its_models(wheel, tmp_path):
    venv = tmp_path / "venv"
    _sh(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    purelib = Path(_sh(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").stdout.strip())
    # The dependencies (numpy, ai-edge-litert, ...) come from this interpreter's site-packages.
    # A path in a .pth file is added without processing the .pth files inside it, so an
    # editable install of edge there stays invisible.
    (purelib / "_edge_test_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    _sh(sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index", wheel)

    code = r"""
import json, sys
import numpy as np
import edge, edge.runtime as rt
manifest = rt.load_manifest()
out = {"edge": edge.__file__, "models_dir": str(rt.models_dir()), "keys": sorted(manifest["models"])}
for key in out["keys"]:
    model = rt.open_model(key)  # verifies the sha256
    model.run(*[np.zeros(s.shape, np.float32 if s.dtype.kind == "f" or s.scale else s.dtype) for s in model.inputs])
print(json.dumps(out))
"""
    result = json.loads(_sh(python, "-c", code, cwd=tmp_path).stdout)
    assert Path(result["edge"]).is_relative_to(purelib)
    assert Path(result["models_dir"]) == purelib / "edge" / "models"
    expected = json.loads((REPO / "models" / "manifest.json").read_text())["models"]
    assert result["keys"] == sorted(expected)

    listing = _sh(venv / "bin" / "edge", "models", cwd=tmp_path).stdout
    assert all(key in listing for key in expected)
    assert str(purelib) in listing
    assert "edge " in _sh(venv / "bin" / "edge", "--version", cwd=tmp_path).stdout
