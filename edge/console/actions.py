"""Enrol, revoke and list people in the appliance's vault: what the console's pages call.

The same steps as `edge enroll` / `edge revoke` / `edge people` (edge.vault): the enrolment
quality gate on every photo, the one-person and duplicate checks, then the sealed write. The
engine belongs to the loop thread, so the engine's part runs there (`Appliance.call_in_loop`,
between frames); the gallery is re-read afterwards (`Appliance.reload`), so the door knows the
new face (or forgets a revoked one) from the next frame on.

The composition root may hand the console other callables with the same shapes (the /v1/
HTTP API's); `VaultActions` is the default and what the tests use.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from edge.errors import INVALID_ARGUMENT, EdgeError

logger = logging.getLogger(__name__)


class VaultActions:
    """enrol(name, photos) / revoke(name) / people() / check_photo(jpeg) over one vault."""

    def __init__(self, appliance: Any, vault_path: str) -> None:
        from edge.vault import Vault

        self.appliance = appliance
        self.vault = Vault.open(vault_path)

    def enrol(self, name: str, photos: Sequence[bytes]) -> dict:
        """Gate and enrol; raises EdgeError (with the reason a photo was refused) otherwise."""
        from edge.vault import enroll, model_version

        engine = self.appliance.engine
        entry = self.appliance.call_in_loop(lambda: enroll(engine, self.vault, name, list(photos)))
        self.appliance.reload_now()  # the answer comes after the loop knows the face
        logger.info("console: enrolled %r (%d photo(s))", entry.name, entry.photos)
        return {"name": entry.name, "photos": entry.photos, "model_version": model_version(engine)}

    def check_photo(self, photo: bytes) -> dict:
        """The enrolment quality gate on one photo (no write): raises EdgeError naming the problem."""
        from edge.vault.enroll import check_photo

        engine = self.appliance.engine
        face = self.appliance.call_in_loop(lambda: check_photo(engine, photo, "the captured face"))
        return {"rect": [int(v) for v in face.rect], "score": round(float(face.score), 3)}

    def revoke(self, name: str) -> dict:
        report = self.vault.revoke(name)
        self.appliance.reload_now()  # the answer comes after the loop has forgotten the face
        logger.info("console: revoked %r", report.name)
        return {"name": report.name, "photos": report.photos, "entries": report.entries, "files": report.files}

    def people(self) -> dict:
        from edge.vault import model_version

        people, problems = self.vault.people(model_version(self.appliance.engine))
        return {
            "people": [p.to_dict() for p in people],
            "problems": [str(p) for p in problems],
            "vault": str(self.vault.directory),
            "generation": self.vault.generation(),
        }


class NoVaultActions:
    """A device without a vault (a development gallery): nothing to enrol into or revoke from."""

    @staticmethod
    def _none() -> EdgeError:
        return EdgeError(INVALID_ARGUMENT, "this device runs without a vault (vault.path); no enrolments")

    def enrol(self, name: str, photos: Sequence[bytes]) -> dict:
        raise self._none()

    def check_photo(self, photo: bytes) -> dict:
        raise self._none()

    def revoke(self, name: str) -> dict:
        raise self._none()

    def people(self) -> dict:
        return {"people": [], "problems": ["no vault: vault.path is not set"], "vault": None, "generation": None}
