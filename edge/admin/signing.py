"""Ed25519-signed commands: one administrator key signs, every device checks.

A command is one JSON object::

    {"v": 1, "command": "revoke", "args": {"name": "Ada Lovelace"}, "device_id": "door-1",
     "ts": 1763837000.25, "nonce": "9f0c…(32 hex)", "key": "<admin public key, base64>",
     "reply_to": "edge/door-1/command/response", "sig": "<Ed25519 signature, base64>"}

The signature covers ``SIGNING_CONTEXT`` followed by the canonical JSON (sorted keys, no
spaces, ASCII) of every field but ``sig`` — so the device id (a command for one door does
not open another), the time, the nonce and where the reply goes are all signed. A device
accepts a command only when its key is one of the configured admin keys, the signature
verifies, ``ts`` is within ``max_age`` seconds of the device's clock (either way), and the
nonce has not been seen; accepted nonces are remembered on disk until their command would
be stale anyway, so a replay is refused across restarts too.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from edge.errors import INVALID_ARGUMENT, EdgeError
from edge.keytext import b64decode_loose, parse_key32

SIGNING_CONTEXT = b"edge-command-v1\n"
VERSION = 1
NONCE = re.compile(r"[0-9a-f]{32}")
COMMAND_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
# A command nests three deep (the command, its args, a list in them); anything deeper than this
# is refused before json.loads sees it, so no payload can make the parser (or the canonical
# re-serialisation of the signature check) recurse until RecursionError.
MAX_JSON_DEPTH = 16


class CommandRefused(EdgeError):
    """A command that is not carried out; `reason` is one word a program can test."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(INVALID_ARGUMENT, message)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def parse_verify_key(text: str) -> VerifyKey:
    return VerifyKey(parse_key32(text, kind="Ed25519 admin"))


def json_depth(data: bytes, *, chunk: int = 1 << 18) -> int:
    """How deep arrays and objects nest in the JSON text `data` (UTF-8 bytes), found without parsing
    it: brackets are counted outside strings (a quote after an odd run of backslashes is escaped).
    Vectorised over `chunk`-byte pieces: 20-50 ms per MiB on the 2-core dev machine and at most
    ~25 MiB of memory, whatever the content (`parse_json_object` calls it only for payloads with
    more brackets than its limit: an 8 MB `import` costs two bytes.count calls).
    For text that is not JSON the count may differ from what a parser would see before failing,
    but never on a valid prefix, which is all a parser descends through."""
    import numpy as np

    depth = deepest = 0
    in_string = False
    run = 0  # backslashes just before the current piece
    for start in range(0, len(data), chunk):
        a = np.frombuffer(data, np.uint8, count=min(chunk, len(data) - start), offset=start)
        quote = a == ord('"')
        backslash = a == ord("\\")
        if run or backslash.any():
            pos = np.arange(a.size, dtype=np.int64)
            last_other = np.maximum.accumulate(np.where(backslash, -1, pos))  # last non-backslash ≤ i
            before = np.empty(a.size, np.int64)  # the backslashes that end just before i
            before[0] = run
            before[1:] = pos[:-1] - last_other[:-1] + np.where(last_other[:-1] < 0, run, 0)
            quote &= (before & 1) == 0
            run = int(a.size - 1 - last_other[-1]) + (run if last_other[-1] < 0 else 0)
        toggles = np.cumsum(quote, dtype=np.int64) + in_string
        in_string = bool(toggles[-1] & 1)
        step = (a == ord("[")).view(np.int8) + (a == ord("{")).view(np.int8)
        step -= (a == ord("]")).view(np.int8) + (a == ord("}")).view(np.int8)
        step[(toggles & 1).astype(bool)] = 0
        running = np.cumsum(step, dtype=np.int64) + depth
        deepest = max(deepest, int(running.max()))
        depth = int(running[-1])
    return deepest


def parse_json_object(payload: bytes | str, *, max_depth: int = MAX_JSON_DEPTH) -> dict[str, Any]:
    """A JSON object from a network payload, or `CommandRefused("malformed", …)`: UTF-8 only (so
    the depth scan reads the same characters as the parser), nested at most `max_depth` deep
    (checked before parsing)."""
    raw = payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else bytes(payload)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CommandRefused("malformed", "the command is not UTF-8 JSON") from None
    if raw.count(b"[") + raw.count(b"{") > max_depth and json_depth(raw) > max_depth:
        raise CommandRefused("malformed", f"the command is nested more than {max_depth} deep")
    try:
        data = json.loads(text)
    except ValueError:
        raise CommandRefused("malformed", "the command is not JSON") from None
    if not isinstance(data, dict):
        raise CommandRefused("malformed", "the command must be a JSON object")
    return data


# --- the administrator's key ---------------------------------------------------------------------


def generate_admin_key(path: str | os.PathLike[str]) -> SigningKey:
    """A new Ed25519 key: the private seed in `path` (mode 0600, never overwritten), public half in `path`.pub."""
    from edge.fs import create_exclusive

    key = SigningKey.generate()
    target = Path(path)
    try:
        create_exclusive(target, (_b64(bytes(key)) + "\n").encode(), mode=0o600)
    except FileExistsError:
        raise EdgeError(INVALID_ARGUMENT, f"{target} exists; not overwriting an admin key") from None
    pub = target.with_name(target.name + ".pub")
    pub.write_text(public_key_text(key) + "\n")
    return key


def load_admin_key(path: str | os.PathLike[str]) -> SigningKey:
    target = Path(path)
    try:
        mode = target.stat().st_mode & 0o777
        text = target.read_text()
    except OSError as exc:
        raise EdgeError(INVALID_ARGUMENT, f"cannot read the admin key {target}: {exc.strerror or exc}") from None
    if mode & 0o077:
        raise EdgeError(
            INVALID_ARGUMENT,
            f"the admin key {target} is readable by others (mode {mode:o}); run: chmod 600 {target}",
        )
    raw = b64decode_loose(text)
    if len(raw) != 32:
        raise EdgeError(INVALID_ARGUMENT, f"{target} is not an admin key (expected the base64 of a 32-byte seed)")
    return SigningKey(raw)


def public_key_text(key: SigningKey | VerifyKey) -> str:
    verify = key.verify_key if isinstance(key, SigningKey) else key
    return _b64(bytes(verify))


# --- signing and checking ------------------------------------------------------------------------


def canonical(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def sign_command(
    key: SigningKey,
    command: str,
    args: dict[str, Any] | None = None,
    *,
    device_id: str,
    reply_to: str | None = None,
    ts: float | None = None,
    nonce: str | None = None,
) -> dict[str, Any]:
    """The signed command object (send it as JSON)."""
    fields: dict[str, Any] = {
        "v": VERSION,
        "command": command,
        "args": dict(args or {}),
        "device_id": device_id,
        "ts": round(time.time() if ts is None else ts, 3),
        "nonce": nonce or secrets.token_hex(16),
        "key": public_key_text(key),
    }
    if reply_to:
        fields["reply_to"] = reply_to
    fields["sig"] = _b64(key.sign(SIGNING_CONTEXT + canonical(fields)).signature)
    return fields


class NonceLog:
    """Nonces of accepted commands with their times, kept (atomically, fsynced) in one JSON file."""

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.path = Path(path) if path else None
        self.seen: dict[str, float] = {}
        if self.path and self.path.exists():
            try:
                data = json.loads(self.path.read_text())
                self.seen = {str(k): float(v) for k, v in data.items() if NONCE.fullmatch(str(k))}
            except (OSError, ValueError, AttributeError, TypeError):
                # A damaged log must not let replays through: refuse until someone looks.
                raise EdgeError(
                    INVALID_ARGUMENT,
                    f"the command nonce log {self.path} is unreadable; remove it only if no command was sent "
                    f"in the last few minutes",
                ) from None

    def add(self, nonce: str, ts: float, *, keep_after: float) -> None:
        self.seen = {n: t for n, t in self.seen.items() if t >= keep_after}
        self.seen[nonce] = ts
        if self.path:
            from edge.fs import atomic_write

            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, json.dumps(self.seen, separators=(",", ":")).encode(), mode=0o600)


class CommandVerifier:
    """Checks commands for one device: admin key, signature, device, freshness, nonce."""

    def __init__(
        self,
        admin_keys: Iterable[str],
        *,
        device_id: str,
        max_age: float = 120.0,
        nonce_log: str | os.PathLike[str] | None = None,
        clock: Callable[[], float] = time.time,
        groups: Iterable[str] = (),
    ) -> None:
        self.keys = {bytes(k): k for k in (parse_verify_key(t) for t in admin_keys)}
        self.device_id = device_id
        # Fleet enrolment (edge.admin.fleet): a command signed for "group:<g>" is for this device too
        # when <g> is one of its groups; every other check is the same.
        self.group_targets = {"group:" + g for g in groups}
        self.max_age = float(max_age)
        self.clock = clock
        self.nonces = NonceLog(nonce_log)
        self._lock = threading.Lock()

    def parse(self, payload: bytes | str) -> dict[str, Any]:
        """The command object from a message payload, or `CommandRefused("malformed", …)`."""
        return parse_json_object(payload)

    def signed(self, payload: bytes | str) -> bool:
        """Whether `payload` carries a valid signature of one of the admin keys (nothing else
        checked, nothing remembered): what may jump a queue full of unsigned traffic."""
        try:
            data = self.parse(payload)
            if "sig" not in data:
                return False
            self._check_signature(data)
            return True
        except (CommandRefused, ValueError, TypeError):
            return False

    def _check_signature(self, data: dict[str, Any]) -> None:
        """`data["sig"]` is a valid signature of the rest by one of the admin keys; else `CommandRefused`."""
        raw_key = b64decode_loose(data.get("key", "")) if isinstance(data.get("key"), str) else b""
        verify_key = self.keys.get(raw_key)
        if verify_key is None:
            raise CommandRefused("unknown_key", "the command is signed by a key that is not in mqtt.admin_keys")
        signature = b64decode_loose(data["sig"]) if isinstance(data["sig"], str) else b""
        signed = {k: v for k, v in data.items() if k != "sig"}
        try:
            verify_key.verify(SIGNING_CONTEXT + canonical(signed), signature)
        except (BadSignatureError, ValueError, TypeError):
            raise CommandRefused(
                "bad_signature", "the signature does not verify: the command was altered or forged"
            ) from None

    def verify(self, data: dict[str, Any]) -> dict[str, Any]:
        """`data` if it is a genuine, fresh, first-seen command for this device; else `CommandRefused`."""
        if "sig" not in data:
            raise CommandRefused("unsigned", "the command is not signed (no 'sig'); use `edge admin send`")
        if not self.keys:
            raise CommandRefused("no_admin_keys", "this device has no admin keys configured (mqtt.admin_keys)")
        command, args, ts, nonce = data.get("command"), data.get("args", {}), data.get("ts"), data.get("nonce")
        if data.get("v") != VERSION:
            raise CommandRefused("malformed", f"unsupported command version {data.get('v')!r} (this device: {VERSION})")
        if not isinstance(command, str) or not COMMAND_NAME.fullmatch(command):
            raise CommandRefused("malformed", "'command' must be a command name")
        if not isinstance(args, dict):
            raise CommandRefused("malformed", "'args' must be an object")
        if isinstance(ts, bool) or not isinstance(ts, (int, float)) or not math.isfinite(ts):
            raise CommandRefused("malformed", "'ts' must be the signing time in epoch seconds")
        if not isinstance(nonce, str) or not NONCE.fullmatch(nonce):
            raise CommandRefused("malformed", "'nonce' must be 32 lowercase hex digits")
        self._check_signature(data)
        target = data.get("device_id")
        if isinstance(target, str) and target.startswith("group:"):
            if target not in self.group_targets:
                raise CommandRefused(
                    "wrong_group", f"the command is for {target!r}; this device is in no such group (mqtt.groups)"
                )
        elif target != self.device_id:
            raise CommandRefused(
                "wrong_device", f"the command is for device {data.get('device_id')!r}, this is {self.device_id!r}"
            )
        now = self.clock()
        if abs(now - ts) > self.max_age:
            raise CommandRefused(
                "stale",
                f"the command was signed {now - ts:+.0f} s from this device's clock (allowed ±{self.max_age:g} s); "
                f"check both clocks",
            )
        with self._lock:
            if nonce in self.nonces.seen:
                raise CommandRefused("replayed", "this command (its nonce) was already received; refusing a replay")
            self.nonces.add(nonce, float(ts), keep_after=now - self.max_age)
        return data
