"""The matcher: raw similarity → calibrated score, and 1:N search of a `Gallery`.

Calibration: a threshold on the score means a false-accept rate.

The score is defined by the impostor distribution measured on lfw-dev
(`scripts/build/calibrate.py`): a score of t is the raw similarity above which a
fraction 10^(3 − 10·t) of impostor pairs falls. So 0.4 ↔ FAR 1/10, 0.5 ↔ 1/100,
0.6 ↔ 1/1,000, 0.7 ↔ 1/10,000 (recommended), 0.8 ↔ 1/100,000, 0.9 ↔ 1/1,000,000.

Between knots the map is linear in raw similarity; it is monotone, clipped to
[0, 1]. The calibration file records which embedding it was measured for; an
engine refuses a calibration made for other models or another embedding recipe,
because its scores would no longer mean what the table says.

Search: `Gallery` holds every template as one float32 matrix grouped by person; a batch of
probes is one BLAS product, the per-person best by `np.maximum.reduceat`, and `match`
turns the raw best and runner-up into calibrated `Match`es. Every 1:N answer of the device
(`Engine.identify`, the camera loop, the CLI) goes through it; the vault only stores the
templates and hands them to `Gallery`.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

CALIBRATION_FILE = "calibration.json"

# The recommended threshold on a calibrated score: FAR 1/10,000 per comparison (docs/api.md).
DEFAULT_THRESHOLD = 0.7


def far_of_threshold(t: float) -> float:
    """The false-accept rate a calibrated threshold stands for: 10^(3 − 10t)."""
    return 10.0 ** (3.0 - 10.0 * t)


def threshold_of_far(far: float) -> float:
    return (3.0 - math.log10(far)) / 10.0


def far_of_score(score: float) -> float:
    """The false-accept rate a calibrated score stands for (at most 1)."""
    return min(1.0, far_of_threshold(float(score)))


def degradation_features(a: np.ndarray, b: np.ndarray, terms: dict) -> dict[str, np.ndarray]:
    """The terms of `Calibration.penalty` at coefficient 1 for `edge.vision.quality.degradation`
    vectors `a`, `b` (..., 4), broadcast against each other; `terms` gives the floors. Every
    term is 0 when either face is undegraded."""
    blur_a, blur_b = np.linalg.norm(a[..., :2], axis=-1), np.linalg.norm(b[..., :2], axis=-1)
    excess = np.maximum(0.0, np.minimum(blur_a, blur_b) - float(terms["blur_floor"]))
    cosine = np.sum(a[..., :2] * b[..., :2], axis=-1) / np.maximum(blur_a * blur_b, 1e-12)
    return {
        "blurred": (excess > 0).astype(np.float64),
        "blur": excess,
        "direction": excess * np.maximum(0.0, cosine),
        "dark": np.minimum(a[..., 2], b[..., 2]),
        "backlit": (np.minimum(a[..., 3], b[..., 3]) > float(terms["backlight_floor"])).astype(np.float64),
    }


@dataclass(frozen=True)
class Calibration:
    raw: np.ndarray  # increasing raw similarities (knots)
    score: np.ndarray  # calibrated scores at those knots, non-decreasing, in [0, 1]
    signature: dict  # what embedding this calibration belongs to
    info: dict  # how it was made (data, counts, tail fit)

    def __post_init__(self) -> None:
        if len(self.raw) < 2 or len(self.raw) != len(self.score):
            raise ValueError("calibration needs at least two (raw, score) knots of equal count")
        if np.any(np.diff(self.raw) <= 0) or np.any(np.diff(self.score) < 0):
            raise ValueError("calibration knots must be increasing")

    def __call__(self, raw: np.ndarray | float) -> np.ndarray | float:
        out = np.interp(raw, self.raw, self.score)
        return float(out) if np.ndim(out) == 0 else out.astype(np.float32)

    def raw_threshold(self, score: float) -> float:
        """The raw similarity a calibrated threshold corresponds to."""
        return float(np.interp(score, self.score, self.raw))

    def log10_far(self, raw: np.ndarray | float) -> np.ndarray:
        """log10 of the per-comparison false-accept rate at `raw`, *not* clipped at score 1.

        Up to score 1 (FAR 1e-7) it is 3 − 10·score; beyond, the fitted exponential tail
        (`info["tail"]["log10_far_per_unit_raw"]`) is continued, so that a gallery-aware score
        can still tell a 1e-9 match from a 1e-7 one. Below score 0.3 it is 0 (FAR 1).
        """
        raw = np.asarray(raw, dtype=np.float64)
        log10 = np.minimum(0.0, 3.0 - 10.0 * np.interp(raw, self.raw, self.score))
        slope = float(self.info.get("tail", {}).get("log10_far_per_unit_raw", 0.0))
        if slope < 0:
            top = self.raw[int(np.argmax(self.score >= 1.0))] if self.score[-1] >= 1.0 else self.raw[-1]
            log10 = np.where(
                raw > top, 3.0 - 10.0 * float(np.interp(top, self.raw, self.score)) + slope * (raw - top), log10
            )
        return log10

    def penalty(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Score penalty for pairs of faces whose `edge.vision.quality.degradation` vectors are `a`
        (N, 4) and `b` (M, 4) → (N, M), 0 without fitted terms (`info["degradation"]`).

        Two photos degraded alike look alike: impostor pairs of two blurred, or two dark, photos
        exceed a threshold more often than the table says. The penalty needs *both* faces degraded
        (it grows with the lesser degradation), so a clean enrolled photo against a poor camera
        photo costs nothing. Terms (score units; 0.1 = one decade of FAR), fitted by
        scripts/build/fit_degradation.py on degraded calibration photos: `blurred` when both
        blur lengths exceed `blur_floor`, plus `blur` × how far the lesser one does and
        `direction` × the same × the cosine between the two blur directions when positive
        (blurred the same way); `dark` × the lesser darkness; `backlit` when both faces'
        backlight exceeds `backlight_floor`. (Measured: the false accepts of two blurred or
        two backlit photos jump once both are degraded and grow slowly after; steps fit
        them at less cost to genuine pairs than slopes.)
        """
        terms = self.info.get("degradation")
        a, b = np.atleast_2d(np.asarray(a, np.float64)), np.atleast_2d(np.asarray(b, np.float64))
        if not terms:
            return np.zeros((len(a), len(b)))
        features = degradation_features(a[:, None, :], b[None, :, :], terms)
        return sum(float(terms.get(name, 0.0)) * value for name, value in features.items())

    def may_penalise(self, vectors: np.ndarray) -> np.ndarray:
        """Which of these degradation vectors (N, 4) can take part in a penalty at all: blurred
        beyond the floor, dark, or backlit beyond the floor. A pair with one face that cannot has
        penalty 0, so the other face need not be measured."""
        terms = self.info.get("degradation")
        v = np.atleast_2d(np.asarray(vectors, np.float64))
        if not terms:
            return np.zeros(len(v), bool)
        return np.any([value > 0 for value in degradation_features(v, v, terms).values()], axis=0)

    @classmethod
    def from_dict(cls, data: dict) -> Calibration:
        return cls(
            raw=np.asarray(data["knots"]["raw"], dtype=np.float64),
            score=np.asarray(data["knots"]["score"], dtype=np.float64),
            signature=data["signature"],
            info=data.get("info", {}),
        )

    def to_dict(self) -> dict:
        return {
            "signature": self.signature,
            "knots": {"raw": [round(float(v), 6) for v in self.raw], "score": [round(float(v), 6) for v in self.score]},
            "info": self.info,
        }


def load_calibrations(path: str | Path) -> list[Calibration]:
    """models/calibration.json holds one calibration per engine profile."""
    data = json.loads(Path(path).read_text())
    return [Calibration.from_dict(entry) for entry in data["calibrations"]]


def save_calibrations(path: str | Path, calibrations: list[Calibration], **meta) -> None:
    data = {**meta, "calibrations": [c.to_dict() for c in calibrations]}
    Path(path).write_text(json.dumps(data, indent=1) + "\n")


def fit_calibration(
    impostor: np.ndarray,
    signature: dict,
    *,
    empirical_min_far: float = 1e-5,
    tail_fit_far: tuple[tuple[float, float], ...] = ((2e-6, 1e-4), (2e-6, 1e-5)),
) -> Calibration:
    """Fit the raw → score map from impostor similarities.

    Down to `empirical_min_far` (score 0.8) the map is the measured impostor
    survival function. Beyond it impostors are too few to measure, so the thin
    tail is extrapolated: log10 FAR is fitted as a straight line in raw
    similarity (an exponential tail) over each FAR range of `tail_fit_far`, the
    rarest impostors still counted, and the flattest of those lines is continued
    from the 0.8 knot up to score 1.0 (FAR 1e-7). Where the tail flattens at its
    far end (SFace: −20 log10 FAR per unit raw over two decades, −15 over the last
    one), the flatter line keeps the extrapolation from promising more than the
    data shows; 1:N at N = 1,000 lives entirely in this extrapolation.
    """
    imp = np.sort(np.asarray(impostor, dtype=np.float64))
    n = len(imp)
    if n < 100_000:
        raise ValueError(f"{n} impostor pairs are too few to calibrate down to FAR {empirical_min_far:g}")

    # raw at FAR f: the similarity with a fraction f of impostors above it.
    def raw_at(far: float) -> float:
        return float(imp[min(n - 1, int(math.ceil(n * (1.0 - far))))])

    top = threshold_of_far(empirical_min_far)
    scores = np.round(np.arange(0.30, top + 1e-9, 0.01), 4)
    raws = [raw_at(far_of_threshold(s)) for s in scores]
    far = (n - np.arange(n)) / n  # fraction at or above imp[i]
    slopes = []
    for lo, hi in tail_fit_far:
        sel = (far >= lo) & (far <= hi)
        slopes.append(float(np.polyfit(imp[sel], np.log10(far[sel]), 1)[0]))
    slope = max(slopes)  # the flattest fall: the most impostors predicted above any score
    if slope >= 0:
        raise ValueError("impostor tail does not fall with similarity; cannot extrapolate")
    tail_scores = np.round(np.arange(top + 0.01, 1.0 + 1e-9, 0.01), 4)
    # The line through the last measured knot with the fitted slope.
    tail_raws = [
        raws[-1] + (math.log10(far_of_threshold(s)) - math.log10(empirical_min_far)) / slope for s in tail_scores
    ]
    raw = np.array([-1.0, *raws, *tail_raws], dtype=np.float64)
    score = np.array([0.0, *scores, *tail_scores], dtype=np.float64)
    # Enforce strictly increasing raw knots (quantiles can tie on coarse data).
    keep = np.concatenate([[True], np.diff(raw) > 1e-9])
    raw, score = raw[keep], score[keep]
    if raw[-1] < 1.0:
        raw, score = np.append(raw, 1.0), np.append(score, 1.0)
    info = {
        "impostor_pairs": n,
        "measured_down_to_far": empirical_min_far,
        "tail": {
            "fit_far_ranges": [list(r) for r in tail_fit_far],
            "slopes": slopes,
            "log10_far_per_unit_raw": slope,
        },
        "note": "scores up to 0.8 follow the measured impostor distribution; above 0.8 they follow the "
        "fitted exponential tail, so 0.9 is an extrapolation",
    }
    return Calibration(raw=raw, score=score, signature=signature, info=info)


# --- 1:N search ------------------------------------------------------------------------------


def identification_score(calibration: Calibration, raw: np.ndarray, comparisons: float) -> np.ndarray:
    """Gallery-aware score: threshold t ↔ false-positive identification rate 10^(3 − 10t) per search.

    A stranger is falsely identified when *any* of the gallery's templates scores above the
    threshold. With per-comparison FAR f(raw) and `comparisons` templates treated as
    independent tries, FPIR = 1 − (1 − f)^comparisons (≈ comparisons × f), and the score is
    (3 − log10 FPIR) / 10, clipped to [0, 1]. Counting every template as a try is the union
    bound: several templates of one person are correlated, so the true FPIR is at most this
    (docs/accuracy.md measures how close). With one comparison it is the 1:1 score (above 0.3).
    """
    log10_far = calibration.log10_far(raw)
    far = np.power(10.0, log10_far)
    n = max(1.0, float(comparisons))
    fpir = -np.expm1(n * np.log1p(-np.minimum(far, 1.0 - 1e-12)))
    # Where 1 − (1 − f)^n rounds to f·n, use the log form: it keeps the tail past 1e-16.
    log10_fpir = np.where(far * n < 1e-6, log10_far + np.log10(n), np.log10(np.maximum(fpir, 1e-300)))
    out = np.clip((3.0 - log10_fpir) / 10.0, 0.0, 1.0)
    # Below score 0.3 the 1:1 map is not a rate; keep the order there (the score is below any threshold).
    one = np.asarray(calibration(raw), dtype=np.float64)
    return np.where(one < 0.3, np.minimum(one, out), out)


class Match(NamedTuple):
    """The best enrolled person for one probe face; the caller's threshold decides whether it is a name."""

    candidate: str | None  # the best-scoring person; None when nobody is enrolled
    score: float  # gallery-aware: threshold t ↔ FPIR 10^(3 − 10t) per search (`identification_score`)
    verification_score: float  # calibrated 1:1 score of the candidate's best template (t ↔ FAR per comparison)
    margin: float  # score minus the runner-up person's (the score itself when there is no runner-up)
    runner_up: str | None  # the best-scoring *other* person

    def name(self, threshold: float = DEFAULT_THRESHOLD) -> str | None:
        """The candidate when the score reaches `threshold`, else None."""
        return self.candidate if self.candidate is not None and self.score >= threshold else None


NO_MATCH = Match(None, 0.0, 0.0, 0.0, None)


class Hits(NamedTuple):
    """Raw search results for k probes (arrays of k); person indices point into `Gallery.people`."""

    person: np.ndarray  # best person, -1 for an empty gallery
    raw: np.ndarray  # their best template's raw similarity (dot product of unit vectors)
    runner_up: np.ndarray  # best other person, -1 when there is none
    runner_up_raw: np.ndarray


class Gallery:
    """Templates grouped by person, searched by one matrix product per batch of probes.

    `names[i]` owns row `embeddings[i]`; a person may own several rows, and their score is
    their best row's. Rows are unit embeddings made by the same engine recipe as the probes.
    The matrix is stored transposed (d × n, C-contiguous) so a batch is `probes @ columns`.
    `model_version`, `problems`, `stale` and `missing` describe where the templates came from
    (the vault fills them in; see `edge.vault.vault_gallery`).
    """

    def __init__(
        self,
        names: Sequence[str],
        embeddings: np.ndarray,
        *,
        model_version: str = "",
        problems: Sequence[Any] = (),
        stale: int = 0,
        missing: int = 0,
    ) -> None:
        names = list(names)
        matrix = np.asarray(embeddings, dtype=np.float32)
        if not names and matrix.size == 0:
            matrix = matrix.reshape(0, matrix.shape[-1] if matrix.ndim == 2 else 0)
        if matrix.ndim != 2 or len(matrix) != len(names):
            raise ValueError(f"need (n, d) embeddings for n names, got {matrix.shape} for {len(names)} names")
        if not np.all(np.isfinite(matrix)) or np.any(np.abs(np.linalg.norm(matrix, axis=1) - 1.0) > 1e-3):
            raise ValueError("every embedding must be finite and of unit length (as Engine.faces makes them)")
        self.people = sorted(set(names))
        index = {p: i for i, p in enumerate(self.people)}
        owners = np.array([index[n] for n in names], dtype=np.int64)
        order = np.argsort(owners, kind="stable")
        self.owners = owners[order]  # row → index into people; rows of one person are contiguous
        self.dim = int(matrix.shape[1])
        self.size = int(matrix.shape[0])
        self.columns = np.ascontiguousarray(matrix[order].T)  # (d, n)
        counts = np.bincount(self.owners, minlength=len(self.people))
        self.ends = np.cumsum(counts)
        self.starts = self.ends - counts
        self.model_version = model_version
        self.problems = list(problems)
        self.stale = stale
        self.missing = missing

    @classmethod
    def from_embeddings(cls, names: Sequence[str], embeddings: np.ndarray, **provenance: Any) -> Gallery:
        """A gallery of `names` (one per row, repeats allowed) and their (n, d) embeddings."""
        return cls(names, embeddings, **provenance)

    def __len__(self) -> int:
        """The number of templates (rows); `len(gallery.people)` is the number of people."""
        return self.size

    def search(self, probes: np.ndarray, block: tuple[int, int, float] | None = None) -> Hits:
        """Best person and runner-up (raw similarities) for probes (k, d) or one probe (d,).

        `block` = (start, stop, scale) searches one embedder's part of fused templates: probes
        are that embedder's unit vectors (k, stop − start), and the templates' columns
        start:stop, times `scale` (√ of the number of fused embedders), are its unit vectors.
        """
        probes = np.asarray(probes, dtype=np.float32)
        if probes.ndim == 1:
            probes = probes[None]
        start, stop, scale = block if block is not None else (0, self.dim, 1.0)
        if probes.ndim != 2 or (self.size and probes.shape[1] != stop - start):
            raise ValueError(f"probes must be (k, {stop - start}), got {probes.shape}")
        k = len(probes)
        if self.size == 0 or k == 0:
            none = np.full(k, -1, np.int64)
            return Hits(none, np.full(k, -np.inf, np.float32), none.copy(), np.full(k, -np.inf, np.float32))
        with _one_blas_thread():
            raw = probes @ self.columns[start:stop]  # (k, n)
        if scale != 1.0:
            raw *= np.float32(scale)
        if k == 1:  # one probe (`edge identify`): argmax, then the runner-up outside that person's rows
            return self._search_one(raw[0])
        per_person = np.maximum.reduceat(raw, self.starts, axis=1)  # (k, people): every person owns a row
        rows = np.arange(k)
        best = np.argmax(per_person, axis=1)
        best_raw = per_person[rows, best]
        if per_person.shape[1] > 1:
            per_person[rows, best] = -np.inf
            runner = np.argmax(per_person, axis=1)
            runner_raw = per_person[rows, runner]
        else:
            runner, runner_raw = np.full(k, -1, np.int64), np.full(k, -np.inf, np.float32)
        return Hits(best.astype(np.int64), best_raw, runner.astype(np.int64), runner_raw)

    def _search_one(self, raw: np.ndarray) -> Hits:
        i = int(np.argmax(raw))
        person = int(self.owners[i])
        start, end = int(self.starts[person]), int(self.ends[person])
        runner, runner_raw = -1, -np.inf
        for lo, hi in ((0, start), (end, self.size)):
            if hi > lo:
                j = lo + int(np.argmax(raw[lo:hi]))
                if raw[j] > runner_raw:
                    runner, runner_raw = int(self.owners[j]), raw[j]
        return Hits(np.array([person]), raw[i : i + 1], np.array([runner]), np.array([runner_raw], dtype=np.float32))

    @property
    def comparisons(self) -> int:
        """How many tries a stranger's face gets against this gallery: one per template (the union bound)."""
        return self.size

    def match(
        self, probes: np.ndarray, calibration: Calibration, block: tuple[int, int, float] | None = None
    ) -> list[Match]:
        """`search`, calibrated: one `Match` per probe, its score gallery-aware for this gallery as it is now.

        With `block`, the calibration must be the one of that embedder alone."""
        hits = self.search(probes, block)
        if not len(hits.person) or hits.person[0] < 0:
            return [NO_MATCH] * len(hits.person)
        n = self.comparisons
        one = np.atleast_1d(np.asarray(calibration(hits.raw), dtype=np.float64))
        best = np.atleast_1d(identification_score(calibration, hits.raw, n))
        has_runner = hits.runner_up >= 0
        runner = np.zeros(len(best))
        if has_runner.any():
            raw = np.where(has_runner, hits.runner_up_raw, -1.0)
            runner = np.where(has_runner, np.atleast_1d(identification_score(calibration, raw, n)), 0.0)
        people = self.people
        return [
            Match(people[p], float(s), float(v), float(s - r), people[q] if q >= 0 else None)
            for p, s, v, r, q in zip(hits.person.tolist(), best, one, runner, hits.runner_up.tolist())
        ]


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
    """Run the gallery product on the calling thread only.

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
