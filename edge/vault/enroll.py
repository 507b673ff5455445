"""Enrolment, bundle import and template rebuild: the steps that need the face engine.

The engine is passed in (the vault never loads models itself). Every photo goes through the
enrolment quality gate (`check_photo`) before anything is written; then the photos and their
templates are stored as one entry (`Vault.add_entry`), tagged with the model version.

The quality gate, per photo:
  * it must pass intake (type, size, completeness: edge.images), else its 2003-2006 code;
  * at least one face (else 4000);
  * exactly one face of comparable size: a second face with at least a quarter of the largest
    face's area (half its width) makes the photo ambiguous (1200); smaller faces in the
    background are ignored -- the template is always the largest face;
  * the face at least `MIN_FACE_PX` pixels wide (1200): smaller faces make poor templates;
  * a confident detection, score at least `MIN_DETECTION_SCORE` (1200): lower scores are where
    the detector's false positives live (a channel-swapped photo of a coffee cup scores 0.52;
    99 % of lfw-dev faces score above 0.75);
  * when the engine reports quality (`Face.quality`): not occluded (4004) and `ok` (1200,
    naming the failed checks);
  * not degraded (1200): no motion blur beyond what sharp photos show and not dark
    (`edge.vision.quality.degradation_problems`) -- stricter than the camera's gate, so that
    no template needs the penalty for two degraded photos (`Calibration.penalty`).
Every error names the photo ("photo 2 (bob.jpg): …") and keeps the code of the underlying failure.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.errors import FACE_OCCLUDED, INVALID_ARGUMENT, NO_FACE_DETECTED, EdgeError
from edge.images import IntakeLimits, decode_image
from edge.matching import DEFAULT_THRESHOLD, Gallery
from edge.vault.bundle import open_bundle
from edge.vault.errors import RecordError
from edge.vault.photos import PhotoSource, describe, read_photos
from edge.vault.store import Entry, Vault, validate_name
from edge.vision.quality import degradation_problems

if TYPE_CHECKING:
    from edge.engine import Engine, EngineConfig, Face

COMPARABLE_FACE_AREA = 0.25  # a second face this large (relative area) makes a photo ambiguous
MIN_FACE_PX = 40  # narrowest face accepted for a template, pixels
MIN_DETECTION_SCORE = 0.7  # least detector confidence accepted for a template
SAME_PERSON_SCORE = 0.5  # two photos of one enrolment below this (FAR 1/100) are not one person

_VERSIONS: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def model_version(engine: Engine | EngineConfig) -> str:
    """16 hex digits naming the embedding recipe: sha256 of `config.signature()`.

    The signature holds every embedder file's sha256, the flip and landmark settings: anything
    that changes what a template means changes the version, and templates of another version
    are never used for matching (`edge vault rebuild` recomputes them from the sealed photos).
    An `EngineConfig` gives the same answer as its `Engine` without loading any model.
    """
    version = _VERSIONS.get(engine)
    if version is None:
        version = _VERSIONS[engine] = getattr(engine, "config", engine).model_version()
    return version


def check_photo(engine: Engine, data: bytes, label: str, *, limits: IntakeLimits | None = None) -> Face:
    """The enrolment quality gate for one encoded photo → its one usable face (errors name `label`).

    `limits` defaults to the engine's.
    """
    try:
        image = decode_image(data, limits=engine.config.limits if limits is None else limits)
        faces = engine.faces(image)
    except EdgeError as exc:
        raise EdgeError(exc.code, f"{label}: {exc.message}") from None
    if not faces:
        raise EdgeError(NO_FACE_DETECTED, f"{label}: no face detected")
    face = faces[0]
    area = face.rect[2] * face.rect[3]
    rivals = [f for f in faces[1:] if f.rect[2] * f.rect[3] >= COMPARABLE_FACE_AREA * area]
    if rivals:
        raise EdgeError(
            INVALID_ARGUMENT,
            f"{label}: {len(rivals) + 1} faces of comparable size; enrol from a photo of this person alone "
            "(or cropped to them)",
        )
    if face.rect[2] < MIN_FACE_PX:
        raise EdgeError(
            INVALID_ARGUMENT, f"{label}: the face is {face.rect[2]} pixels wide; at least {MIN_FACE_PX} are needed"
        )
    if face.score < MIN_DETECTION_SCORE:
        raise EdgeError(
            INVALID_ARGUMENT,
            f"{label}: the face detector is not confident this is a face (score {face.score:.2f}, "
            f"at least {MIN_DETECTION_SCORE} needed); use a clearer, frontal photo",
        )
    quality = face.quality
    if isinstance(quality, dict):
        if quality.get("occluded"):
            raise EdgeError(FACE_OCCLUDED, f"{label}: the face is occluded")
        if not quality.get("ok", True):
            failed = ", ".join(map(str, quality.get("failures", []))) or "quality"
            raise EdgeError(INVALID_ARGUMENT, f"{label}: the face fails the quality check: {failed}")
    problems = [] if face.degradation is None else degradation_problems(face.degradation)
    if problems:
        raise EdgeError(
            INVALID_ARGUMENT, f"{label}: too poor for a template: {'; '.join(problems)}; use a sharp, well-lit photo"
        )
    return face


def checked_templates(
    engine: Engine, items: Sequence[tuple[str, bytes]], suffix: str = ""
) -> tuple[list[str], np.ndarray]:
    """Every (label, encoded photo) through `check_photo` → (the photos' labels as errors name
    them, their templates (n, d) float32)."""
    labels = [describe(i, label) + suffix for i, (label, _) in enumerate(items, 1)]
    faces = [check_photo(engine, data, label) for label, (_, data) in zip(labels, items)]
    return labels, np.stack([f.embedding for f in faces]).astype(np.float32)


def check_one_person(engine: Engine, templates: np.ndarray, labels: Sequence[str]) -> None:
    """The photos of one enrolment show one person: 1200 naming the two that score lowest against
    each other when that is under SAME_PERSON_SCORE."""
    if len(templates) < 2:
        return
    scores = np.asarray(engine.score(templates @ templates.T), np.float64)
    i, j = np.unravel_index(np.argmin(scores + np.tri(len(templates)) * 2), scores.shape)  # upper triangle
    if scores[i, j] < SAME_PERSON_SCORE:
        raise EdgeError(
            INVALID_ARGUMENT,
            f"{labels[i]} and {labels[j]} do not look like the same person (score {scores[i, j]:.2f}); "
            "enrol each person under their own name",
        )


def check_identity(
    engine: Engine, vault: Vault, name: str, templates: np.ndarray, labels: Sequence[str], *, allow_duplicate: bool
) -> None:
    """The photos of one enrolment show one person (`check_one_person`), and, unless
    `allow_duplicate`, nobody enrolled under another name already (1200 naming them): one face
    under two names makes the door's answer between them a coin toss."""
    check_one_person(engine, templates, labels)
    if allow_duplicate:
        return
    enrolled = vault.templates(model_version(engine), int(engine.dim))
    rows = [k for k, owner in enumerate(enrolled.owners.tolist()) if enrolled.names[owner] != name]
    if not rows:
        return
    others = Gallery.from_embeddings([enrolled.names[enrolled.owners[k]] for k in rows], enrolled.matrix[rows])
    for label, match in zip(labels, engine.match(templates, others)):
        if match.score >= DEFAULT_THRESHOLD:
            raise EdgeError(
                INVALID_ARGUMENT,
                f"{label} is already enrolled as {match.candidate!r} (score {match.score:.2f}); if they are "
                "different people (twins), enrol with --allow-duplicate",
            )


def enroll(
    engine: Engine, vault: Vault, name: str, photos: Sequence[PhotoSource], *, allow_duplicate: bool = False
) -> Entry:
    """Quality-gate every photo, check they show one person who is not enrolled under another name
    (`check_identity`), then store photos (sealed) and templates (encrypted) as one entry.

    Nothing is written unless every photo passes. Enrolling a known name adds photos to that person.
    """
    name = validate_name(name)
    if not photos:
        raise EdgeError(INVALID_ARGUMENT, "an enrolment needs at least one photo")
    items = read_photos(photos, engine.config.limits)
    labels, templates = checked_templates(engine, items)
    check_identity(engine, vault, name, templates, labels, allow_duplicate=allow_duplicate)
    return vault.add_entry(name, [data for _, data in items], templates, model_version(engine))


def import_bundle(
    engine: Engine, vault: Vault, bundle: bytes | str | os.PathLike[str], *, allow_duplicate: bool = False
) -> Entry:
    """Open a bundle sealed to this device, quality-gate its photos, enrol them with this device's model."""
    opened = open_bundle(bundle, vault.private_key, limits=engine.config.limits)
    labels, templates = checked_templates(engine, opened.photos, " of the bundle")
    check_identity(engine, vault, opened.name, templates, labels, allow_duplicate=allow_duplicate)
    return vault.add_entry(
        opened.name,
        [data for _, data in opened.photos],
        templates,
        model_version(engine),
        source="bundle",
        bundle_id=opened.bundle_id,
    )


@dataclass
class RebuildReport:
    model_version: str
    written: int = 0  # templates computed and stored
    current: int = 0  # templates of this version that were already there and open
    dropped: int = 0  # templates of other versions overwritten and removed
    problems: list[RecordError] = field(default_factory=list)  # photos that could not be used


def rebuild(engine: Engine, vault: Vault, *, force: bool = False) -> RebuildReport:
    """Recompute templates from the sealed photos for this engine's model version.

    Templates of this version that open are kept unless `force`; missing or damaged ones are
    recomputed; templates of other versions are then overwritten and removed. A photo that
    does not open, or no longer passes the quality gate, is reported and gets no template.
    """
    version = model_version(engine)
    report = RebuildReport(version)
    # The stored photos were accepted once, maybe downscaled (`edge enroll --downscale`, a phone
    # photo): decoded the same way again, not refused for a size this engine would not take as is.
    limits = replace(engine.config.limits, downscale=True)
    with vault.writing():
        entries, problems = vault.entries()
        report.problems.extend(problems)
        for entry in entries:
            for i in range(entry.photos):
                if not force:
                    try:
                        vault.read_template(entry, i, version, int(engine.dim))
                        report.current += 1
                        continue
                    except RecordError:
                        pass
                rel = f"{entry.path}/photo-{i}.rec"
                try:
                    photo = vault.read_photo(entry, i)
                    face = check_photo(engine, photo, f"photo {i + 1} of {entry.name!r}", limits=limits)
                except RecordError as exc:
                    report.problems.append(exc)
                    continue
                except EdgeError as exc:
                    report.problems.append(RecordError(rel, f"no template with this model: {exc.message}"))
                    continue
                vault.write_template(entry, i, face.embedding, version)
                report.written += 1
            report.dropped += vault.drop_templates(entry, version)
    return report


__all__ = [
    "COMPARABLE_FACE_AREA",
    "MIN_DETECTION_SCORE",
    "MIN_FACE_PX",
    "SAME_PERSON_SCORE",
    "RebuildReport",
    "check_identity",
    "check_one_person",
    "check_photo",
    "checked_templates",
    "enroll",
    "import_bundle",
    "model_version",
    "rebuild",
]
