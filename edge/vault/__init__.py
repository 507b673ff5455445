"""The encrypted enrolment vault: device keys, sealed photos, encrypted templates.

    from edge import Engine
    from edge.vault import Vault, enroll, vault_gallery

    vault = Vault.init("/var/lib/edge/vault")          # once: creates the device key pair
    vault = Vault.open("/var/lib/edge/vault")          # afterwards (refuses a group/other-readable key,
                                                       # a group/other-writable directory)
    engine = Engine()
    enroll(engine, vault, "Ada Lovelace", ["ada1.jpg", "ada2.jpg"])
    engine.identify("door.jpg", vault_gallery(engine, vault))  # {"code": 1000, "name": "Ada Lovelace", …}

See docs/vault.md for the file layout, the cryptography and the threat model. Importing this
package loads no models: the engine is always passed in. The vault only stores: it hands its
templates to the matcher (`edge.matching.Gallery`) through `vault_gallery`.
"""

from edge.vault.bundle import Bundle, make_bundle, open_bundle
from edge.vault.enroll import RebuildReport, check_photo, enroll, import_bundle, model_version, rebuild
from edge.vault.errors import KeyPermissionError, RecordError, VaultError, VaultIndexError, VaultPermissionError
from edge.vault.gallery import gallery_of, vault_gallery
from edge.vault.keys import init_keys, load_private_key, parse_public_key, public_key_b64
from edge.vault.sealed import SealedImage, open_sealed, seal_image, unseal_image
from edge.vault.store import Entry, Person, ReindexReport, RevokeReport, TemplateSet, Vault, validate_name

__all__ = [
    "Bundle",
    "Entry",
    "KeyPermissionError",
    "Person",
    "RebuildReport",
    "RecordError",
    "ReindexReport",
    "RevokeReport",
    "SealedImage",
    "TemplateSet",
    "Vault",
    "VaultError",
    "VaultIndexError",
    "VaultPermissionError",
    "check_photo",
    "enroll",
    "gallery_of",
    "import_bundle",
    "init_keys",
    "load_private_key",
    "make_bundle",
    "model_version",
    "open_bundle",
    "open_sealed",
    "parse_public_key",
    "public_key_b64",
    "rebuild",
    "seal_image",
    "unseal_image",
    "validate_name",
    "vault_gallery",
]
