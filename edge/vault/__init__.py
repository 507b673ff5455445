"""The encrypted enrolment vault: device keys, sealed photos, encrypted templates, 1:N search.

    from edge.engine import Engine
    from edge.vault import Vault, enroll, identify

    vault = Vault.init("/var/lib/edge/vault")          # once: creates the device key pair
    vault = Vault.open("/var/lib/edge/vault")          # afterwards (refuses a group/other-readable key)
    engine = Engine()
    enroll(engine, vault, "Ada Lovelace", ["ada1.jpg", "ada2.jpg"])
    identify(engine, vault, "door.jpg")                # {"code": 1000, "name": "Ada Lovelace", "score": …}

See docs/vault.md for the file layout, the cryptography and the threat model. Importing this
package loads no models: the engine is always passed in.
"""

from edge.vault.bundle import Bundle, make_bundle, open_bundle
from edge.vault.enroll import RebuildReport, check_photo, enroll, import_bundle, model_version, rebuild
from edge.vault.errors import KeyPermissionError, RecordError, VaultError
from edge.vault.identify import DEFAULT_THRESHOLD, Gallery, Match, identify, identify_embedding, vault_gallery
from edge.vault.keys import init_keys, load_private_key, parse_public_key, public_key_b64
from edge.vault.sealed import SealedImage, open_sealed, seal_image, unseal_image
from edge.vault.store import Entry, Person, RevokeReport, TemplateSet, Vault, validate_name

__all__ = [
    "DEFAULT_THRESHOLD",
    "Bundle",
    "Entry",
    "Gallery",
    "KeyPermissionError",
    "Match",
    "Person",
    "RebuildReport",
    "RecordError",
    "RevokeReport",
    "SealedImage",
    "TemplateSet",
    "Vault",
    "VaultError",
    "check_photo",
    "enroll",
    "identify",
    "identify_embedding",
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
