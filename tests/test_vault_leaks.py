"""No photo or template in clear ever reaches the vault, temporary files or logs.

A full cycle through the CLI (keys, enrol, remote bundle, import, people, identify, check,
rebuild, revoke), each step a separate process whose TMPDIR is a folder we watch. After every
step the vault, that TMPDIR, the bundle and everything printed are scanned for: the enrolled
photos' bytes, image file signatures, their base64, and each template and probe embedding as
float32, float16 and float64 bytes, or as a printed run of numbers.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from vault_helpers import encode, other_view

from edge.engine import Engine
from edge.vault import Vault, check_photo, model_version

SIGNATURES = {
    "PNG signature": b"\x89PNG\r\n\x1a\n",
    "PNG IHDR chunk": b"\x00\x00\x00\rIHDR",
    "JPEG/JFIF header": b"\xff\xd8\xff\xe0\x00\x10JFIF",
    "JPEG/Exif header": b"Exif\x00\x00MM",
    "JPEG/Exif header (LE)": b"Exif\x00\x00II",
}
_NUMBER_RUN = re.compile(r"(?:-?\d\.\d{3,}(?:e-?\d+)?[,\s\]]+){8,}")  # eight or more printed floats in a row


def _needles(name: str, data: bytes) -> dict[str, bytes]:
    """Byte strings that only a clear copy of `data` would contain (16-byte windows)."""
    step = max(16, len(data) // 12)
    return {f"{name} bytes @{o}": data[o : o + 16] for o in range(0, len(data) - 16, step)}


def _vector_needles(name: str, vector: np.ndarray) -> dict[str, bytes]:
    out = {}
    for dtype, width in (("<f4", 16), ("<f2", 8), ("<f8", 16)):
        raw = vector.astype(dtype).tobytes()
        for o in range(0, len(raw) - width, max(width, len(raw) // 8)):
            out[f"{name} as {dtype} @{o}"] = raw[o : o + width]
    return out


def _scan(roots: list[Path], needles: dict[str, bytes]) -> list[str]:
    found = []
    for root in roots:
        files = [root] if root.is_file() else [Path(r, f) for r, _, fs in os.walk(root) for f in fs]
        for path in files:
            data = path.read_bytes()
            found += [f"{label} in {path}" for label, needle in needles.items() if needle in data]
    return found


@pytest.mark.slow
def test_no_photo_or_template_in_clear_after_a_full_cycle(tmp_path, astronaut_rgb):
    inputs = tmp_path / "inputs"  # the caller's clear photos: not scanned
    inputs.mkdir()
    enrol_a, enrol_b = inputs / "eileen.png", inputs / "eileen.jpg"
    probe = inputs / "probe.jpg"
    enrol_a.write_bytes(encode(astronaut_rgb))
    enrol_b.write_bytes(encode(astronaut_rgb[16:-16, 16:-16].copy(), ".jpg", 95))
    probe.write_bytes(encode(other_view(astronaut_rgb), ".jpg"))
    vault_dir, scratch, out = tmp_path / "vault", tmp_path / "tmpdir", tmp_path / "out"
    scratch.mkdir()
    out.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch), "TEMP": str(scratch), "TMP": str(scratch)}

    engine = Engine()
    templates = {p.name: check_photo(engine, p.read_bytes(), p.name).embedding for p in (enrol_a, enrol_b)}
    probe_embedding = engine.faces(str(probe), max_faces=1)[0].embedding
    fast_templates = {p.name: check_photo(Engine(profile="fast"), p.read_bytes(), p.name).embedding for p in (enrol_a,)}

    needles: dict[str, bytes] = dict(SIGNATURES)
    for path in (enrol_a, enrol_b, probe):
        data = path.read_bytes()
        needles |= _needles(path.name, data)
        needles[f"{path.name} as base64"] = base64.b64encode(data[:48])
    for name, vector in {**templates, "probe": probe_embedding, **fast_templates}.items():
        needles |= _vector_needles(name, vector)
    # The scanner itself works: it finds what it is looking for.
    (out / "control").write_bytes(b"xx" + templates["eileen.png"].astype("<f2").tobytes() + enrol_a.read_bytes())
    assert len(_scan([out / "control"], needles)) > 10
    (out / "control").unlink()

    logs: list[str] = []

    def edge(*args: str) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "edge.cli", *args], capture_output=True, text=True, env=env, cwd=tmp_path
        )
        logs.append(result.stdout + result.stderr)
        assert result.returncode == 0, result.stdout + result.stderr
        leaks = _scan([vault_dir, scratch, out], needles)
        assert leaks == [], f"after `edge {' '.join(args)}`: {leaks}"

    v = str(vault_dir)
    edge("keys", "init", "--vault", v)
    edge("enroll", "--vault", v, "Eileen Collins", str(enrol_a), str(enrol_b))
    pub = (vault_dir / "device.pub").read_text().strip()
    edge("enroll", "--seal-for", pub, "-o", str(out / "remote.bundle"), "Remote Person", str(enrol_a))
    edge("enroll", "--vault", v, "--import", str(out / "remote.bundle"), "--allow-duplicate")  # the same face
    edge("people", "--vault", v)
    edge("identify", "--vault", v, str(probe))
    edge("seal", str(probe), "--for", pub, "-o", str(out / "probe.sealed"))
    edge("identify", "--vault", v, "--encrypted", str(out / "probe.sealed"))
    edge("compare", "--encrypted", "--vault", v, str(out / "probe.sealed"), str(out / "probe.sealed"))
    edge("vault", "check", "--vault", v)
    edge("vault", "rebuild", "--vault", v, "--profile", "fast")
    edge("vault", "rebuild", "--vault", v)
    # the stored templates really are the ones searched for above (so not finding them means something)
    vault = Vault.open(vault_dir)
    entry = vault.find("Eileen Collins")[0]
    stored = vault.read_template(entry, 0, model_version(engine), engine.dim)
    np.testing.assert_array_equal(stored, templates["eileen.png"])  # bit for bit
    edge("revoke", "--vault", v, "Eileen Collins")
    edge("revoke", "--vault", v, "Remote Person")
    edge("people", "--vault", v)

    text = "\n".join(logs)
    assert not _NUMBER_RUN.search(text), _NUMBER_RUN.search(text)
    for path in (enrol_a, enrol_b, probe):
        assert base64.b64encode(path.read_bytes()[:48]).decode() not in text
    # every record is gone; the index remains, listing no one
    assert [p.name for p in vault_dir.rglob("*") if p.is_file() and p.suffix == ".rec"] == ["index.rec"]
    assert Vault.open(vault_dir).entries() == ([], [])
    assert os.listdir(vault_dir / "staging") == [] and os.listdir(vault_dir / "people") == []
