"""Fleet enrolment: one signed command for every door of a group (docs/fleet.md).

A group command is an ordinary signed command (edge.admin.signing) whose signed target is
``"group:<name>"`` instead of a device id, so every check of a device command applies
unchanged — admin key, signature, freshness, nonce — and a door accepts it only when
``<name>`` is one of its `mqtt.groups` (a command for group A is refused by a door of group B:
the group is signed, the topic it came on is not trusted).

Only commands that make sense for many doors at once are taken from a group:

    import   {"bundles": {"<device id>": "<bundle, base64>", …}}   each door opens only its own
             copy (sealed to its own key: edge.vault.bundle); a door with no copy does nothing
    revoke   {"name": "…"}
    reload   {}

Each door keeps the last `MAX_APPLIED` group commands it carried out (nonce, command, group,
time, ok) in a small file beside its nonce log, and reports them with its vault generation,
the number of people and a digest of their names — never the names (docs/mqtt.md, Privacy) —
so `edge admin fleet status` can tell which doors have the latest enrolment or revoke.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import time
from pathlib import Path
from typing import Any

from edge.admin.signing import CommandRefused
from edge.errors import INVALID_ARGUMENT, EdgeError

GROUP_TARGET = "group:"
GROUP_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
GROUP_COMMANDS = ("import", "revoke", "reload")
MAX_APPLIED = 20


def validate_group(name: str) -> str:
    if not isinstance(name, str) or not GROUP_NAME.fullmatch(name):
        raise EdgeError(INVALID_ARGUMENT, f"a group name is 1-64 of [A-Za-z0-9._-]; got {name!r}")
    return name


def group_target(group: str) -> str:
    """The signed `device_id` field of a command for every door of `group`."""
    return GROUP_TARGET + validate_group(group)


def target_group(target: Any) -> str | None:
    """The group a signed target names, or None when it names a single device."""
    if isinstance(target, str) and target.startswith(GROUP_TARGET):
        return target[len(GROUP_TARGET) :]
    return None


class NotForThisDevice(EdgeError):
    """A group command that carries nothing for this door (an import without its copy)."""


def device_args(command: str, args: dict[str, Any], device_id: str) -> dict[str, Any]:
    """What this door's command handler gets from a group command's `args`."""
    if command not in GROUP_COMMANDS:
        raise CommandRefused(
            "unknown_command", f"{command!r} cannot be sent to a group; a group takes {', '.join(GROUP_COMMANDS)}"
        )
    if command != "import":
        return args
    bundles = args.get("bundles")
    if not isinstance(bundles, dict):
        raise EdgeError(INVALID_ARGUMENT, "a group import needs args.bundles: {device id: bundle in base64}")
    own = bundles.get(device_id)
    if own is None:
        raise NotForThisDevice(INVALID_ARGUMENT, f"this group import carries no bundle for {device_id!r}")
    return {"bundle": own}


# --- the administrator's side: one sealed copy per door, in commands under the size limit -------------


def import_chunks(bundles: dict[str, bytes], max_bytes: int, overhead: int = 2048) -> list[dict[str, Any]]:
    """`args` of group imports carrying every door's bundle, each command under `max_bytes`
    (the doors' `mqtt.command_max_bytes`): a large group gets several commands, a door finds
    its copy in exactly one of them."""
    chunks: list[dict[str, Any]] = []
    current: dict[str, str] = {}
    size = overhead
    for device_id, data in bundles.items():
        text = base64.b64encode(data).decode("ascii")
        item = len(text) + len(device_id) + 8
        if item + overhead > max_bytes:
            raise EdgeError(
                INVALID_ARGUMENT,
                f"the bundle for {device_id!r} alone ({item:,} bytes as text) is over the command limit "
                f"({max_bytes:,}); fewer or smaller photos",
            )
        if current and size + item > max_bytes:
            chunks.append({"bundles": current})
            current, size = {}, overhead
        current[device_id] = text
        size += item
    if current:
        chunks.append({"bundles": current})
    return chunks


def read_device_keys(path: str | os.PathLike[str]) -> dict[str, str]:
    """Device id → public key from a keys file: `<device id> <public key>` per line (`#` comments),
    as `edge admin fleet keys` prints it."""
    keys: dict[str, str] = {}
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise EdgeError(INVALID_ARGUMENT, f"cannot read the device keys {path}: {exc.strerror or exc}") from None
    for number, line in enumerate(lines, 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2:
            raise EdgeError(INVALID_ARGUMENT, f"{path}:{number}: expected '<device id> <public key>'")
        keys[parts[0]] = parts[1]
    if not keys:
        raise EdgeError(INVALID_ARGUMENT, f"{path} names no device")
    return keys


# --- the door's side: what it applied, and what it reports ---------------------------------------------


class AppliedLog:
    """The last `MAX_APPLIED` group commands this door carried out, kept (atomically) in one JSON file."""

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.path = Path(path) if path else None
        self.items: list[dict[str, Any]] = []
        if self.path and self.path.exists():
            try:
                items = json.loads(self.path.read_text())
                self.items = [dict(i) for i in items if isinstance(i, dict)][-MAX_APPLIED:]
            except (OSError, ValueError, TypeError):
                self.items = []  # only a report: losing it forgets history, admits nothing

    def add(self, *, nonce: str, command: str, group: str, ts: float, ok: bool, reason: str | None = None) -> None:
        item: dict[str, Any] = {"nonce": nonce, "command": command, "group": group, "ts": ts, "ok": ok}
        item["at"] = round(time.time(), 3)
        if reason:
            item["reason"] = reason
        self.items = [*self.items, item][-MAX_APPLIED:]
        if self.path:
            from edge.fs import atomic_write

            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, json.dumps(self.items, separators=(",", ":")).encode(), mode=0o600)


def people_digest(names: list[str]) -> str:
    """sha256 of the sorted names, one a line: equal on two doors when they hold the same people.
    An administrator who knows whom to expect can compute it; it names nobody on the wire."""
    return hashlib.sha256("\n".join(sorted(names)).encode()).hexdigest()


def vault_summary(vault_path: str | None, model_version: str | None = None) -> dict[str, Any]:
    """The vault's generation, how many people it holds and their digest; the public key too, so an
    administrator can collect the keys to seal bundles to (`edge admin fleet keys`)."""
    if not vault_path:
        return {"generation": None, "people": 0, "people_sha256": people_digest([])}
    from edge.vault import Vault

    vault = Vault.open(vault_path)
    people, _problems = vault.people(model_version)
    return {
        "generation": vault.generation(),
        "people": len(people),
        "people_sha256": people_digest([p.name for p in people]),
        "public_key": vault.public_key_b64,
    }


class VaultSummary:
    """`vault_summary`, read again only when the vault's generation moved: the fleet state is
    republished every `state_interval`, and a large vault's people list is not free."""

    def __init__(self, vault_path: str | None) -> None:
        self.vault_path = vault_path
        self._cached: tuple[str, dict[str, Any]] | None = None

    def __call__(self) -> dict[str, Any]:
        if not self.vault_path:
            return vault_summary(None)
        from edge.vault import Vault
        from edge.vault.store import cacheable

        generation = Vault.open(self.vault_path).generation()
        if self._cached is not None and self._cached[0] == generation and cacheable(generation):
            return self._cached[1]
        summary = vault_summary(self.vault_path)
        self._cached = (summary["generation"], summary)
        return summary
