"""scripts/deploy/install.sh (the device installer) and scripts/deploy/check_arm64.sh: syntax, shellcheck, and
a real, offline, unprivileged install into a temporary directory (--no-apt --no-user, EDGE_*
overrides): venv, package, configuration, device key, unit file, re-run, uninstall, purge.

Offline: pip gets `--no-index --no-build-isolation`, so the package is built from the tree with
the setuptools/wheel this interpreter already has, and its dependencies (numpy, ai-edge-litert,
...) are this interpreter's, put on PYTHONPATH (a copy of its site-packages without edge itself).
The install from the registries is what scripts/deploy/check_arm64.sh proves, on arm64.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import stat
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from checkout import REPO, git_files

INSTALL = REPO / "scripts" / "deploy" / "install.sh"
SCRIPTS = [INSTALL, REPO / "scripts" / "deploy" / "check_arm64.sh"]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_syntax(script):
    proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shellcheck(script):
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (Debian: apt-get install shellcheck)")
    proc = subprocess.run(["shellcheck", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# The programs the unit runs besides edge itself, and the Debian package that ships each one.
UNIT_PROGRAMS = {"/bin/kill": "procps"}


def test_installer_brings_what_the_unit_runs():
    """`systemd-analyze verify` on a minimal Debian arm64 root found no /bin/kill (ExecReload=):
    every program the unit names comes from the venv or from a package install.sh installs."""
    unit = (REPO / "systemd" / "edge.service").read_text()
    programs = {
        line.split("=", 1)[1].split()[0].lstrip("-@:+!")
        for line in unit.splitlines()
        if line.startswith(("ExecStart", "ExecReload", "ExecStop"))
    }
    outside_venv = {p for p in programs if not p.startswith("/opt/edge/venv/")}
    assert outside_venv == set(UNIT_PROGRAMS), f"the unit runs {sorted(outside_venv)}: name their packages here"
    script = INSTALL.read_text()
    package_loop = next(line for line in script.splitlines() if line.strip().startswith("for pkg in python3-venv"))
    for program, package in UNIT_PROGRAMS.items():
        assert f" {package}" in package_loop, f"install.sh does not install {package} ({program})"


def _env(**extra: str) -> dict[str, str]:
    drop = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "EDGE_MODELS_DIR", "EDGE_OPT", "EDGE_ETC", "EDGE_STATE")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("PIP_")}
    env.update(extra)
    return env


def test_help_and_bad_arguments():
    proc = subprocess.run(["bash", str(INSTALL), "--help"], capture_output=True, text=True, env=_env())
    assert proc.returncode == 0 and "--uninstall" in proc.stdout and "EDGE_STATE" in proc.stdout
    proc = subprocess.run(["bash", str(INSTALL), "--bogus"], capture_output=True, text=True, env=_env())
    assert proc.returncode != 0 and "unknown option: --bogus" in proc.stderr
    proc = subprocess.run(["bash", str(INSTALL), "--purge"], capture_output=True, text=True, env=_env())
    assert proc.returncode != 0 and "--purge only goes with --uninstall" in proc.stderr


@pytest.mark.parametrize("value", ["/", "relative/dir", "/var/lib", "/opt/../etc"])
def test_refuses_dangerous_directories(value, tmp_path):
    env = _env(
        EDGE_OPT=str(tmp_path / "opt"), EDGE_ETC=str(tmp_path / "etc"), EDGE_UNIT_DIR=str(tmp_path), EDGE_STATE=value
    )
    proc = subprocess.run(
        ["bash", str(INSTALL), "--uninstall", "--purge", "--no-user"], capture_output=True, text=True, env=env
    )
    assert proc.returncode != 0 and "EDGE_STATE" in proc.stderr, proc.stdout + proc.stderr


def _tree_files() -> list[str]:
    """The checkout's files as git sees them (tracked + untracked, minus .gitignore); without git
    (a copied tree, as in scripts/deploy/check_arm64.sh), what an install needs, minus caches."""
    files = git_files()
    if files is not None:
        return files
    names = ["pyproject.toml", "setup.py", "README.md", "LICENSE", "NOTICE"]
    for top in ("edge", "models", "scripts", "firmware_config", "systemd"):
        names += [
            p.relative_to(REPO).as_posix()
            for p in (REPO / top).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
        ]
    return names


def _source_copy(dest: Path) -> Path:
    for name in _tree_files():
        if name and (REPO / name).is_file() and not name.startswith((".ci/", "tests/")):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    return dest


def _dependencies(dest: Path) -> Path:
    """This interpreter's site-packages minus edge (and pip: the new venv brings its own)."""
    purelib = Path(sysconfig.get_path("purelib"))
    dest.mkdir()
    for entry in purelib.iterdir():
        name = entry.name.lower()
        if name in ("edge", "pip") or name.startswith(
            ("edge-", "edge_face_verify-", "pip-", "__editable__", "__pycache__")
        ):
            continue
        (dest / entry.name).symlink_to(entry)
    return dest


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.slow
def test_install_upgrade_uninstall_purge(tmp_path):
    for module in ("setuptools", "wheel", "ensurepip"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"an offline install needs {module} in {sys.prefix} (setuptools, wheel: the test extra)")
    from importlib.metadata import version

    if int(version("setuptools").split(".")[0]) < 77:  # pyproject's SPDX license expression (PEP 639)
        pytest.fail(f"setuptools {version('setuptools')} in {sys.prefix} is older than 77; run bash scripts/setup.sh")
    src = _source_copy(tmp_path / "src")
    deps = _dependencies(tmp_path / "deps")
    opt, etc, state, units = (tmp_path / d for d in ("opt", "etc", "state", "units"))
    env = _env(
        EDGE_OPT=str(opt),
        EDGE_ETC=str(etc),
        EDGE_STATE=str(state),
        EDGE_UNIT_DIR=str(units),
        PYTHON=sys.executable,
        PYTHONPATH=str(deps),
        EDGE_PIP_ARGS="--no-index --no-build-isolation",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )

    def install(*args: str) -> str:
        proc = subprocess.run(
            ["bash", str(src / "scripts" / "deploy" / "install.sh"), "--no-apt", "--no-user", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            timeout=900,
        )
        assert proc.returncode == 0, f"install.sh {args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        return proc.stdout

    def run(*cmd, **kw) -> str:
        proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, cwd=tmp_path, **kw)
        assert proc.returncode == 0, f"{cmd}: {proc.stdout}\n{proc.stderr}"
        return proc.stdout

    # --- first install
    out = install()
    venv = opt / "venv"
    assert "creating" in out and "include-system-site-packages = true" in (venv / "pyvenv.cfg").read_text()
    edge_file = run(venv / "bin" / "python", "-c", "import edge; print(edge.__file__)").strip()
    assert Path(edge_file).is_relative_to(venv), f"edge imported from {edge_file}, not the venv"
    listing = run(venv / "bin" / "edge", "models")
    assert "mobilefacenet" in listing
    config = etc / "edge.toml"
    assert config.read_bytes() == (REPO / "firmware_config" / "edge.toml").read_bytes()
    assert _mode(config) == 0o640 and _mode(etc) == 0o750
    assert (etc / "edge.toml.default").read_bytes() == config.read_bytes()
    for d in (state, state / "vault", state / "outbox"):
        assert _mode(d) == 0o700, d
    key = state / "vault" / "device.key"
    assert _mode(key) == 0o600
    assert (units / "edge.service").read_bytes() == (src / "systemd" / "edge.service").read_bytes()
    assert "systemctl daemon-reload && systemctl enable --now edge.service" in out  # no systemctl for a test dir

    # --- a device installed before the rename (distribution `edge`): the old name goes, the new
    # one takes its place, and the package and the command still work
    old_tree = tmp_path / "old-name"
    shutil.copytree(src, old_tree)
    pyproject = old_tree / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('name = "edge-face-verify"', 'name = "edge"', 1))
    wheels = tmp_path / "old-wheel"
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", wheels,
        old_tree, timeout=600)  # fmt: skip
    (old_wheel,) = wheels.glob("edge-*.whl")
    pip = [venv / "bin" / "python", "-m", "pip"]
    run(*pip, "uninstall", "-q", "-y", "edge-face-verify")
    run(*pip, "install", "-q", "--no-deps", "--no-index", old_wheel)
    assert "Name: edge\n" in run(*pip, "show", "edge")
    out = install()
    assert "removing the previous install's distribution name, edge" in out
    shown = subprocess.run([*pip, "show", "edge"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert shown.returncode != 0, "the old distribution is gone"
    assert "Name: edge-face-verify" in run(*pip, "show", "edge-face-verify")
    assert "mobilefacenet" in run(venv / "bin" / "edge", "models")

    # --- second run: a site's config, the key and the venv stay; the package is reinstalled
    config.write_text(config.read_text() + "\n# site change\n")
    key_before = key.read_bytes()
    cfg_before = (venv / "pyvenv.cfg").stat().st_mtime_ns
    (venv / "marker").write_text("kept")
    init = src / "edge" / "__init__.py"
    init.write_text(init.read_text() + "\nINSTALL_TEST_MARKER = 1\n")
    (state / "vault" / "index.rec").unlink()  # a vault from before the index: the upgrade indexes it
    out = install()
    assert "reusing" in out and "keeping the existing" in out
    assert "indexing the existing vault" in out and (state / "vault" / "index.rec").is_file()
    assert config.read_text().endswith("# site change\n")
    assert key.read_bytes() == key_before
    assert (venv / "marker").exists() and (venv / "pyvenv.cfg").stat().st_mtime_ns == cfg_before
    assert run(venv / "bin" / "python", "-c", "import edge; print(edge.INSTALL_TEST_MARKER)").strip() == "1"

    # --- uninstall keeps the state, purge removes it
    out = install("--uninstall")
    assert not opt.exists() and not etc.exists() and not (units / "edge.service").exists()
    assert key.read_bytes() == key_before and "kept" in out
    install("--uninstall", "--purge")
    assert not state.exists()
