"""Images sent to the device encrypted: sealed to its public key (nacl.public.SealedBox).

A client seals the encoded photo (JPEG, PNG, ...) to the device's public key, as the classic
API's `first_encrypted_image` / `second_encrypted_image` carry it, raw or base64:

    from nacl.public import PublicKey, SealedBox
    sealed = SealedBox(PublicKey(base64.b64decode(DEVICE_PUB))).encrypt(jpeg_bytes)  # = seal_image(...)

On the device `unseal_image` / `open_sealed` turn it back into the encoded photo, which then
goes through the ordinary intake (`edge.images.decode_image`, via `Engine.verify`, ...), so
every size, type and corruption check still applies. SealedBox authenticates: a ciphertext that
was modified, truncated, sealed to another device or is no ciphertext at all does not open,
and that is a 1200 saying so. Anyone with the public key can seal an image; sealing protects
the photo in transit and at rest, it does not prove who sent it.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

from edge.errors import INVALID_ARGUMENT, INVALID_CONTENT_LENGTH, EdgeError
from edge.images import DEFAULT_LIMITS, IntakeLimits

if TYPE_CHECKING:
    from edge.vault.store import Vault

OVERHEAD = PublicKey.SIZE + 16  # ephemeral public key + Poly1305 tag
_B64 = re.compile(rb"[A-Za-z0-9+/\-_=\s]+")
_DOES_NOT_OPEN = (
    "does not open with this device's key: it was modified or truncated, sealed to another device's "
    "public key, or is not a sealed image"
)


def seal_image(image: bytes, public_key: PublicKey | bytes | str) -> bytes:
    """Encrypt an encoded photo to a device's public key (raw SealedBox ciphertext)."""
    from edge.vault.keys import parse_public_key

    if isinstance(public_key, str):
        public_key = parse_public_key(public_key)
    elif isinstance(public_key, bytes):
        public_key = PublicKey(public_key)
    return SealedBox(public_key).encrypt(bytes(image))


def _b64decode(text: bytes) -> bytes | None:
    clean = re.sub(rb"\s+", b"", text)
    if clean[:5].lower() == b"data:":
        clean = clean.partition(b",")[2]
    body = clean.rstrip(b"=")
    if len(body) % 4 == 1:
        return None
    altchars = b"-_" if (b"-" in body or b"_" in body) else None
    try:
        return base64.b64decode(body + b"=" * (-len(body) % 4), altchars=altchars, validate=True)
    except (binascii.Error, ValueError):
        return None


def open_sealed(
    data: bytes | bytearray | memoryview | str,
    private_key: PrivateKey,
    *,
    limits: IntakeLimits = DEFAULT_LIMITS,
    label: str = "the encrypted image",
) -> bytes:
    """The plaintext of a SealedBox ciphertext given raw (bytes) or base64 (str, or ASCII bytes).

    Raises EdgeError(1200) "… does not open with this device's key …" when it does not
    authenticate, and 2004 when it is empty or larger than the intake limit allows.
    """
    if isinstance(data, str):
        raw = _b64decode(data.encode("ascii", "replace"))
        if raw is None:
            raise EdgeError(INVALID_ARGUMENT, f"{label} is not valid base64 (expected a base64 sealed image)")
        candidates = [raw]
    elif isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
        candidates = [raw]
        if _B64.fullmatch(raw or b"-"):  # base64 text given as bytes (e.g. read from a .b64 file)
            decoded = _b64decode(raw)
            if decoded is not None:
                candidates.insert(0, decoded)
    else:
        raise EdgeError(INVALID_ARGUMENT, f"{label}: expected bytes or a base64 string, got {type(data).__name__}")
    size = len(candidates[-1])
    if size == 0:
        raise EdgeError(INVALID_CONTENT_LENGTH, f"{label} is empty")
    if size > limits.content_limit + OVERHEAD:  # the same content-length rule (2004) as a clear upload
        raise EdgeError(
            INVALID_CONTENT_LENGTH, f"{label} is {size} bytes; the photo inside may be at most {limits.content_limit}"
        )
    box = SealedBox(private_key)
    for candidate in candidates:
        if len(candidate) <= OVERHEAD:
            continue
        try:
            return box.decrypt(candidate)
        except CryptoError:
            continue
    raise EdgeError(INVALID_ARGUMENT, f"{label} {_DOES_NOT_OPEN}")


def _private_key(key: Vault | PrivateKey | str | os.PathLike[str]) -> PrivateKey:
    if isinstance(key, PrivateKey):
        return key
    from edge.vault.keys import load_private_key

    if isinstance(key, (str, os.PathLike)):
        return load_private_key(key)
    return key.private_key


def unseal_image(
    source: Any,
    key: Vault | PrivateKey | str | os.PathLike[str],
    *,
    limits: IntakeLimits = DEFAULT_LIMITS,
    allow_paths: bool = True,
    label: str = "the encrypted image",
) -> bytes:
    """The encoded photo inside a sealed image, ready for `Engine.verify`, `faces`, `compare_faces`.

    `source`: raw ciphertext (bytes), base64 (str or ASCII bytes), or -- with `allow_paths` --
    a path to a file holding either. `key`: a `Vault`, its directory, or a `PrivateKey`.

        from edge.vault import Vault, unseal_image
        vault = Vault.open("/var/lib/edge/vault")
        engine.verify(unseal_image(first_encrypted_image, vault), unseal_image(second_encrypted_image, vault))
    """
    private_key = _private_key(key)
    if isinstance(source, os.PathLike) or (
        allow_paths and isinstance(source, str) and len(source) < 4096 and "\n" not in source and _is_file(source)
    ):
        if not allow_paths:
            raise EdgeError(INVALID_ARGUMENT, "file paths are not accepted here; send the ciphertext")
        path = Path(source)
        try:
            size = path.stat().st_size
            if size > limits.content_limit * 2 + 4 * OVERHEAD:  # base64 of the largest allowed photo, with room
                raise EdgeError(INVALID_ARGUMENT, f"{label} file {str(path)!r} is {size} bytes: too large")
            source = path.read_bytes()
        except OSError as exc:
            raise EdgeError(INVALID_ARGUMENT, f"cannot read {label} {str(path)!r}: {exc.strerror or exc}") from None
    return open_sealed(source, private_key, limits=limits, label=label)


@dataclass(frozen=True)
class SealedImage:
    """An image sealed to the device key, accepted wherever the engine takes an image.

        engine.verify(SealedImage(first_encrypted_image, vault), SealedImage(second, vault))

    `data` is the raw ciphertext or its base64; `key` a `Vault`, its directory or a
    `PrivateKey`. The intake stage opens it (`unseal`) and checks the photo inside like
    any other upload; a ciphertext that does not open is 1200.
    """

    data: bytes | str
    key: Any = field(repr=False)

    def unseal(self, *, limits: IntakeLimits = DEFAULT_LIMITS) -> bytes:
        return unseal_image(self.data, self.key, limits=limits, allow_paths=False)


def _is_file(text: str) -> bool:
    try:
        return Path(text).is_file()
    except (OSError, ValueError):
        return False


__all__ = ["OVERHEAD", "open_sealed", "seal_image", "unseal_image"]
