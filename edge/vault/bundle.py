"""Remote enrolment bundles: photos of one person, sealed to one device's public key.

An administrator runs `edge enroll --seal-for PUBKEY -o BUNDLE NAME PHOTO…` on any machine:
no vault, no device secret, no models needed. The bundle carries the name and the photos as
given (each one checked to be a complete, decodable image of an allowed size); the device
runs the quality gate and computes the templates with its own models when it imports it
(`edge enroll --vault DIR --import BUNDLE`), so a bundle never depends on a model version.

    bundle    = MAGIC ("EDGE-ENROLMENT-BUNDLE-1\\n") + SealedBox(device public key, plaintext)
    plaintext = header length (4 bytes, big-endian) + header (JSON) + the photos, concatenated
    header    = {"format", "v", "name", "created", "bundle_id", "photos": [{"label", "size"}, …]}

What this proves. SealedBox is X25519 + XSalsa20-Poly1305 with an ephemeral sender key: only
the holder of the device's private key can open the bundle, and any change to the bytes
(one flipped bit, a truncation, an appended byte) makes it fail to open, so a modified bundle
is refused as a whole. What it does not prove: who made it. Anyone who has the device's
public key (it is public) can make a valid bundle for any name; a bundle can also be imported
again after its person was revoked (the vault refuses a second import of the same bundle only
while the first one is enrolled). Who may enrol is therefore decided by who may run
`--import` on the device. Origin authentication would need the administrator to sign the
bundle (e.g. an Ed25519 `nacl.signing` key whose public half the device trusts); not done yet.
"""

from __future__ import annotations

import json
import os
import secrets
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

from edge.errors import INVALID_ARGUMENT, EdgeError
from edge.images import DEFAULT_LIMITS, IntakeLimits, decode_image
from edge.vault.photos import PhotoSource, describe, read_photos
from edge.vault.store import MAX_PHOTOS, validate_name

MAGIC = b"EDGE-ENROLMENT-BUNDLE-1\n"
FORMAT = "edge-enrolment-bundle"
VERSION = 1


@dataclass(frozen=True)
class Bundle:
    name: str
    created: str
    bundle_id: str
    photos: list[tuple[str, bytes]] = field(repr=False)  # (label, encoded photo)


def max_bundle_bytes(limits: IntakeLimits = DEFAULT_LIMITS) -> int:
    """The largest bundle `open_bundle` takes: MAX_PHOTOS photos of the largest size, and the header."""
    return len(MAGIC) + 64 + (1 << 16) + MAX_PHOTOS * limits.content_limit  # header room + the photos


def make_bundle(
    public_key: PublicKey,
    name: str,
    photos: Sequence[PhotoSource],
    *,
    limits: IntakeLimits = DEFAULT_LIMITS,
) -> bytes:
    """Seal one person's photos (paths, bytes, or (label, bytes) pairs) to a device's public key."""
    name = validate_name(name)
    photos = read_photos(photos, limits)
    if not photos:
        raise EdgeError(INVALID_ARGUMENT, "a bundle needs at least one photo")
    if len(photos) > MAX_PHOTOS:
        raise EdgeError(INVALID_ARGUMENT, f"{len(photos)} photos; a bundle holds at most {MAX_PHOTOS}")
    entries = []
    for i, (label, data) in enumerate(photos, 1):
        try:
            decode_image(data, limits=limits)  # complete, decodable, of an allowed size: fail here, not on the device
        except EdgeError as exc:
            raise EdgeError(exc.code, f"{describe(i, label)}: {exc.message}") from None
        entries.append({"label": os.path.basename(str(label))[:200], "size": len(data)})
    header = {
        "format": FORMAT,
        "v": VERSION,
        "name": name,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "bundle_id": secrets.token_hex(16),
        "photos": entries,
    }
    head = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    plaintext = struct.pack(">I", len(head)) + head + b"".join(bytes(data) for _, data in photos)
    return MAGIC + SealedBox(public_key).encrypt(plaintext)


def open_bundle(
    data: bytes | str | os.PathLike[str], private_key: PrivateKey, *, limits: IntakeLimits = DEFAULT_LIMITS
) -> Bundle:
    """Open and check a bundle (bytes or a path); EdgeError(1200) when it is not one or does not open."""
    shown = "the bundle"
    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        shown = f"bundle {str(path)!r}"
        try:
            if path.stat().st_size > max_bundle_bytes(limits):
                raise EdgeError(INVALID_ARGUMENT, f"{shown} is larger than any bundle can be")
            data = path.read_bytes()
        except OSError as exc:
            raise EdgeError(INVALID_ARGUMENT, f"cannot read {shown}: {exc.strerror or exc}") from None
    data = bytes(data)
    if not data.startswith(MAGIC):
        raise EdgeError(INVALID_ARGUMENT, f"{shown} is not an edge enrolment bundle (its first bytes are wrong)")
    try:
        plaintext = SealedBox(private_key).decrypt(data[len(MAGIC) :])
    except CryptoError:
        raise EdgeError(
            INVALID_ARGUMENT,
            f"{shown} does not open with this device's key: it was modified or truncated after it was made, "
            "or sealed for another device; refused",
        ) from None
    try:
        (size,) = struct.unpack_from(">I", plaintext)
        header = json.loads(plaintext[4 : 4 + size])
        if header.get("format") != FORMAT or header.get("v") != VERSION:
            raise ValueError(f"format {header.get('format')!r} version {header.get('v')!r}")
        body = memoryview(plaintext)[4 + size :]
        sizes = [int(p["size"]) for p in header["photos"]]
        if sum(sizes) != len(body) or not sizes or min(sizes) < 0 or len(sizes) > MAX_PHOTOS:
            raise ValueError("photo sizes do not add up")
        photos, offset = [], 0
        for entry, n in zip(header["photos"], sizes):
            photos.append((str(entry.get("label", "")), bytes(body[offset : offset + n])))
            offset += n
        return Bundle(
            name=validate_name(header["name"]),
            created=str(header["created"]),
            bundle_id=str(header["bundle_id"]),
            photos=photos,
        )
    except EdgeError:
        raise
    except (struct.error, ValueError, KeyError, TypeError) as exc:
        raise EdgeError(INVALID_ARGUMENT, f"{shown} opens but its content is not a valid bundle ({exc})") from None


__all__ = ["MAGIC", "Bundle", "make_bundle", "open_bundle"]
