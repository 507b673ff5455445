"""1:N identification: who, of everyone enrolled, is this face?

`Gallery` holds every template of one model version as one float32 matrix, stored transposed
(d × n, C-contiguous) so a probe's n raw similarities are one BLAS matrix-vector product
(`probe @ matrix`), run on one thread (see `_one_blas_thread`). Rows of one person are
contiguous, so the best match is one `argmax` and the runner-up -- the best score of a
*different* person -- is two more over the slices either side of that person's rows.
10,000 templates of 704 values: about 1 ms per probe on the 2-core dev machine
(`scripts/bench/bench_identify.py`).

`identify(engine, vault, image)` embeds the largest face of the photo and searches the vault's
gallery for the engine's model version (templates of other versions are never used).
"""

from __future__ import annotations

import contextlib
import ctypes
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.errors import INVALID_ARGUMENT, NO_FACE_DETECTED, SUCCESS, EdgeError
from edge.matching import far_of_threshold
from edge.vault.enroll import model_version
from edge.vault.errors import RecordError
from edge.vault.store import TemplateSet, Vault, cacheable

if TYPE_CHECKING:  # the engine is passed in; the vault never loads models itself
    from edge.engine import Engine

DEFAULT_THRESHOLD = 0.7  # calibrated score: FAR 1/10,000 per comparison (docs/api.md)


@dataclass(frozen=True)
class Match:
    """The raw result of a search (raw similarities; `identify` turns them into calibrated scores)."""

    person: int  # index into Gallery.names, -1 for an empty gallery
    raw: float  # best raw similarity (dot product of unit vectors)
    runner_up: int  # best *other* person, -1 when there is none
    runner_up_raw: float


class Gallery:
    """Templates of one model version, grouped by person, searchable by one matrix-vector product."""

    def __init__(
        self,
        names: list[str],
        owners: np.ndarray,
        matrix: np.ndarray,
        model_version: str = "",
        problems: list[RecordError] | None = None,
        stale: int = 0,
        missing: int = 0,
    ) -> None:
        owners = np.asarray(owners, dtype=np.int64)
        matrix = np.asarray(matrix, dtype=np.float32)
        if matrix.ndim != 2 or owners.shape != (matrix.shape[0],):
            raise ValueError(f"matrix must be (n, d) with one owner per row; got {matrix.shape} and {owners.shape}")
        if len(owners) and (owners.min() < 0 or owners.max() >= len(names)):
            raise ValueError("every owner must index into names")
        order = np.argsort(owners, kind="stable")
        self.names = list(names)
        self.owners = owners[order]
        self.dim = int(matrix.shape[1])
        self.size = int(matrix.shape[0])
        self.columns = np.ascontiguousarray(matrix[order].T)  # (d, n): probe @ columns → (n,)
        counts = np.bincount(self.owners, minlength=len(self.names))
        self.ends = np.cumsum(counts)
        self.starts = self.ends - counts
        self.model_version = model_version
        self.problems = list(problems or [])
        self.stale = stale
        self.missing = missing

    @classmethod
    def from_templates(cls, t: TemplateSet) -> Gallery:
        return cls(t.names, t.owners, t.matrix, t.model_version, t.problems, t.stale, t.missing)

    @classmethod
    def from_vault(cls, vault: Vault, model_version: str, dim: int | None = None) -> Gallery:
        return cls.from_templates(vault.templates(model_version, dim))

    def __len__(self) -> int:
        return self.size

    def raw_scores(self, probe: np.ndarray) -> np.ndarray:
        """Raw similarity of a unit-length probe (d,) to every template (n,), in the gallery's row order."""
        probe = np.asarray(probe, dtype=np.float32)
        if probe.shape != (self.dim,):
            raise EdgeError(INVALID_ARGUMENT, f"probe must be ({self.dim},), got {probe.shape}")
        with _one_blas_thread():
            return probe @ self.columns

    def search(self, probe: np.ndarray) -> Match:
        """Best person, best raw similarity, and the runner-up: the best similarity of anyone else."""
        if self.size == 0:
            return Match(-1, float("-inf"), -1, float("-inf"))
        raw = self.raw_scores(probe)
        i = int(np.argmax(raw))
        person = int(self.owners[i])
        start, end = int(self.starts[person]), int(self.ends[person])
        runner, runner_raw = -1, float("-inf")
        for lo, hi in ((0, start), (end, self.size)):
            if hi > lo:
                j = lo + int(np.argmax(raw[lo:hi]))
                if raw[j] > runner_raw:
                    runner, runner_raw = int(self.owners[j]), float(raw[j])
        return Match(person, float(raw[i]), runner, runner_raw)

    def search_batch(self, probes: np.ndarray) -> list[Match]:
        """`search` for k probes (k, d) at once: one matrix product, per-person maxima by `reduceat`."""
        probes = np.asarray(probes, dtype=np.float32)
        if probes.ndim != 2 or probes.shape[1] != self.dim:
            raise EdgeError(INVALID_ARGUMENT, f"probes must be (k, {self.dim}), got {probes.shape}")
        k = len(probes)
        if self.size == 0 or k == 0:
            return [Match(-1, float("-inf"), -1, float("-inf"))] * k
        with _one_blas_thread():
            raw = probes @ self.columns  # (k, n)
        present = np.flatnonzero(self.ends > self.starts)  # people with at least one template
        per_person = np.maximum.reduceat(raw, self.starts[present], axis=1)  # (k, people present)
        rows = np.arange(k)
        best = np.argmax(per_person, axis=1)
        best_raw = per_person[rows, best]
        if per_person.shape[1] > 1:
            per_person[rows, best] = -np.inf
            second = np.argmax(per_person, axis=1)
            second_raw = per_person[rows, second]
            runners = present[second]
        else:
            second_raw = np.full(k, -np.inf, np.float32)
            runners = np.full(k, -1)
        return [
            Match(int(present[b]), float(r), int(q), float(s))
            for b, r, q, s in zip(best, best_raw, runners, second_raw)
        ]


def vault_gallery(engine: Engine, vault: Vault) -> Gallery:
    """The vault's gallery for this engine's model version, cached until the vault changes.

    Any committed change by any process (enrol, import, revoke, rebuild) changes
    `vault.generation()`, so a revoked person stops matching at the next search.
    """
    version = model_version(engine)
    generation = vault.generation()
    key = ("gallery", version, int(engine.dim), generation)
    gallery = vault._cache.get(key)
    if not isinstance(gallery, Gallery):
        gallery = Gallery.from_vault(vault, version, int(engine.dim))
        vault._cache.clear()
        if cacheable(generation):  # never while a writer is (or died) mid-change
            vault._cache[key] = gallery
    return gallery


def identify_embedding(
    engine: Engine, gallery: Gallery, embedding: np.ndarray, *, threshold: float = DEFAULT_THRESHOLD
) -> dict[str, Any]:
    """Search one embedding: name (only at or above `threshold`), calibrated score, margin, FAR."""
    match = gallery.search(embedding)
    if match.person < 0:
        return {"code": SUCCESS, "name": None, "score": 0.0, "margin": 0.0, "far": 1.0}
    score = float(engine.score(match.raw))
    runner = float(engine.score(match.runner_up_raw)) if match.runner_up >= 0 else 0.0
    return {
        "code": SUCCESS,
        "name": gallery.names[match.person] if score >= threshold else None,
        "score": round(score, 4),
        "margin": round(score - runner, 4),
        "far": float(f"{min(1.0, far_of_threshold(score)):.3g}"),
    }


def identify(
    engine: Engine,
    vault: Vault | Gallery,
    image: Any,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    auto_rotate: bool = False,
) -> dict[str, Any]:
    """1:N: the largest face of `image` against everyone in the vault.

    → {"code": 1000, "name": "…" or None, "score": s, "margin": m, "far": f, "request_id": "…"}

    `name` is set only when the calibrated score reaches `threshold` (default 0.7, a false-accept
    rate of 1/10,000 per comparison). `margin` is the score minus the best score of any *other*
    person (0 … 1; small means two people look alike to the model). `far` is the per-comparison
    false-accept rate the score stands for; against P enrolled people the chance that a stranger
    matches someone is about P × far. Failures: {"code", "message", "request_id"}.
    """
    request_id = uuid.uuid4().hex
    try:
        if not 0.0 <= float(threshold) <= 1.0:
            raise EdgeError(INVALID_ARGUMENT, f"threshold must be a calibrated score in 0..1, got {threshold}")
        gallery = vault if isinstance(vault, Gallery) else vault_gallery(engine, vault)
        faces = engine.faces(image, auto_rotate=auto_rotate, max_faces=1, quality=False)
        if not faces:
            raise EdgeError(NO_FACE_DETECTED, "no face detected in the image")
        result = identify_embedding(engine, gallery, faces[0].embedding, threshold=threshold)
        return {**result, "request_id": request_id}
    except EdgeError as exc:
        return {"code": exc.code, "message": exc.message, "request_id": request_id}


# --- BLAS threads ----------------------------------------------------------------------------

_SET_THREADS_LOCAL: Any = None
_SET_THREADS_LOCAL_LOOKED_UP = False


def _openblas_thread_setter() -> Any:
    """OpenBLAS's `openblas_set_num_threads_local` (0.3.27+, per calling thread), if numpy uses OpenBLAS."""
    global _SET_THREADS_LOCAL, _SET_THREADS_LOCAL_LOOKED_UP
    if _SET_THREADS_LOCAL_LOOKED_UP:
        return _SET_THREADS_LOCAL
    _SET_THREADS_LOCAL_LOOKED_UP = True
    try:
        with open("/proc/self/maps") as maps:
            paths = sorted({line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line})
    except OSError:
        return None
    for path in paths:
        try:
            fn = ctypes.CDLL(path).openblas_set_num_threads_local
        except (OSError, AttributeError):
            continue
        fn.restype, fn.argtypes = ctypes.c_int, [ctypes.c_int]
        _SET_THREADS_LOCAL = fn
        break
    return _SET_THREADS_LOCAL


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """Run the matrix-vector product on the calling thread only.

    A gallery search is memory-bound: a second BLAS thread adds no bandwidth, and on a busy
    2-core device it waits for a core, turning ~1 ms into 8-16 ms. Per-thread, so other
    threads' BLAS settings are untouched; a no-op where the BLAS is not OpenBLAS.
    """
    setter = _openblas_thread_setter()
    if setter is None:
        yield
        return
    previous = setter(1)
    try:
        yield
    finally:
        setter(previous)


__all__ = ["DEFAULT_THRESHOLD", "Gallery", "Match", "identify", "identify_embedding", "model_version", "vault_gallery"]
