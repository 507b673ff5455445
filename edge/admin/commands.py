"""What a verified command does: status, people, revoke, import, reload.

The handler knows the vault and asks the appliance (through plain callables, so it never
imports the appliance) for its status, to reload the enrolments, and to run work that needs
the engine on the loop thread (the engine's interpreters are not shared between threads).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from edge.admin.signing import CommandRefused
from edge.errors import INVALID_ARGUMENT, EdgeError
from edge.vault.bundle import max_bundle_bytes

COMMANDS = ("status", "people", "revoke", "import", "reload")
# The base64 of the largest bundle the format allows (MAX_PHOTOS photos of the largest size
# the image intake takes). Over MQTT the whole command is bounded first by
# `mqtt.command_max_bytes` (8 MiB by default: a bundle of about 6 MB of photos), which the
# MQTT sink checks before anything is parsed; this bound is for the handler on its own.
MAX_BUNDLE_B64 = 4 * -(-max_bundle_bytes() // 3)


def _direct(fn: Callable[[], Any]) -> Any:
    return fn()


class CommandHandler:
    def __init__(
        self,
        *,
        status: Callable[[], dict[str, Any]],
        vault_path: str | None = None,
        engine: Any = None,
        reload: Callable[[], None] | None = None,
        run_in_loop: Callable[[Callable[[], Any]], Any] = _direct,
    ) -> None:
        self.status = status
        self.vault_path = vault_path or None
        self.engine = engine
        self.reload = reload
        self.run_in_loop = run_in_loop

    def handle(self, command: str, args: dict[str, Any]) -> dict[str, Any]:
        """The command's result (JSON-able); EdgeError / CommandRefused when it cannot be done."""
        if command not in COMMANDS:
            raise CommandRefused(
                "unknown_command", f"unknown command {command!r}; this device takes {', '.join(COMMANDS)}"
            )
        return getattr(self, f"_cmd_{command}")(args)

    def _vault(self):
        if not self.vault_path:
            raise EdgeError(INVALID_ARGUMENT, "this device runs without a vault (a development gallery); no enrolments")
        from edge.vault import Vault

        return Vault.open(self.vault_path)

    def _model_version(self) -> str | None:
        from edge.vault import model_version

        return model_version(self.engine) if self.engine is not None else None

    def _cmd_status(self, _args: dict[str, Any]) -> dict[str, Any]:
        return self.status()

    def _cmd_people(self, _args: dict[str, Any]) -> dict[str, Any]:
        people, problems = self._vault().people(self._model_version())
        return {"people": [p.to_dict() for p in people], "damaged": [str(p) for p in problems]}

    def _cmd_revoke(self, args: dict[str, Any]) -> dict[str, Any]:
        name = args.get("name")
        if not isinstance(name, str) or not name:
            raise EdgeError(INVALID_ARGUMENT, "revoke needs args.name (the person's name)")
        report = self._vault().revoke(name)
        self._reload()
        return {"name": report.name, "entries": report.entries, "photos": report.photos, "files": report.files}

    def _cmd_import(self, args: dict[str, Any]) -> dict[str, Any]:
        text = args.get("bundle")
        if not isinstance(text, str) or not text:
            raise EdgeError(INVALID_ARGUMENT, "import needs args.bundle: the bundle file in base64")
        if len(text) > MAX_BUNDLE_B64:
            raise EdgeError(
                INVALID_ARGUMENT, f"args.bundle is larger than any bundle can be ({MAX_BUNDLE_B64:,} bytes)"
            )
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise EdgeError(INVALID_ARGUMENT, "args.bundle is not valid base64") from None
        if self.engine is None:
            raise EdgeError(INVALID_ARGUMENT, "this device has no engine to enrol with")
        from edge.vault import import_bundle, model_version

        vault = self._vault()
        entry = self.run_in_loop(lambda: import_bundle(self.engine, vault, data))
        self._reload()
        return {"name": entry.name, "photos": entry.photos, "model_version": model_version(self.engine)}

    def _cmd_reload(self, _args: dict[str, Any]) -> dict[str, Any]:
        self._reload()
        return {"reloading": True}

    def _reload(self) -> None:
        if self.reload is not None:
            self.reload()
