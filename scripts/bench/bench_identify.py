#!/usr/bin/env python3
"""1:N identification over 10,000 enrolled templates, against a plain Python loop.

    python scripts/bench/bench_identify.py [--templates 10000] [--probes 300] [--profile accurate]

What is timed is the search after the probe's embedding: one probe (d,) against every
template of the gallery -> best person, raw score, runner-up person (`Gallery.search`), and
the same plus calibration and the result dict (`Engine.identify` of an embedding). The gallery holds
`--templates` synthetic unit vectors (two per synthetic person) plus real templates made by
the engine from real photos (skimage's astronaut; five lfw-dev people when ../shared/data is
there), so the real probes check the answers too: a different photo of each real person must
come back with their name, a stranger with none.

Baselines, run here in the same process on the same gallery: the obvious per-template Python
loop (one dot product at a time, best per person in a dict), and a naive vectorised search
(`matrix @ probe` on the row-major (n, d) matrix with the BLAS's default threads).

Also measured: loading a gallery from an encrypted vault (decrypting and authenticating every
record), on `--vault-people` synthetic people enrolled into a temporary vault.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]  # scripts/<purpose>/<name>.py → the checkout
sys.path.insert(0, str(ROOT))

from edge.engine import Engine  # noqa: E402
from edge.errors import EdgeError  # noqa: E402
from edge.matching import Gallery  # noqa: E402
from edge.vault import Vault, check_photo, gallery_of, model_version  # noqa: E402

TARGET_MS = 2.0
LFW = ROOT.parent / "shared" / "data" / "lfw-dev"


def _png(rgb: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return buf.tobytes()


def real_people(engine: Engine, people: int = 5) -> tuple[dict[str, list[np.ndarray]], dict[str, np.ndarray], list]:
    """Enrolment templates (two photos each) and a probe (a third photo) per real person, and stranger probes."""
    from skimage import data

    rgb = np.ascontiguousarray(data.astronaut()[..., :3])
    h, w = rgb.shape[:2]
    import cv2

    shifted = cv2.warpAffine(rgb, np.float32([[0.85, 0, 30], [0, 0.85, 20]]), (w, h), borderMode=cv2.BORDER_REFLECT)
    enrol = {"Eileen Collins": [check_photo(engine, _png(rgb), "astronaut").embedding]}
    probes = {"Eileen Collins": engine.faces(shifted, max_faces=1)[0].embedding}
    strangers = []
    if not (LFW / "labels.csv").exists():
        return enrol, probes, strangers
    by_person: dict[str, list[Path]] = {}
    with open(LFW / "labels.csv") as fh:
        for row in csv.DictReader(fh):
            by_person.setdefault(row["identity"], []).append(LFW / row["image"])
    for person in sorted(p for p, paths in by_person.items() if len(paths) >= 4):
        usable = []
        for path in sorted(by_person[person]):
            try:
                usable.append(check_photo(engine, path.read_bytes(), str(path)).embedding)
            except EdgeError:
                continue
            if len(usable) == 3:
                break
        if len(usable) == 3:
            enrol[person] = usable[:2]
            probes[person] = usable[2]
        if len(enrol) > people:
            break
    for person in sorted(p for p, paths in by_person.items() if len(paths) == 1)[:20]:
        faces = engine.faces(str(by_person[person][0]), max_faces=1)
        if faces:
            strangers.append((person, faces[0].embedding))
    return enrol, probes, strangers


def python_loop(templates: np.ndarray, owners: np.ndarray, probe: np.ndarray) -> tuple[int, float, int, float]:
    best: dict[int, float] = {}
    for row, owner in zip(templates, owners.tolist()):
        score = float(np.dot(row, probe))
        if score > best.get(owner, -2.0):
            best[owner] = score
    ranked = sorted(best.items(), key=lambda kv: -kv[1])
    return ranked[0][0], ranked[0][1], ranked[1][0], ranked[1][1]


def vault_load(engine: Engine, people: int) -> tuple[float, int]:
    """Seconds to load a gallery from a vault of `people` synthetic people (one template each)."""
    rng = np.random.default_rng(1)
    photo = _png(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    version = model_version(engine)
    with tempfile.TemporaryDirectory() as tmp:
        vault = Vault.init(Path(tmp) / "vault")
        for i in range(people):
            t = rng.standard_normal((1, engine.dim)).astype(np.float32)
            vault.add_entry(f"Synthetic {i}", [photo], t / np.linalg.norm(t), version)
        start = time.perf_counter()
        gallery = gallery_of(Vault.open(vault.directory).templates(version, engine.dim))
        return time.perf_counter() - start, len(gallery)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--templates", type=int, default=10_000, help="synthetic templates (two per synthetic person)")
    ap.add_argument("--probes", type=int, default=300, help="probes timed (real ones first, then synthetic)")
    ap.add_argument("--profile", default="accurate")
    ap.add_argument("--vault-people", type=int, default=300, help="people enrolled for the vault-load timing (0: skip)")
    args = ap.parse_args()

    engine = Engine(profile=args.profile)
    enrol, probes, strangers = real_people(engine)
    rng = np.random.default_rng(0)
    synthetic = rng.standard_normal((args.templates, engine.dim)).astype(np.float32)
    synthetic /= np.linalg.norm(synthetic, axis=1, keepdims=True)
    names = [f"synthetic {i}" for i in range((args.templates + 1) // 2)] + list(enrol)
    owners = np.arange(args.templates) // 2
    real_rows = [t for ts in enrol.values() for t in ts]
    real_owners = [len(names) - len(enrol) + i for i, ts in enumerate(enrol.values()) for _ in ts]
    matrix = np.vstack([synthetic, np.stack(real_rows)])
    owners = np.r_[owners, real_owners]
    gallery = Gallery.from_embeddings([names[o] for o in owners], matrix, model_version=model_version(engine))

    # Answers: every real probe → its name; strangers → no name; the search agrees with the loop.
    wrong = []
    for person, probe in probes.items():
        result = engine.identify(probe, gallery)
        if result["name"] != person:
            wrong.append((person, result))
    accepted = [(p, engine.identify(e, gallery)) for p, e in strangers]
    accepted = [(p, r) for p, r in accepted if r["name"] is not None]
    order = np.argsort(owners, kind="stable")  # the gallery's row order, for the loop
    synthetic_probes = rng.standard_normal((max(0, args.probes - len(probes)), engine.dim)).astype(np.float32)
    synthetic_probes /= np.linalg.norm(synthetic_probes, axis=1, keepdims=True)
    all_probes = np.vstack([np.stack(list(probes.values())), synthetic_probes])[: args.probes]
    for probe in all_probes[:5]:
        hits = gallery.search(probe)
        person, raw, runner, runner_raw = python_loop(matrix[order], owners[order], probe)
        found = (gallery.people[hits.person[0]], gallery.people[hits.runner_up[0]])
        assert found == (names[person], names[runner]) and abs(hits.raw[0] - raw) < 1e-4, "search ≠ loop"

    for probe in all_probes[:20]:  # warm up
        gallery.search(probe)
    search_ms, identify_ms = [], []
    for probe in all_probes:
        start = time.perf_counter()
        gallery.search(probe)
        search_ms.append((time.perf_counter() - start) * 1e3)
        start = time.perf_counter()
        engine.identify(probe, gallery)
        identify_ms.append((time.perf_counter() - start) * 1e3)
    naive_ms = []
    for probe in all_probes[:50]:
        start = time.perf_counter()
        raw = matrix @ probe
        int(np.argmax(raw))
        naive_ms.append((time.perf_counter() - start) * 1e3)
    loop_ms = []
    for probe in all_probes[:5]:
        start = time.perf_counter()
        python_loop(matrix, owners, probe)
        loop_ms.append((time.perf_counter() - start) * 1e3)

    med, p99 = float(np.median(search_ms)), float(np.percentile(search_ms, 99))
    imed, ip99 = float(np.median(identify_ms)), float(np.percentile(identify_ms, 99))
    loop = float(np.median(loop_ms))
    print(
        f"1:N search, {len(gallery):,} templates of {engine.dim} floats ({args.templates:,} synthetic + "
        f"{len(real_rows)} real), {len(names):,} people, {args.profile} profile"
    )
    print(f"  Gallery.search:       median {med:.3f} ms, p99 {p99:.3f} ms per probe ({len(search_ms)} probes)")
    print(f"  Engine.identify:      median {imed:.3f} ms, p99 {ip99:.3f} ms (search + calibration + result)")
    print(f"  baseline, Python loop over templates: median {loop:.1f} ms per probe ({len(loop_ms)} probes)")
    print(f"  naive numpy (row-major matrix @ probe, default BLAS threads): median {np.median(naive_ms):.3f} ms")
    print(f"  ratio (loop / search): {loop / med:.0f}x")
    print(
        f"  answers: {len(probes) - len(wrong)}/{len(probes)} real probes named correctly; "
        f"{len(accepted)}/{len(strangers)} strangers given a name"
    )
    for person, result in wrong + accepted:
        print(f"    wrong: {person}: {result}")
    if args.vault_people:
        seconds, n = vault_load(engine, args.vault_people)
        print(
            f"  vault load: {n} templates decrypted and authenticated in {seconds * 1e3:.0f} ms "
            f"({seconds / max(n, 1) * 1e3:.2f} ms per enrolment)"
        )
    ok = med < TARGET_MS and not wrong and not accepted
    print(f"  target: median < {TARGET_MS} ms per probe: {'met' if med < TARGET_MS else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
