"""The vault: enrolled people, their sealed photos and their encrypted templates, on disk.

Layout (names never appear in clear; every `.rec` file is one authenticated record, see
`edge.vault.records`):

    VAULT/                               0700; refused if group or others may write to it
      device.key  device.pub             the device key pair (edge.vault.keys)
      .lock                              writers hold an exclusive flock on it
      index.rec                          SecretBox: every entry and its files, and a change counter
      people/<person>/<entry>/           <person>, <entry>: random 128-bit ids (hex); 0700
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

The index (`index.rec`) is what makes a deletion visible: a record under the device's record
key listing every entry (its person, its name, its files) with a counter that grows with every
committed change. Every read compares `people/` with it: an entry, a person or `people/` that
the index lists but the disk lacks is a problem naming who was deleted; an entry or a file on
disk that the index does not list (copied in, or put back from an older copy of the vault) is
a problem and is never used. A vault without a readable index is used for nothing
(`VaultIndexError`) until `edge vault reindex` accepts its files as they are. A writer changes
the index twice: before its first change it writes the index with the change's scope marked
"pending" (the entries it may add or remove, and whether template files may change), and when
it is done the index of the result with the next counter. Readers accept either state for what
is pending; the next writer settles a pending index left by a killed one from what is on disk.
Within one process, an index whose counter is lower than one already seen is refused (the vault
was put back to an older copy); a fresh process cannot tell (docs/vault.md, "Deletions, copies
put back, rollback: the index").

Readers never write (and lock nothing, but for that last resort); writers (enrol, import,
revoke, rebuild, reindex) hold `.lock`. A long-running reader (the appliance) notices other
processes' changes -- a revoke must take effect at once -- by `Vault.generation()`, which
`edge.vault.gallery.vault_gallery` checks on every search before reusing its cached gallery. A
writer marks the generation "pending" (after marking the index) before its first change and
gives it a new token when it is done (after committing the index); a reader caches nothing
while it is pending, so a writer killed mid-change (say, between hiding a revoked person and
shredding the files) can never leave a reader with a stale cache: until the next writer
finishes the recovery, readers just reread the vault. A reader that sees the generation move
while it reads the index and lists `people/` reads both again (after three tries, under a
shared flock on `.lock`: it waits for the writer at work), so a change committed meanwhile is
not mistaken for tampering.

No symbolic link below the vault directory is ever followed: records, the index, the key and
the generation are read through directory descriptors opened with O_NOFOLLOW
(`edge.fs.read_beneath`), a link in `people/` or an entry is reported and never used, and
clean-up removes a link instead of what it names (`edge.fs.shred`). Directories are created
0700 and files 0600 whatever the umask.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import stat
import threading
import time
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from nacl.public import PrivateKey, PublicKey

from edge.errors import INVALID_ARGUMENT, EdgeError
from edge.fs import (
    UnsafePathError,
    atomic_write,
    exclusive_lock,
    fsync_dir,
    is_temporary,
    list_beneath,
    make_dir_private,
    make_private_dir,
    read_beneath,
    shared_lock,
    shred,
    shred_tree,
)
from edge.vault import keys
from edge.vault.errors import RecordError, VaultError, VaultIndexError
from edge.vault.layout import (
    ID,
    META,
    PEOPLE,
    PHOTO,
    TEMPLATE,
    Disk,
    Index,
    compare,
    is_record_name,
    merged,
    settle,
    stranger,
    unique,
)
from edge.vault.records import open_record, seal_public, seal_secret

STAGING = "staging"
LOCK = ".lock"
GENERATION = "generation"
INDEX = "index.rec"
NAME_MAX_CHARS = 64
MAX_PHOTOS = 20  # per enrolment
MAX_RECORD_BYTES = 128 << 20  # no record is near this (photos are at most the intake limit); a larger file is not read
_NAME_PUNCTUATION = frozenset(" .-'_")

# The highest index counter this process has read, per vault (real path, device key): an index
# going back below it is a vault put back to an older copy.
_SEEN_COUNTERS: dict[tuple[str, bytes], int] = {}
_SEEN_LOCK = threading.Lock()


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
    files: frozenset[str] = field(default=frozenset(), repr=False, compare=False)  # its files the index vouches for

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
    missing: int = 0  # entries the index listed whose files were already gone (deleted by someone else)


@dataclass
class ReindexReport:
    entries: int  # entries the new index lists
    people: int
    counter: int  # the new index's change counter
    added: list[tuple[str, str | None]] = field(default_factory=list)  # (path, name): on disk, not in the old index
    dropped: list[tuple[str, str | None]] = field(default_factory=list)  # (path, name): in the old index, not on disk
    had_index: bool = True  # False: there was no readable index before


@dataclass
class _Scan:
    """One read of the vault: what is usable, what is on disk but not vouched for, what is wrong."""

    usable: list[Entry]
    unindexed: list[Entry]  # the meta record opens, but the index does not list the entry: never used
    problems: list[RecordError]
    index: Index | None
    index_error: VaultIndexError | None
    layout: dict[str, set[str]] = field(default_factory=dict)  # person → entry directories, as listed


class Vault:
    """A vault directory opened with the device's private key. Cheap to open; reads are lock-free."""

    def __init__(self, directory: str | os.PathLike[str], private_key: PrivateKey) -> None:
        self.directory = Path(directory)
        self.private_key = private_key
        self.public_key: PublicKey = private_key.public_key
        self._record_key = keys.record_key(private_key)
        self._write_depth = 0
        self._changed = False
        # entries() cache: (generation, scan); kept up to date by this object's own writes while
        # it holds the lock (`_tracking`), so bulk enrolment does not reread everything.
        self._entries: tuple[str, _Scan] | None = None
        self._tracking = False
        self._thread_lock = threading.RLock()  # the flock excludes processes; this, threads sharing the object
        self._cache: dict[tuple, object] = {}  # derived data (galleries), keyed with the generation
        # While writing: the index as this writer will commit it (None: missing, damaged or rolled
        # back -- only revoke may then change the vault), and why it is not usable.
        self._index: Index | None = None
        self._index_error: VaultIndexError | None = None
        self._index_dirty = False

    # --- opening -------------------------------------------------------------------------

    @classmethod
    def open(cls, directory: str | os.PathLike[str]) -> Vault:
        """Open an existing vault: refuses a directory group/others may write to, and a private key
        group/others may access (or that is a link)."""
        return cls(directory, keys.load_private_key(directory))

    @classmethod
    def init(cls, directory: str | os.PathLike[str]) -> Vault:
        """Create a new vault with a new device key pair (refuses to replace an existing key) and an empty index."""
        keys.init_keys(directory)
        vault = cls.open(directory)
        with vault.writing():  # creates people/ and staging/
            if vault._index is None:
                vault._begin_change(unindexed_ok=True)
                vault._index, vault._index_error, vault._index_dirty = Index(0, {}), None, True
        return vault

    @property
    def public_key_b64(self) -> str:
        return keys.public_key_b64(self.public_key)

    def _seen_key(self) -> tuple[str, bytes]:
        """Whose counters: this directory under this device key (a new vault made where an old one was
        starts its own count)."""
        return os.path.realpath(self.directory), bytes(self.public_key)

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
            with contextlib.ExitStack() as stack:
                try:
                    stack.enter_context(exclusive_lock(self.directory / LOCK))
                except UnsafePathError as exc:
                    raise VaultError(
                        f"{exc.filename} {exc.strerror}: not the vault's (which follows no symbolic link); remove "
                        "it (nothing of the vault's is lost) and run the command again"
                    ) from None
                self._write_depth = 1
                completed = False
                try:
                    layout = self._recover()
                    current = self.generation()
                    # Reuse what this object read last only if nobody committed since (the generation)
                    # and people/ still holds the same directories: a deletion behind the writers'
                    # back (no generation change) must not leave a writer trusting a stale list.
                    self._tracking = (
                        self._entries is not None
                        and self._entries[0] == current
                        and cacheable(current)
                        and self._entries[1].layout == layout
                    )
                    try:
                        yield
                        completed = True
                    except BaseException:
                        self._tracking = False  # a change may be half-applied to the cache: drop it
                        raise
                finally:
                    self._write_depth = 0
                    self._cache.clear()
                    try:
                        if self._changed:
                            self._changed = False
                            # Only a write that finished commits the index; after an error or a
                            # kill it stays pending and the next writer settles it from the disk.
                            if completed and self._index_dirty and self._index is not None:
                                self._index.pending = None
                                self._write_index(self._index, self._index.counter + 1)
                            token = self._set_generation(secrets.token_hex(16))
                            if self._tracking and self._entries is not None:
                                self._entries = (token, self._entries[1])
                            else:
                                self._entries = None
                    finally:
                        self._tracking = False
                        self._index, self._index_error, self._index_dirty = None, None, False

    def generation(self) -> str:
        """A token that changes with every committed change (by any process); "" before the first.

        "pending-…" while a writer is changing the vault (or was killed doing so): not cacheable.
        """
        try:
            return read_beneath(self.directory, GENERATION, max_bytes=256).decode("ascii", "replace").strip()
        except (OSError, ValueError):
            return ""

    def _set_generation(self, token: str) -> str:
        atomic_write(self.directory / GENERATION, token.encode() + b"\n", mode=0o600)
        return token

    def _begin_change(
        self, entries: dict[str, dict | None] | None = None, *, templates: bool = False, unindexed_ok: bool = False
    ) -> None:
        """Before a change: widen the index's pending scope to cover it (entries that may appear or
        go, with their state after; template files), then mark the generation pending (readers stop
        caching). Without a usable index only `unindexed_ok` changes (a revoke) may go ahead."""
        self._require_lock()
        entries = entries or {}
        if self._index is None:
            if not unindexed_ok:
                raise self._index_error or self._index_problem("missing")
        else:
            scope = self._index.pending_entries()
            widen = any(e not in scope for e in entries) or (templates and not self._index.templates_pending())
            if widen:
                scope.update(entries)
                self._index.pending = {"entries": scope, "templates": templates or self._index.templates_pending()}
                self._write_index(self._index, self._index.counter)
            self._index_dirty = True
        if not self._changed:
            self._set_generation("pending-" + secrets.token_hex(16))
            self._changed = True

    # --- the index -----------------------------------------------------------------------

    def _index_problem(self, kind: str, detail: str = "") -> VaultIndexError:
        d = self.directory
        check = f"`edge vault check --vault {d}`"
        reindex = f"`edge vault reindex --vault {d}`"
        if kind == "missing":
            reason = (
                "missing: the vault's list of enrolments is gone (deleted, or the vault was made before it "
                "existed), so a deleted or restored enrolment cannot be told from a real one and none is used; "
                f"{check} shows what is on disk, {reindex} accepts it as it is"
            )
        elif kind == "rollback":
            reason = (
                f"{detail}: the vault was put back to an older copy (a revoked person may be back); it is not used. "
                f"If that was intended (a restore from a backup), check it with {check}, accept it with {reindex} "
                "and restart long-running programs (`edge run`)"
            )
        else:
            reason = f"{detail}; no enrolment can be vouched for, so none is used: {check}, then {reindex}"
        return VaultIndexError(f"{d / INDEX}: {reason}", reason)

    def _load_index(self) -> tuple[Index | None, VaultIndexError | None]:
        """(the index, None) or (None | the index, why it cannot be used). A rolled-back index is returned
        with its error (for `check` and `reindex` to compare with)."""
        try:
            data = read_beneath(self.directory, INDEX, max_bytes=MAX_RECORD_BYTES)
        except FileNotFoundError:
            return None, self._index_problem("missing")
        except OSError as exc:
            return None, self._index_problem("damaged", exc.strerror or str(exc))
        try:
            header, payload = open_record(
                data, record=INDEX, secret_key=self._record_key, expect={"kind": "index", "record": "index"}
            )
            body = json.loads(payload)
            counter = header["counter"]
            entries = body["entries"]
            pending = body.get("pending")
            if not isinstance(counter, int) or not isinstance(entries, dict):
                raise TypeError
            for info in entries.values():
                if not isinstance(info["person"], str) or not isinstance(info["files"], list):
                    raise TypeError
            if pending is not None and not isinstance(pending.get("entries"), dict):
                raise TypeError
        except RecordError as exc:
            return None, self._index_problem("damaged", exc.reason)
        except (KeyError, TypeError, ValueError, AttributeError):
            return None, self._index_problem("damaged", "authenticated but not an index this program can read")
        index = Index(counter, entries, pending)
        with _SEEN_LOCK:
            seen = _SEEN_COUNTERS.get(self._seen_key(), 0)
            if counter < seen:
                return index, self._index_problem("rollback", f"change counter {counter}, lower than the {seen} seen")
            _SEEN_COUNTERS[self._seen_key()] = counter
        return index, None

    def _write_index(self, index: Index, counter: int) -> None:
        payload = json.dumps(
            {"entries": index.entries, "pending": index.pending}, separators=(",", ":"), sort_keys=True
        ).encode()
        record = seal_secret(self._record_key, {"kind": "index", "record": "index", "counter": counter}, payload)
        atomic_write(self.directory / INDEX, record)
        index.counter = counter
        with _SEEN_LOCK:
            key = self._seen_key()
            _SEEN_COUNTERS[key] = max(_SEEN_COUNTERS.get(key, 0), counter)

    def _settle_index(self) -> None:
        """Load the index for this writer; settle a change a killed writer left pending, from what is on disk."""
        index, error = self._load_index()
        self._index, self._index_error = (index, None) if error is None else (None, error)
        if self._index is not None and index.pending is not None:
            settle(index, self._read_disk().entries())
            self._write_index(index, index.counter + 1)

    # --- recovery ------------------------------------------------------------------------

    def _prepare_dir(self, name: str, *, replaceable: bool) -> None:
        """`name` is a real directory of the vault, 0700: created if missing; a link or a file where a
        scratch directory belongs is removed (never followed); elsewhere it is refused."""
        path = self.directory / name
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            make_private_dir(path)
            fsync_dir(self.directory)
            return
        if stat.S_ISDIR(info.st_mode):
            make_dir_private(path)
            return
        what = "a symbolic link" if stat.S_ISLNK(info.st_mode) else "not a directory"
        if replaceable:
            shred(path)
            make_private_dir(path)
            fsync_dir(self.directory)
            return
        raise VaultError(
            f"{path} is {what}: the vault writes only into its own directories and follows no symbolic link; "
            f"move it away and put the directory back (`edge vault check --vault {self.directory}` shows what "
            "is missing)"
        )

    def _recover(self) -> dict[str, set[str]]:
        """Shred leftovers of interrupted writers (staged entries, half-revoked people, temporary files,
        links planted among them -- removed, never followed), narrow loose directory modes, settle the
        index. → the entry directories of each person directory (what a cached scan must still match)."""
        self._prepare_dir(STAGING, replaceable=True)
        self._prepare_dir(PEOPLE, replaceable=False)
        with contextlib.suppress(FileNotFoundError):  # a cache token: anything but a file there is removed
            if not stat.S_ISREG(os.lstat(self.directory / GENERATION).st_mode):
                shred(self.directory / GENERATION)
        staging = self.directory / STAGING
        for name in os.listdir(staging):
            shred(staging / name)
        fsync_dir(staging)
        for name in os.listdir(self.directory):
            if is_temporary(name):
                shred(self.directory / name)
        if not cacheable(self.generation()):  # a writer died mid-change, or no token yet: settle it
            self._set_generation(secrets.token_hex(16))
        layout: dict[str, set[str]] = {}
        for person, kind in sorted(list_beneath(self.directory, PEOPLE).items()):
            if is_temporary(person):
                shred(self.directory / PEOPLE / person)
                continue
            if kind != "dir" or not ID.fullmatch(person):
                continue
            person_dir = self.directory / PEOPLE / person
            with contextlib.suppress(FileNotFoundError):
                make_dir_private(person_dir)  # vaults written before 2026.12 made them 0755
                layout[person] = set()
                for entry, entry_kind in sorted(list_beneath(self.directory, f"{PEOPLE}/{person}").items()):
                    if is_temporary(entry):  # never made here: planted, or from another program
                        shred(person_dir / entry)
                        continue
                    if entry_kind != "dir" or not ID.fullmatch(entry):
                        continue
                    layout[person].add(entry)
                    entry_dir = person_dir / entry
                    make_dir_private(entry_dir)
                    dirty = False
                    for name in list_beneath(self.directory, f"{PEOPLE}/{person}/{entry}"):
                        if is_temporary(name):
                            shred(entry_dir / name)
                            dirty = True
                    if dirty:
                        fsync_dir(entry_dir)
        self._settle_index()
        return layout

    def _require_lock(self) -> None:
        if not self._write_depth:
            raise RuntimeError("vault writes must happen inside `with vault.writing():`")

    # --- reading: people/ against the index ----------------------------------------------

    def _read_disk(self) -> Disk:
        """Every entry directory under people/ and its regular files; links and strangers are problems."""
        problems: list[RecordError] = []

        def listing(rel: str) -> dict[str, str] | None:
            try:
                return list_beneath(self.directory, rel)
            except FileNotFoundError:
                return None
            except OSError as exc:
                problems.append(
                    RecordError(
                        rel,
                        f"{exc.strerror or exc}"
                        if isinstance(exc, UnsafePathError)
                        else f"unreadable: {exc.strerror or exc}",
                    )
                )
                return None

        top = listing(PEOPLE)
        if top is None:
            return Disk(None, problems)
        people: dict[str, dict[str, frozenset[str]]] = {}
        for person, kind in sorted(top.items()):
            rel = f"{PEOPLE}/{person}"
            if is_temporary(person):
                continue
            if kind != "dir" or not ID.fullmatch(person):
                problems.append(RecordError(rel, stranger(kind)))
                continue
            entries = listing(rel)
            if entries is None:
                continue
            people[person] = {}
            for entry, entry_kind in sorted(entries.items()):
                entry_rel = f"{rel}/{entry}"
                if is_temporary(entry):
                    continue
                if entry_kind != "dir" or not ID.fullmatch(entry):
                    problems.append(RecordError(entry_rel, stranger(entry_kind)))
                    continue
                files = listing(entry_rel)
                if files is None:
                    continue
                regular = set()
                for name, file_kind in files.items():
                    if is_temporary(name):
                        continue
                    if file_kind != "file":
                        problems.append(RecordError(f"{entry_rel}/{name}", stranger(file_kind)))
                        continue
                    regular.add(name)
                people[person][entry] = frozenset(regular)
        return Disk(people, problems)

    def _scan_entries(self) -> _Scan:
        """Read the index and people/ (again, if a writer moved the generation meanwhile), compare, open the metas."""
        for _attempt in range(3):
            before = self.generation()
            index, index_error = self._load_index()
            disk = self._read_disk()
            if self.generation() == before:
                break
        else:  # writers keep committing: wait for the one at work, and keep the next out while reading
            try:
                if self._write_depth:  # this object holds the writer lock: nobody else is changing anything
                    raise OSError
                with shared_lock(self.directory / LOCK):
                    index, index_error = self._load_index()
                    disk = self._read_disk()
            except OSError:
                disk.problems.append(
                    RecordError(GENERATION, "the vault kept changing while it was read; read it again to be sure")
                )
        usable_ids, unindexed_ids, problems = compare(index if index_error is None else None, disk)
        if index_error is not None and index is not None:  # rolled back: still say what differs
            problems = compare(index, disk)[2]
        problems = merged(disk.problems, problems)
        usable: list[Entry] = []
        unindexed: list[Entry] = []
        for ids, out in ((usable_ids, usable), (unindexed_ids, unindexed)):
            for entry, (person, files) in ids.items():
                try:
                    out.append(self._read_meta(person, entry, files))
                except RecordError as exc:
                    if _is_real_dir(self.directory / PEOPLE / person / entry):  # else revoked while we were reading
                        problems.append(exc)
        usable.sort(key=lambda e: (e.created, e.entry))
        unindexed.sort(key=lambda e: (e.created, e.entry))
        layout = {person: set(entries) for person, entries in (disk.people or {}).items()}
        return _Scan(usable, unindexed, unique(problems), index, index_error, layout)

    def _scan(self) -> _Scan:
        """The scan, from this writer's own cache when it is tracking its changes."""
        generation = self.generation()
        cached = self._entries
        if cached is not None and self._write_depth and self._tracking:
            return cached[1]
        scan = self._scan_entries()
        if cacheable(generation) and not (self._write_depth and self._changed):
            self._entries = (generation, scan)
            self._tracking = bool(self._write_depth)
        else:
            self._entries = None
        return scan

    # --- entries -------------------------------------------------------------------------

    def entries(self) -> tuple[list[Entry], list[RecordError]]:
        """Every committed entry the index vouches for whose meta record opens, and the problems:
        other records, deletions, entries or files the index does not list (never used).

        Raises VaultIndexError when the index is missing, does not authenticate or went back
        to an older state: then nothing can be vouched for. Readers always read the meta records
        afresh. A writer holding the lock reuses what this object read last, if the vault's
        generation has not moved since, plus its own changes: enrolling many people through one
        `Vault` does not reread every entry each time.
        """
        scan = self._scan()
        if scan.index_error is not None:
            raise scan.index_error
        return list(scan.usable), list(scan.problems)

    def _read_record_file(self, rel: str, *, missing: str) -> bytes:
        """A record's bytes; a missing, unreadable, linked or oversized file is a RecordError naming it."""
        try:
            return read_beneath(self.directory, rel, max_bytes=MAX_RECORD_BYTES)
        except FileNotFoundError:
            raise RecordError(rel, missing) from None
        except UnsafePathError as exc:
            where = os.path.relpath(exc.filename, self.directory) if exc.filename else rel
            raise RecordError(Path(where).as_posix(), exc.strerror or str(exc)) from None
        except OSError as exc:
            raise RecordError(rel, f"unreadable: {exc.strerror or exc}") from None

    def _read_meta(self, person: str, entry: str, files: frozenset[str] = frozenset()) -> Entry:
        rel = f"{PEOPLE}/{person}/{entry}/{META}"
        data = self._read_record_file(rel, missing="missing: the entry has no meta record")
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
                files=frozenset(files),
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
                templates = sum(f"template-{i}.{model_version}.rec" in e.files for e in group for i in range(e.photos))
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
                make_private_dir(stage_root)
                make_private_dir(stage)
                fsync_dir(stage.parent)
                fsync_dir(staging)
            else:
                stage_root = stage = staging / f"add-{entry}"
                make_private_dir(stage)
                fsync_dir(stage.parent)
            where = {"person": person, "entry": entry}
            hashes = []
            files = [META]
            for i, photo in enumerate(photos):
                record = seal_public(self.public_key, {"kind": "photo", **where, "record": f"photo-{i}"}, bytes(photo))
                atomic_write(stage / f"photo-{i}.rec", record)
                hashes.append(hashlib.sha256(record).hexdigest())
                files.append(f"photo-{i}.rec")
            if templates is not None:
                for i, row in enumerate(templates):
                    files.append(self._write_template_file(stage, where, i, row, model_version))
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
            # The commit: one rename makes the whole entry visible (the index first says it may).
            state = {"person": person, "name": name, "files": sorted(files)}
            target_parent = self.directory / PEOPLE if new_person else self.directory / PEOPLE / person
            self._begin_change({entry: state})
            self._index.entries[entry] = state
            os.rename(stage_root, target_parent / (person if new_person else entry))
            fsync_dir(target_parent)
            fsync_dir(staging)
            added = self._read_meta(person, entry, frozenset(files))
            if self._tracking and self._entries is not None:
                self._entries[1].usable.append(added)
                self._entries[1].layout.setdefault(person, set()).add(entry)
            return added

    def _write_template_file(
        self, entry_dir: Path, where: dict, index: int, row: np.ndarray, model_version: str
    ) -> str:
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
        return f"{record_name}.rec"

    def write_template(self, entry: Entry, index: int, template: np.ndarray, model_version: str) -> None:
        """Store (or replace) photo `index`'s template of `model_version` (atomic); inside `writing()`."""
        self._require_lock()
        _check_model_version(model_version)
        if not 0 <= index < entry.photos:
            raise ValueError(f"entry {entry.entry} has {entry.photos} photos, no photo {index}")
        self._begin_change(templates=True)
        name = self._write_template_file(
            self.directory / entry.path, {"person": entry.person, "entry": entry.entry}, index, template, model_version
        )
        info = self._index.entries.get(entry.entry)
        if info is not None and name not in info["files"]:
            info["files"] = sorted([*info["files"], name])
        self._cache.clear()

    def drop_templates(self, entry: Entry, keep_model_version: str) -> int:
        """Overwrite and unlink the entry's templates of every other model version; inside `writing()`."""
        self._require_lock()
        entry_dir = self.directory / entry.path
        dropped = 0
        try:
            names = sorted(list_beneath(self.directory, entry.path))
        except FileNotFoundError:
            return 0
        for name in names:
            m = TEMPLATE.fullmatch(name)
            if m and m.group(2) != keep_model_version:
                self._begin_change(templates=True)
                shred(entry_dir / name)
                info = self._index.entries.get(entry.entry)
                if info is not None:
                    info["files"] = [f for f in info["files"] if f != name]
                dropped += 1
        if dropped:
            fsync_dir(entry_dir)
            self._cache.clear()
        return dropped

    # --- photos and templates ------------------------------------------------------------

    def read_photo(self, entry: Entry, index: int) -> bytes:
        """Photo `index` of an entry, decrypted; its record must match the hash in the meta record."""
        rel = f"{entry.path}/photo-{index}.rec"
        data = self._read_record_file(rel, missing="missing: the entry's meta record lists this photo")
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
        rel = f"{entry.path}/template-{index}.{model_version}.rec"
        data = self._read_record_file(rel, missing="missing")
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
        """Every template of `model_version` the index vouches for; templates of other versions are
        counted as stale, never loaded. Raises VaultIndexError as `entries`."""
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
                have = set()
                for fname in e.files:
                    m = TEMPLATE.fullmatch(fname)
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
                        if _is_real_dir(self.directory / e.path):  # else revoked meanwhile
                            problems.append(exc)
                        missing += 1
            if person_rows:
                owners.extend([len(names)] * len(person_rows))
                names.append(group[0].name)
                rows.extend(person_rows)
        width = dim if dim is not None else (rows[0].shape[0] if rows else 0)
        matrix = np.stack(rows).astype(np.float32) if rows else np.zeros((0, width), np.float32)
        return TemplateSet(model_version, names, np.asarray(owners, np.int32), matrix, unique(problems), stale, missing)

    # --- revocation ----------------------------------------------------------------------

    def revoke(self, name: str) -> RevokeReport:
        """Remove a person: one rename hides every entry, then every file is overwritten and unlinked.

        Every entry of that name goes, whether the index lists it or not (a copy put back from
        an older vault is removed too), and the index forgets entries of that name whose files
        were already deleted. Works without a usable index (then it is left as it is)."""
        wanted = unicodedata.normalize("NFC", name) if isinstance(name, str) else name
        with self.writing():
            scan = self._scan()
            on_disk = scan.usable + scan.unindexed
            mine = [e for e in on_disk if e.name == wanted]
            known = {e.entry for e in on_disk}
            listed = self._index.entries if self._index is not None else {}
            gone = {k: v for k, v in listed.items() if v.get("name") == wanted and k not in known}
            if not mine and not gone:
                names = {e.name for e in on_disk} | {str(v.get("name")) for v in listed.values()}
                similar = sorted(n for n in names if n.casefold() == str(wanted).casefold())
                hint = f" (did you mean {', '.join(map(repr, similar))}?)" if similar else ""
                raise EdgeError(INVALID_ARGUMENT, f"no one named {name!r} is enrolled{hint}")
            people = sorted({e.person for e in mine} | {v["person"] for v in gone.values()})
            staging = self.directory / STAGING
            self._begin_change({k: None for k, v in listed.items() if v["person"] in people}, unindexed_ok=True)
            for k in [k for k, v in listed.items() if v["person"] in people]:
                del listed[k]
            if self._tracking and self._entries is not None:
                cached = self._entries[1]
                cached.usable[:] = [e for e in cached.usable if e.person not in people]
                cached.unindexed[:] = [e for e in cached.unindexed if e.person not in people]
                for person in people:
                    cached.layout.pop(person, None)
                prefixes = tuple(f"{PEOPLE}/{p}" for p in people)
                cached.problems[:] = [
                    p
                    for p in cached.problems
                    if not (p.record in prefixes or p.record.startswith(tuple(f"{x}/" for x in prefixes)))
                ]
            moved = []
            for person in people:
                source = self.directory / PEOPLE / person
                if os.path.lexists(source):
                    target = staging / f"revoke-{person}"
                    os.rename(source, target)
                    moved.append(target)
            fsync_dir(self.directory / PEOPLE)
            fsync_dir(staging)
            files = sum(shred_tree(path) for path in moved)
            photos = sum(e.photos for e in mine) + sum(
                sum(1 for f in v["files"] if PHOTO.fullmatch(f)) for v in gone.values()
            )
            return RevokeReport(
                name=wanted, entries=len(mine) + len(gone), photos=photos, files=files, missing=len(gone)
            )

    def revoke_entry(self, entry_id: str) -> int:
        """Remove one entry by id (e.g. one whose meta record is damaged, so it has no readable name,
        or one the index lists but whose files were deleted). → files overwritten and removed."""
        if not isinstance(entry_id, str) or not ID.fullmatch(entry_id):
            raise EdgeError(INVALID_ARGUMENT, f"not an entry id: {entry_id!r} (32 hex digits, as the error named it)")
        with self.writing():
            found = self._read_disk().entries().get(entry_id)
            listed = self._index.entries if self._index is not None else {}
            if found is None and entry_id not in listed:
                raise EdgeError(INVALID_ARGUMENT, f"no entry {entry_id} in {self.directory}")
            self._begin_change({entry_id: None}, unindexed_ok=True)
            self._tracking = False  # the entry may be one the cache lists as a problem
            listed.pop(entry_id, None)
            if found is None:
                return 0
            person = self.directory / PEOPLE / found[0]
            target = self.directory / STAGING / f"revoke-{entry_id}"
            os.rename(person / entry_id, target)
            fsync_dir(person)
            fsync_dir(target.parent)
            files = shred_tree(target)
            with contextlib.suppress(OSError):
                if not list_beneath(self.directory, f"{PEOPLE}/{found[0]}"):
                    os.rmdir(person)
                    fsync_dir(person.parent)
            return files

    # --- checking and re-indexing --------------------------------------------------------

    def check(self) -> tuple[int, list[RecordError]]:
        """Open every record on disk (meta, photos, templates of every version) and compare people/ with
        the index. → (records that opened, problems). Never raises for the index: a missing, damaged
        or rolled-back index is one of the problems, and every entry on disk is still opened."""
        scan = self._scan_entries()
        problems = list(scan.problems)
        if scan.index_error is not None:
            problems.insert(0, RecordError(INDEX, scan.index_error.reason))
        good = 0
        for e in [*scan.usable, *scan.unindexed]:
            good += 1  # its meta record opened
            for i in range(e.photos):
                try:
                    self.read_photo(e, i)
                    good += 1
                except RecordError as exc:
                    problems.append(exc)
            for fname in sorted(e.files):
                m = TEMPLATE.fullmatch(fname)
                if m is None:
                    if fname != META and not PHOTO.fullmatch(fname):
                        problems.append(RecordError(f"{e.path}/{fname}", "unexpected file in an entry"))
                    continue
                if int(m.group(1)) >= e.photos:
                    problems.append(RecordError(f"{e.path}/{fname}", "template of a photo the entry lacks"))
                    continue
                try:
                    self.read_template(e, int(m.group(1)), m.group(2))
                    good += 1
                except RecordError as exc:
                    problems.append(exc)
        return good, unique(problems)

    def index_counter(self) -> int | None:
        """The index's change counter (grows with every committed change), or None without a usable index."""
        index, error = self._load_index()
        return index.counter if index is not None and error is None else None

    def reindex(self) -> ReindexReport:
        """Accept the vault's files as they are now: a new index listing every entry directory on disk
        (the old one, if it opens, is only compared with). For a vault made before the index, after a
        restore from a backup, or after checking that what `check` calls deleted really is gone."""
        with self.writing():
            old, _ = self._load_index()  # settled by the recovery if it could be; a rolled-back one is compared
            disk = self._read_disk()
            if disk.people is None and disk.problems:
                raise VaultError(f"{self.directory / PEOPLE}: {disk.problems[0].reason}")
            entries: dict[str, dict] = {}
            added: list[tuple[str, str | None]] = []
            for entry, (person, files) in disk.entries().items():
                before = old.entries.get(entry) if old is not None else None
                try:
                    name: str | None = self._read_meta(person, entry, files).name
                except RecordError:
                    name = before.get("name") if before else None
                entries[entry] = {
                    "person": person,
                    "name": name,
                    "files": sorted(f for f in files if is_record_name(f)),
                }
                if before is None or before["person"] != person:
                    added.append((f"{PEOPLE}/{person}/{entry}", name))
            dropped = [
                (f"{PEOPLE}/{v['person']}/{k}", v.get("name"))
                for k, v in (old.entries.items() if old is not None else [])
                if k not in entries
            ]
            with _SEEN_LOCK:
                seen = _SEEN_COUNTERS.get(self._seen_key(), 0)
            # Above any counter a running process may have seen (the Unix time, or more): a long-running
            # reader (`edge run`) takes the accepted vault at its next reload instead of calling it a rollback.
            base = max(old.counter if old is not None else 0, seen, int(time.time()))
            self._index = None  # no pending mark: the one write of the new index is the change
            self._begin_change(unindexed_ok=True)
            with contextlib.suppress(FileNotFoundError):  # a link, a directory, a pipe where the index belongs
                if not stat.S_ISREG(os.lstat(self.directory / INDEX).st_mode):
                    shred(self.directory / INDEX)  # removed, never followed
            self._index, self._index_error, self._index_dirty = Index(base, entries), None, True
            return ReindexReport(
                entries=len(entries),
                people=len({v["person"] for v in entries.values()}),
                counter=base + 1,
                added=added,
                dropped=dropped,
                had_index=old is not None,
            )


def cacheable(generation: str) -> bool:
    """Whether data read at this generation may be cached: a committed token, not pending, not absent."""
    return bool(generation) and not generation.startswith("pending-")


def _check_model_version(model_version: str) -> None:
    if not isinstance(model_version, str) or not re.fullmatch(r"[0-9a-f]{1,64}", model_version):
        raise ValueError(f"model version must be lowercase hex, got {model_version!r}")


def _is_real_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


__all__ = [
    "INDEX",
    "MAX_PHOTOS",
    "NAME_MAX_CHARS",
    "Entry",
    "Person",
    "ReindexReport",
    "RevokeReport",
    "TemplateSet",
    "Vault",
    "VaultError",
    "validate_name",
]
