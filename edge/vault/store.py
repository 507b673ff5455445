"""The vault: enrolled people, their sealed photos and their encrypted templates, on disk.

Layout (names never appear in clear; every `.rec` file is one authenticated record, see
`edge.vault.records`):

    VAULT/
      device.key  device.pub             the device key pair (edge.vault.keys)
      .lock                              writers hold an exclusive flock on it
      people/<person>/<entry>/           <person>, <entry>: random 128-bit ids (hex)
          meta.rec                       SecretBox: name, date, source, sha256 of each photo record
          photo-<i>.rec                  SealedBox to the device key: one photo as it was enrolled
          template-<i>.<model>.rec       SecretBox: photo i's template (float32) from model version <model>
      staging/                           enrolments being written, people being revoked
      generation                         a random token: "pending-…" while a change is under way, a
                                         new token once it is committed

One enrolment (one `edge enroll`, or one imported bundle) is one entry. It is written whole in
`staging/`, each file atomically (`edge.fs.atomic_write`), then made visible by one
directory rename: `staging/new-<person>` → `people/<person>` for someone new, or
`staging/add-<entry>` → `people/<person>/<entry>` for more photos of someone known. A revoke
renames `people/<person>` into `staging/` (the person is gone at that instant), then
overwrites and unlinks every file. A kill at any point leaves `people/` holding complete entries
only; the next writer shreds whatever is left in `staging/` and any temporary file.

Readers take no lock and never write; writers (enrol, import, revoke, rebuild) hold `.lock`.
A long-running reader (the appliance) notices other processes' changes -- a revoke must take
effect at once -- by `Vault.generation()`, which `edge.vault.gallery.vault_gallery` checks on
every search before reusing its cached gallery. A writer marks the generation "pending" before
its first change and gives it a new token when it is done; a reader caches nothing while it is
pending, so a writer killed mid-change (say, between hiding a revoked person and shredding the
files) can never leave a reader with a stale cache: until the next writer finishes the
recovery, readers just reread the vault.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import threading
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from nacl.public import PrivateKey, PublicKey

from edge.errors import INVALID_ARGUMENT, EdgeError
from edge.fs import atomic_write, exclusive_lock, fsync_dir, is_temporary, shred, shred_tree
from edge.vault import keys
from edge.vault.errors import RecordError, VaultError
from edge.vault.records import open_record, seal_public, seal_secret

PEOPLE = "people"
STAGING = "staging"
LOCK = ".lock"
GENERATION = "generation"
META = "meta.rec"
NAME_MAX_CHARS = 64
MAX_PHOTOS = 20  # per enrolment
_ID = re.compile(r"[0-9a-f]{32}")
_PHOTO = re.compile(r"photo-(\d+)\.rec")
_TEMPLATE = re.compile(r"template-(\d+)\.([0-9a-f]{1,64})\.rec")
_NAME_PUNCTUATION = frozenset(" .-'_")


def validate_name(name: str) -> str:
    """The name, NFC-normalised, or EdgeError(1200) saying what is wrong with it.

    1 to 64 characters; letters (any script, with their accents), digits, spaces and . - ' _;
    it must start with a letter or a digit and not end with a space.
    """
    if not isinstance(name, str):
        raise EdgeError(INVALID_ARGUMENT, f"a name must be text, got {type(name).__name__}")
    norm = unicodedata.normalize("NFC", name)
    shown = norm if len(norm) <= 80 else norm[:77] + "..."
    if not norm.strip():
        raise EdgeError(INVALID_ARGUMENT, "invalid name: it is empty")
    if len(norm) > NAME_MAX_CHARS:
        raise EdgeError(INVALID_ARGUMENT, f"invalid name {shown!r}: {len(norm)} characters, at most {NAME_MAX_CHARS}")
    for ch in norm:
        category = unicodedata.category(ch)
        if not (category[0] in "LM" or category == "Nd" or ch in _NAME_PUNCTUATION):
            described = unicodedata.name(ch, f"U+{ord(ch):04X}")
            raise EdgeError(
                INVALID_ARGUMENT,
                f"invalid name {shown!r}: the character {ch!r} ({described}) is not allowed; "
                "use letters, digits, spaces and . - ' _",
            )
    if not (unicodedata.category(norm[0])[0] == "L" or unicodedata.category(norm[0]) == "Nd"):
        raise EdgeError(INVALID_ARGUMENT, f"invalid name {shown!r}: it must start with a letter or a digit")
    if norm[-1] == " ":
        raise EdgeError(INVALID_ARGUMENT, f"invalid name {shown!r}: it ends with a space")
    return norm


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Entry:
    """One enrolment: who, when, how many photos (from its authenticated meta record)."""

    person: str  # person id (directory name)
    entry: str  # entry id (directory name)
    name: str
    created: str  # ISO 8601, UTC
    photos: int
    source: str  # "local" or "bundle"
    bundle_id: str | None
    photo_sha256: tuple[str, ...] = field(repr=False)

    @property
    def path(self) -> str:
        return f"{PEOPLE}/{self.person}/{self.entry}"


@dataclass(frozen=True)
class Person:
    """What `edge people` shows: never templates."""

    name: str
    photos: int
    enrolled: str  # first entry's date
    updated: str  # last entry's date
    entries: int
    templates: int | None = None  # photos with a template of the asked model version (None: not asked)

    def to_dict(self) -> dict:
        out = {
            "name": self.name,
            "photos": self.photos,
            "enrolled": self.enrolled,
            "updated": self.updated,
            "entries": self.entries,
        }
        if self.templates is not None:
            out["templates"] = self.templates
        return out


@dataclass
class TemplateSet:
    """Every usable template of one model version, grouped by person (rows of one person are contiguous)."""

    model_version: str
    names: list[str]  # one per person
    owners: np.ndarray  # (n,) int32: row → index into names
    matrix: np.ndarray  # (n, d) float32
    problems: list[RecordError]
    stale: int  # template files of other model versions (never used; `edge vault rebuild`)
    missing: int  # photos without a template of this version


@dataclass
class RevokeReport:
    name: str
    entries: int
    photos: int
    files: int  # files overwritten and unlinked


class Vault:
    """A vault directory opened with the device's private key. Cheap to open; reads are lock-free."""

    def __init__(self, directory: str | os.PathLike[str], private_key: PrivateKey) -> None:
        self.directory = Path(directory)
        self.private_key = private_key
        self.public_key: PublicKey = private_key.public_key
        self._record_key = keys.record_key(private_key)
        self._write_depth = 0
        self._changed = False
        # entries() cache: (generation, entries, problems); kept up to date by this object's own
        # writes while it holds the lock (`_tracking`), so bulk enrolment does not reread everything.
        self._entries: tuple[str, list[Entry], list[RecordError]] | None = None
        self._tracking = False
        self._thread_lock = threading.RLock()  # the flock excludes processes; this, threads sharing the object
        self._cache: dict[tuple, object] = {}  # derived data (galleries), keyed with the generation

    # --- opening -------------------------------------------------------------------------

    @classmethod
    def open(cls, directory: str | os.PathLike[str]) -> Vault:
        """Open an existing vault: loads the private key (refused if group/other-accessible)."""
        return cls(directory, keys.load_private_key(directory))

    @classmethod
    def init(cls, directory: str | os.PathLike[str]) -> Vault:
        """Create a new vault with a new device key pair (refuses to replace an existing key)."""
        keys.init_keys(directory)
        vault = cls.open(directory)
        with vault.writing():
            pass  # creates people/ and staging/
        return vault

    @property
    def public_key_b64(self) -> str:
        return keys.public_key_b64(self.public_key)

    def _rel(self, path: Path) -> str:
        return path.relative_to(self.directory).as_posix()

    # --- writers -------------------------------------------------------------------------

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the writer lock (re-entrant); on first entry finish what an interrupted writer left."""
        with self._thread_lock:
            if self._write_depth:
                self._write_depth += 1
                try:
                    yield
                finally:
                    self._write_depth -= 1
                return
            with exclusive_lock(self.directory / LOCK):
                self._write_depth = 1
                try:
                    self._recover()
                    current = self.generation()
                    self._tracking = self._entries is not None and self._entries[0] == current and cacheable(current)
                    try:
                        yield
                    except BaseException:
                        self._tracking = False  # a change may be half-applied to the cache: drop it
                        raise
                finally:
                    self._write_depth = 0
                    self._cache.clear()
                    if self._changed:
                        self._changed = False
                        token = self._set_generation(secrets.token_hex(16))
                        if self._tracking and self._entries is not None:
                            self._entries = (token, *self._entries[1:])
                        else:
                            self._entries = None
                    self._tracking = False

    def generation(self) -> str:
        """A token that changes with every committed change (by any process); "" before the first.

        "pending-…" while a writer is changing the vault (or was killed doing so): not cacheable.
        """
        try:
            return (self.directory / GENERATION).read_text().strip()
        except (FileNotFoundError, NotADirectoryError):
            return ""

    def _set_generation(self, token: str) -> str:
        atomic_write(self.directory / GENERATION, token.encode() + b"\n", mode=0o644)
        return token

    def _begin_change(self) -> None:
        """Before the first change of a write: mark the generation pending (readers stop caching)."""
        self._require_lock()
        if not self._changed:
            self._set_generation("pending-" + secrets.token_hex(16))
            self._changed = True

    def _recover(self) -> None:
        """Shred leftovers of interrupted writers: staged entries, half-revoked people, temporary files."""
        for sub in (PEOPLE, STAGING):
            path = self.directory / sub
            if not path.is_dir():
                path.mkdir(mode=0o700, exist_ok=True)
                fsync_dir(self.directory)
        staging = self.directory / STAGING
        for child in staging.iterdir():
            if child.is_dir() and not child.is_symlink():
                shred_tree(child)
            else:
                shred(child)
        fsync_dir(staging)
        for name in os.listdir(self.directory):
            if is_temporary(name):
                shred(self.directory / name)
        if not cacheable(self.generation()):  # a writer died mid-change, or no token yet: settle it
            self._set_generation(secrets.token_hex(16))
        for person in self._dirs(self.directory / PEOPLE):
            for entry in self._dirs(person):
                dirty = False
                for name in os.listdir(entry):
                    if is_temporary(name):
                        shred(entry / name)
                        dirty = True
                if dirty:
                    fsync_dir(entry)

    @staticmethod
    def _dirs(path: Path) -> list[Path]:
        try:
            names = sorted(os.listdir(path))
        except FileNotFoundError:
            return []
        return [path / n for n in names if _ID.fullmatch(n) and (path / n).is_dir()]

    def _require_lock(self) -> None:
        if not self._write_depth:
            raise RuntimeError("vault writes must happen inside `with vault.writing():`")

    # --- entries -------------------------------------------------------------------------

    def entries(self) -> tuple[list[Entry], list[RecordError]]:
        """Every committed entry whose meta record opens, and the problems with the others.

        Readers always read the meta records afresh. A writer holding the lock reuses what this
        object read last, if the vault's generation has not moved since, plus its own changes:
        enrolling many people through one `Vault` does not reread every entry each time.
        """
        generation = self.generation()
        cached = self._entries
        if cached is not None and self._write_depth and self._tracking:
            return list(cached[1]), list(cached[2])
        found, problems = self._scan_entries()
        if cacheable(generation) and not (self._write_depth and self._changed):
            self._entries = (generation, found, problems)
            self._tracking = bool(self._write_depth)
        else:
            self._entries = None
        return list(found), list(problems)

    def _scan_entries(self) -> tuple[list[Entry], list[RecordError]]:
        found: list[Entry] = []
        problems: list[RecordError] = []
        for person in self._dirs(self.directory / PEOPLE):
            for entry_dir in self._dirs(person):
                try:
                    found.append(self._read_meta(person.name, entry_dir.name))
                except RecordError as exc:
                    if entry_dir.is_dir():  # else revoked while we were reading: not a problem
                        problems.append(exc)
        found.sort(key=lambda e: (e.created, e.entry))
        return found, problems

    def _read_record_file(self, path: Path, *, missing: str) -> tuple[str, bytes]:
        """(the record's name for errors, its bytes); a missing or unreadable file is a RecordError."""
        rel = self._rel(path)
        try:
            return rel, path.read_bytes()
        except FileNotFoundError:
            raise RecordError(rel, missing) from None
        except OSError as exc:
            raise RecordError(rel, f"unreadable: {exc.strerror or exc}") from None

    def _read_meta(self, person: str, entry: str) -> Entry:
        path = self.directory / PEOPLE / person / entry / META
        rel, data = self._read_record_file(path, missing="missing: the entry has no meta record")
        header, _ = open_record(
            data,
            record=rel,
            secret_key=self._record_key,
            expect={"kind": "meta", "person": person, "entry": entry, "record": "meta"},
        )
        try:
            hashes = tuple(str(h) for h in header["photos"])
            return Entry(
                person=person,
                entry=entry,
                name=str(header["name"]),
                created=str(header["created"]),
                photos=len(hashes),
                source=str(header.get("source", "local")),
                bundle_id=header.get("bundle_id"),
                photo_sha256=hashes,
            )
        except (KeyError, TypeError):
            raise RecordError(rel, "authenticated but incomplete (no name, date or photo list)") from None

    def find(self, name: str) -> list[Entry]:
        """The entries of the person called exactly `name` (after NFC normalisation)."""
        wanted = unicodedata.normalize("NFC", name)
        return [e for e in self.entries()[0] if e.name == wanted]

    def people(self, model_version: str | None = None) -> tuple[list[Person], list[RecordError]]:
        """Names, photo counts and dates (from the meta records only: no photo or template is opened)."""
        entries, problems = self.entries()
        by_name: dict[str, list[Entry]] = {}
        for e in entries:
            by_name.setdefault(e.name, []).append(e)
        out = []
        for name, group in by_name.items():
            templates = None
            if model_version is not None:
                templates = sum(
                    (self.directory / e.path / f"template-{i}.{model_version}.rec").exists()
                    for e in group
                    for i in range(e.photos)
                )
            out.append(
                Person(
                    name=name,
                    photos=sum(e.photos for e in group),
                    enrolled=min(e.created for e in group),
                    updated=max(e.created for e in group),
                    entries=len(group),
                    templates=templates,
                )
            )
        out.sort(key=lambda p: p.name.casefold())
        return out, problems

    def add_entry(
        self,
        name: str,
        photos: Sequence[bytes],
        templates: np.ndarray | None = None,
        model_version: str | None = None,
        *,
        source: str = "local",
        bundle_id: str | None = None,
    ) -> Entry:
        """Store one enrolment (photos as given, already checked; templates row i ↔ photo i) atomically.

        This is the storage step only: `edge.vault.enroll.enroll` runs the quality gate and
        computes the templates. A new name becomes a new person; a known name gets more photos.
        """
        name = validate_name(name)
        if not photos:
            raise EdgeError(INVALID_ARGUMENT, "an enrolment needs at least one photo")
        if len(photos) > MAX_PHOTOS:
            raise EdgeError(INVALID_ARGUMENT, f"{len(photos)} photos in one enrolment; at most {MAX_PHOTOS}")
        if templates is not None:
            templates = np.ascontiguousarray(templates, dtype="<f4")
            if templates.ndim != 2 or templates.shape[0] != len(photos) or model_version is None:
                raise ValueError("templates must be (photos, dim) with a model_version")
            _check_model_version(model_version)
        with self.writing():
            entries, _ = self.entries()
            person = next((e.person for e in entries if e.name == name), None)
            if person is None:
                clash = next((e.name for e in entries if e.name.casefold() == name.casefold()), None)
                if clash is not None:
                    raise EdgeError(
                        INVALID_ARGUMENT,
                        f"{name!r} differs only in letter case from the enrolled {clash!r}; "
                        "use the same spelling to add photos, or revoke the other first",
                    )
            if bundle_id is not None:
                done = next((e for e in entries if e.bundle_id == bundle_id), None)
                if done is not None:
                    raise EdgeError(
                        INVALID_ARGUMENT, f"this bundle was imported already ({done.name!r}, {done.created})"
                    )
            new_person = person is None
            person = person or secrets.token_hex(16)
            entry = secrets.token_hex(16)
            staging = self.directory / STAGING
            if new_person:
                stage_root = staging / f"new-{person}"
                stage = stage_root / entry
            else:
                stage_root = stage = staging / f"add-{entry}"
            stage.mkdir(parents=True, mode=0o700)
            fsync_dir(stage.parent)
            if new_person:
                fsync_dir(staging)
            where = {"person": person, "entry": entry}
            hashes = []
            for i, photo in enumerate(photos):
                record = seal_public(self.public_key, {"kind": "photo", **where, "record": f"photo-{i}"}, bytes(photo))
                atomic_write(stage / f"photo-{i}.rec", record)
                hashes.append(hashlib.sha256(record).hexdigest())
            if templates is not None:
                for i, row in enumerate(templates):
                    self._write_template_file(stage, where, i, row, model_version)
            meta = {
                "kind": "meta",
                **where,
                "record": "meta",
                "name": name,
                "created": _now(),
                "photos": hashes,
                "source": source,
                "bundle_id": bundle_id,
            }
            atomic_write(stage / META, seal_secret(self._record_key, meta))
            # The commit: one rename makes the whole entry visible.
            target_parent = self.directory / PEOPLE if new_person else self.directory / PEOPLE / person
            self._begin_change()
            os.rename(stage_root, target_parent / (person if new_person else entry))
            fsync_dir(target_parent)
            fsync_dir(staging)
            added = self._read_meta(person, entry)
            if self._tracking and self._entries is not None:
                self._entries[1].append(added)
            return added

    def _write_template_file(
        self, entry_dir: Path, where: dict, index: int, row: np.ndarray, model_version: str
    ) -> None:
        row = np.ascontiguousarray(row, dtype="<f4")
        record_name = f"template-{index}.{model_version}"
        header = {
            "kind": "template",
            **where,
            "record": record_name,
            "photo": index,
            "model_version": model_version,
            "dim": int(row.shape[0]),
            "dtype": "float32",
        }
        atomic_write(entry_dir / f"{record_name}.rec", seal_secret(self._record_key, header, row.tobytes()))

    def write_template(self, entry: Entry, index: int, template: np.ndarray, model_version: str) -> None:
        """Store (or replace) photo `index`'s template of `model_version` (atomic); inside `writing()`."""
        self._require_lock()
        _check_model_version(model_version)
        if not 0 <= index < entry.photos:
            raise ValueError(f"entry {entry.entry} has {entry.photos} photos, no photo {index}")
        self._begin_change()
        self._write_template_file(
            self.directory / entry.path, {"person": entry.person, "entry": entry.entry}, index, template, model_version
        )
        self._cache.clear()

    def drop_templates(self, entry: Entry, keep_model_version: str) -> int:
        """Overwrite and unlink the entry's templates of every other model version; inside `writing()`."""
        self._require_lock()
        entry_dir = self.directory / entry.path
        dropped = 0
        for name in sorted(os.listdir(entry_dir)):
            m = _TEMPLATE.fullmatch(name)
            if m and m.group(2) != keep_model_version:
                self._begin_change()
                shred(entry_dir / name)
                dropped += 1
        if dropped:
            fsync_dir(entry_dir)
            self._cache.clear()
        return dropped

    # --- photos and templates ------------------------------------------------------------

    def read_photo(self, entry: Entry, index: int) -> bytes:
        """Photo `index` of an entry, decrypted; its record must match the hash in the meta record."""
        path = self.directory / entry.path / f"photo-{index}.rec"
        rel, data = self._read_record_file(path, missing="missing: the entry's meta record lists this photo")
        if hashlib.sha256(data).hexdigest() != entry.photo_sha256[index]:
            raise RecordError(
                rel, "does not match the sha256 its entry's meta record holds: modified, truncated or replaced"
            )
        _, payload = open_record(
            data,
            record=rel,
            private_key=self.private_key,
            expect={"kind": "photo", "person": entry.person, "entry": entry.entry, "record": f"photo-{index}"},
        )
        return payload

    def read_template(self, entry: Entry, index: int, model_version: str, dim: int | None = None) -> np.ndarray:
        path = self.directory / entry.path / f"template-{index}.{model_version}.rec"
        rel, data = self._read_record_file(path, missing="missing")
        header, payload = open_record(
            data,
            record=rel,
            secret_key=self._record_key,
            expect={
                "kind": "template",
                "person": entry.person,
                "entry": entry.entry,
                "record": f"template-{index}.{model_version}",
                "photo": index,
                "model_version": model_version,
            },
        )
        n = header.get("dim")
        if header.get("dtype") != "float32" or not isinstance(n, int) or len(payload) != 4 * n:
            raise RecordError(rel, f"authenticated but holds {len(payload)} bytes for a {n}-value float32 template")
        if dim is not None and n != dim:
            raise RecordError(rel, f"holds a {n}-value template; this model makes {dim}")
        vector = np.frombuffer(payload, dtype="<f4").astype(np.float32)
        if not np.all(np.isfinite(vector)):
            raise RecordError(rel, "authenticated but holds non-finite values")
        return vector

    def templates(self, model_version: str, dim: int | None = None) -> TemplateSet:
        """Every template of `model_version`; templates of other versions are counted as stale, never loaded."""
        _check_model_version(model_version)
        entries, problems = self.entries()
        by_person: dict[str, list[Entry]] = {}
        for e in entries:
            by_person.setdefault(e.person, []).append(e)
        names: list[str] = []
        rows: list[np.ndarray] = []
        owners: list[int] = []
        stale = missing = 0
        for group in by_person.values():
            person_rows = []
            for e in group:
                entry_dir = self.directory / e.path
                try:
                    files = os.listdir(entry_dir)
                except FileNotFoundError:
                    continue  # revoked meanwhile
                have = set()
                for fname in files:
                    m = _TEMPLATE.fullmatch(fname)
                    if m is None:
                        continue
                    if m.group(2) != model_version:
                        stale += 1
                    elif int(m.group(1)) < e.photos:
                        have.add(int(m.group(1)))
                for i in range(e.photos):
                    if i not in have:
                        missing += 1
                        continue
                    try:
                        person_rows.append(self.read_template(e, i, model_version, dim))
                    except RecordError as exc:
                        if entry_dir.is_dir():
                            problems.append(exc)
                        missing += 1
            if person_rows:
                owners.extend([len(names)] * len(person_rows))
                names.append(group[0].name)
                rows.extend(person_rows)
        width = dim if dim is not None else (rows[0].shape[0] if rows else 0)
        matrix = np.stack(rows).astype(np.float32) if rows else np.zeros((0, width), np.float32)
        return TemplateSet(model_version, names, np.asarray(owners, np.int32), matrix, problems, stale, missing)

    # --- revocation ----------------------------------------------------------------------

    def revoke(self, name: str) -> RevokeReport:
        """Remove a person: one rename hides every entry, then every file is overwritten and unlinked."""
        wanted = unicodedata.normalize("NFC", name) if isinstance(name, str) else name
        with self.writing():
            entries, _ = self.entries()
            mine = [e for e in entries if e.name == wanted]
            if not mine:
                similar = sorted({e.name for e in entries if e.name.casefold() == str(wanted).casefold()})
                hint = f" (did you mean {', '.join(map(repr, similar))}?)" if similar else ""
                raise EdgeError(INVALID_ARGUMENT, f"no one named {name!r} is enrolled{hint}")
            people = sorted({e.person for e in mine})
            staging = self.directory / STAGING
            moved = []
            self._begin_change()
            if self._tracking and self._entries is not None:
                self._entries[1][:] = [e for e in self._entries[1] if e.person not in people]
                prefixes = tuple(f"{PEOPLE}/{p}/" for p in people)
                self._entries[2][:] = [p for p in self._entries[2] if not p.record.startswith(prefixes)]
            for person in people:
                target = staging / f"revoke-{person}"
                os.rename(self.directory / PEOPLE / person, target)
                moved.append(target)
            fsync_dir(self.directory / PEOPLE)
            fsync_dir(staging)
            files = sum(shred_tree(path) for path in moved)
            return RevokeReport(name=wanted, entries=len(mine), photos=sum(e.photos for e in mine), files=files)

    def revoke_entry(self, entry_id: str) -> int:
        """Remove one entry by id (e.g. one whose meta record is damaged, so it has no readable name)."""
        if not _ID.fullmatch(entry_id or ""):
            raise EdgeError(INVALID_ARGUMENT, f"not an entry id: {entry_id!r} (32 hex digits, as the error named it)")
        with self.writing():
            for person in self._dirs(self.directory / PEOPLE):
                entry_dir = person / entry_id
                if entry_dir.is_dir():
                    target = self.directory / STAGING / f"revoke-{entry_id}"
                    self._begin_change()
                    self._tracking = False  # the entry may be one the cache lists as a problem
                    os.rename(entry_dir, target)
                    fsync_dir(person)
                    fsync_dir(target.parent)
                    files = shred_tree(target)
                    if not self._dirs(person):
                        with contextlib.suppress(OSError):
                            os.rmdir(person)
                            fsync_dir(person.parent)
                    return files
        raise EdgeError(INVALID_ARGUMENT, f"no entry {entry_id} in {self.directory}")

    # --- checking ------------------------------------------------------------------------

    def check(self) -> tuple[int, list[RecordError]]:
        """Open every record (meta, photos, templates of every version). → (records that opened, problems)."""
        entries, problems = self.entries()
        good = len(entries)
        for e in entries:
            entry_dir = self.directory / e.path
            for i in range(e.photos):
                try:
                    self.read_photo(e, i)
                    good += 1
                except RecordError as exc:
                    problems.append(exc)
            for fname in sorted(os.listdir(entry_dir)):
                m = _TEMPLATE.fullmatch(fname)
                if m is None:
                    if fname != META and not _PHOTO.fullmatch(fname) and not is_temporary(fname):
                        problems.append(RecordError(self._rel(entry_dir / fname), "unexpected file in an entry"))
                    continue
                if int(m.group(1)) >= e.photos:
                    problems.append(RecordError(self._rel(entry_dir / fname), "template of a photo the entry lacks"))
                    continue
                try:
                    self.read_template(e, int(m.group(1)), m.group(2))
                    good += 1
                except RecordError as exc:
                    problems.append(exc)
        return good, problems


def cacheable(generation: str) -> bool:
    """Whether data read at this generation may be cached: a committed token, not pending, not absent."""
    return bool(generation) and not generation.startswith("pending-")


def _check_model_version(model_version: str) -> None:
    if not isinstance(model_version, str) or not re.fullmatch(r"[0-9a-f]{1,64}", model_version):
        raise ValueError(f"model version must be lowercase hex, got {model_version!r}")


__all__ = [
    "MAX_PHOTOS",
    "NAME_MAX_CHARS",
    "Entry",
    "Person",
    "RevokeReport",
    "TemplateSet",
    "Vault",
    "VaultError",
    "validate_name",
]
