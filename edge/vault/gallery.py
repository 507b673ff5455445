"""The vault's templates as the matcher's `Gallery` (the vault stores; `edge.matching` searches)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edge.matching import Gallery
from edge.vault.enroll import model_version
from edge.vault.store import TemplateSet, Vault, cacheable

if TYPE_CHECKING:  # the engine is passed in; the vault never loads models itself
    from edge.engine import Engine


def gallery_of(templates: TemplateSet) -> Gallery:
    """A `Gallery` of one model version's templates, with where they came from."""
    return Gallery.from_embeddings(
        [templates.names[i] for i in templates.owners.tolist()],
        templates.matrix,
        model_version=templates.model_version,
        problems=templates.problems,
        stale=templates.stale,
        missing=templates.missing,
    )


def vault_gallery(engine: Engine, vault: Vault) -> Gallery:
    """The vault's gallery for this engine's model version, cached until the vault changes.

    Any committed change by any process (enrol, import, revoke, rebuild) changes
    `vault.generation()`, so a revoked person stops matching at the next search.
    Templates of other model versions are never used.
    """
    version = model_version(engine)
    generation = vault.generation()
    key = ("gallery", version, int(engine.dim), generation)
    gallery = vault._cache.get(key)
    if not isinstance(gallery, Gallery):
        gallery = gallery_of(vault.templates(version, int(engine.dim)))
        vault._cache.clear()
        if cacheable(generation):  # never while a writer is (or died) mid-change
            vault._cache[key] = gallery
    return gallery


__all__ = ["gallery_of", "vault_gallery"]
