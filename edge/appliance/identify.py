"""1:N identification behind one narrow interface, so the loop does not care where templates live.

    identifier.identify(embeddings)   # (k, d) float32 unit rows → [Match(name, score, margin)] × k

`GalleryIdentifier` holds names and templates in memory (several templates per person
allowed) and answers with one matrix product. `open_identifier` builds the one the config
asks for: the encrypted vault (`vault.path`, through `edge.vault`) or a development
gallery of photos (`gallery.path`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np

from edge.config import Config, ConfigError

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class Match(NamedTuple):
    name: str | None  # the best-scoring enrolled person; None when nobody is enrolled
    score: float  # calibrated 0..1 of that person's best template
    margin: float  # that score minus the runner-up person's (the score itself when there is none)


class Identifier(Protocol):
    def identify(self, embeddings: np.ndarray) -> list[Match]:
        """Best person for each row of `embeddings` (k, d); the caller applies the threshold."""


class GalleryIdentifier:
    """Names and templates in memory; `engine` supplies the calibration (`engine.score`) and `dim`.

    `templates` (n, d) are unit embeddings made with the same engine recipe as the probes;
    `names` (n,) says whose each one is. A person's score is their best template's.
    """

    def __init__(self, names: Sequence[str], templates: np.ndarray, engine: Any) -> None:
        templates = np.asarray(templates, dtype=np.float32)
        if templates.ndim != 2 or len(templates) != len(names):
            raise ValueError(f"need (n, d) templates for n names, got {templates.shape} for {len(names)} names")
        dim = getattr(engine, "dim", templates.shape[1])
        if len(names) and templates.shape[1] != dim:
            raise ValueError(
                f"templates have {templates.shape[1]} values but this engine makes {dim}: "
                "they were enrolled with another model or profile; re-enrol"
            )
        self.engine = engine
        self.dim = int(dim)
        people = sorted(set(names))
        index = {p: i for i, p in enumerate(people)}
        order = np.argsort([index[n] for n in names], kind="stable")
        self.people = people
        self.templates = np.ascontiguousarray(templates[order])
        owners = np.array([index[names[i]] for i in order], dtype=np.int64)
        # first column of each person's block, for np.maximum.reduceat
        self._starts = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]]) if len(owners) else owners
        self._t = np.ascontiguousarray(self.templates.T)  # (d, n): probes @ _t

    def __len__(self) -> int:
        return len(self.people)

    def identify(self, embeddings: np.ndarray) -> list[Match]:
        probes = np.asarray(embeddings, dtype=np.float32)
        if probes.ndim == 1:
            probes = probes[None]
        k = len(probes)
        if k == 0:
            return []
        if not self.people:
            return [Match(None, 0.0, 0.0)] * k
        raw = probes @ self._t  # (k, n)
        per_person = np.maximum.reduceat(raw, self._starts, axis=1) if len(self.people) > 1 else raw.max(1)[:, None]
        if per_person.shape[1] == 1:
            best_i = np.zeros(k, dtype=np.int64)
            best = per_person[:, 0]
            second = None
        else:
            top2 = np.argpartition(-per_person, 1, axis=1)[:, :2]
            rows = np.arange(k)
            a, b = per_person[rows, top2[:, 0]], per_person[rows, top2[:, 1]]
            swap = b > a
            best_i = np.where(swap, top2[:, 1], top2[:, 0])
            best, second = np.maximum(a, b), np.minimum(a, b)
        scores = np.atleast_1d(np.asarray(self.engine.score(best), dtype=np.float64))
        seconds = (
            np.zeros(k) if second is None else np.atleast_1d(np.asarray(self.engine.score(second), dtype=np.float64))
        )
        return [Match(self.people[int(i)], float(s), float(s - r)) for i, s, r in zip(best_i, scores, seconds)]

    @classmethod
    def from_photos(cls, engine: Any, directory: str | Path, *, log=None) -> GalleryIdentifier:
        """Enrol a folder with one sub-folder of photos per person (its name is the person's).

        The largest face of each photo becomes a template; a photo without a face is skipped
        with a warning. Development and tests only: the photos are not encrypted.
        """
        log = log or (lambda msg: print(msg, file=sys.stderr))
        root = Path(directory)
        if not root.is_dir():
            raise ConfigError("gallery.path", f"{root} is not a directory")
        names, templates = [], []
        for person in sorted(p for p in root.iterdir() if p.is_dir()):
            photos = sorted(p for p in person.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
            for photo in photos:
                faces = engine.faces(str(photo), max_faces=1)
                if not faces:
                    log(f"edge: gallery: no face in {photo}; skipped")
                    continue
                names.append(person.name)
                templates.append(faces[0].embedding)
        if not names:
            raise ConfigError("gallery.path", f"{root} has no person folder with a usable photo")
        return cls(names, np.stack(templates), engine)


class VaultIdentifier:
    """The encrypted vault (`edge.vault`) as an `Identifier`: a thin adapter over its `Gallery`.

    The gallery holds the templates of this engine's model version only (`edge.vault`
    never mixes versions); it is read once at start-up, and again on `reload()` (the loop
    calls it on SIGHUP, e.g. after `edge vault enroll` in another process). The vault
    gives raw similarities of the best person and the runner-up; they are calibrated here
    with `engine.score`, like every other score.
    """

    def __init__(self, engine: Any, path: str | Path, *, log=None) -> None:
        from edge.vault import Vault, VaultError

        self.engine = engine
        self.path = Path(path)
        self.log = log or (lambda msg: print(msg, file=sys.stderr))
        if not self.path.is_dir():
            raise ConfigError("vault.path", f"{self.path} is not a vault directory (create one with the vault tools)")
        try:
            self.vault = Vault.open(self.path)
        except (VaultError, OSError) as exc:
            raise ConfigError("vault.path", f"cannot open the vault at {self.path}: {exc}") from None
        self.reload()

    def reload(self) -> None:
        from edge.vault import Gallery, model_version

        gallery = Gallery.from_vault(self.vault, model_version(self.engine), int(self.engine.dim))
        for problem in gallery.problems:
            self.log(f"edge: vault: {problem}")
        if gallery.stale:
            self.log(
                f"edge: vault: {gallery.stale} template(s) belong to another model version and are not used; "
                "rebuild them with the vault tools"
            )
        if not len(gallery):
            self.log(f"edge: vault: nobody is enrolled for this model version in {self.path}; every face is unknown")
        self.gallery = gallery
        self.people = sorted({gallery.names[i] for i in set(gallery.owners.tolist())})

    def identify(self, embeddings: np.ndarray) -> list[Match]:
        probes = np.asarray(embeddings, dtype=np.float32)
        if probes.ndim == 1:
            probes = probes[None]
        results = self.gallery.search_batch(probes)
        out = []
        for m in results:
            if m.person < 0:
                out.append(Match(None, 0.0, 0.0))
                continue
            score = float(self.engine.score(m.raw))
            runner = float(self.engine.score(m.runner_up_raw)) if m.runner_up >= 0 else 0.0
            out.append(Match(self.gallery.names[m.person], score, score - runner))
        return out


def vault_identifier(engine: Any, path: str | Path, *, log=None) -> Identifier:
    """The enrolment vault at `path` as an `Identifier` (needs `edge.vault`)."""
    try:
        import edge.vault  # noqa: F401
    except ImportError:
        raise ConfigError(
            "vault.path",
            "this build has no enrolment vault (edge.vault); for development, enrol photos with "
            'gallery.path = "DIR" (one folder of photos per person) and vault.path = ""',
        ) from None
    return VaultIdentifier(engine, path, log=log)


def open_identifier(config: Config, engine: Any, *, log=None) -> Identifier:
    if config.gallery.path:
        return GalleryIdentifier.from_photos(engine, config.gallery.path, log=log)
    if config.vault.path:
        return vault_identifier(engine, config.vault.path, log=log)
    raise ConfigError("vault.path", "no enrolment store: set vault.path (or gallery.path for development)")
