"""The vault's layout: what `people/` holds, what the index says it should hold, and how the two compare.

    people/<person>/<entry>/{meta.rec, photo-<i>.rec, template-<i>.<model>.rec}

The index (`index.rec`, written and read by `edge.vault.store.Vault`) lists every entry --
its person, its name, its files -- and, while a writer is at work, the scope of its change:
the entries it may add or remove (with their state after the change) and whether template
files may change. `compare` is what every read does with it; `settle` is what the next writer
does with a change a killed writer left pending. Pure functions on what was listed: no I/O.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from edge.vault.errors import RecordError

PEOPLE = "people"
META = "meta.rec"
ID = re.compile(r"[0-9a-f]{32}")
PHOTO = re.compile(r"photo-(\d+)\.rec")
TEMPLATE = re.compile(r"template-(\d+)\.([0-9a-f]{1,64})\.rec")
_KINDS = {"dir": "directory", "file": "file"}

Listing = dict[str, tuple[str, frozenset[str]]]  # entry id → (person id, regular files)


def is_record_name(name: str) -> bool:
    return name == META or bool(PHOTO.fullmatch(name) or TEMPLATE.fullmatch(name))


@dataclass
class Index:
    """The decrypted index: the committed entries, and the scope of a change under way."""

    counter: int
    entries: dict[str, dict]  # entry id → {"person": id, "name": str | None, "files": [names]}
    pending: dict | None = None  # {"entries": {entry id: state after the change, or None}, "templates": bool}

    def pending_entries(self) -> dict[str, dict | None]:
        return dict(self.pending["entries"]) if self.pending else {}

    def templates_pending(self) -> bool:
        return bool(self.pending and self.pending.get("templates"))


@dataclass
class Disk:
    """What people/ holds, listed without following any link."""

    people: dict[str, dict[str, frozenset[str]]] | None  # person → entry → regular files; None: no people/
    problems: list[RecordError]

    def entries(self) -> Listing:
        out: Listing = {}
        for person, entries in (self.people or {}).items():
            for entry, files in entries.items():
                out.setdefault(entry, (person, files))
        return out


def compare(index: Index | None, disk: Disk) -> tuple[Listing, Listing, list[RecordError]]:
    """Entries on disk against the index → (usable, not in the index, problems), entries as
    {entry id: (person id, files)}. Usable: listed by the index (or by its pending change), with
    only the files it lists. Problems: what the index lists and the disk lacks (named down to
    who it was), what the disk holds and the index does not list. Without an index nothing is
    usable and nothing is a problem here (the missing index is the one problem)."""
    on_disk = disk.entries()
    if index is None:  # nothing is vouched for; the index error says so once
        return {}, on_disk, []
    usable: Listing = {}
    unindexed: Listing = {}
    problems: list[RecordError] = []
    pending = index.pending_entries()
    templates_free = index.templates_pending()

    def free(name: str) -> bool:
        return templates_free and bool(TEMPLATE.fullmatch(name))

    for entry, (person, files) in on_disk.items():
        rel = f"{PEOPLE}/{person}/{entry}"
        states = [s for s in (index.entries.get(entry), pending.get(entry)) if s is not None]
        states = [s for s in states if s["person"] == person]
        if not states:
            unindexed[entry] = (person, files)
            problems.append(
                RecordError(
                    rel,
                    "not in the vault index: copied in, or put back from an older copy of the vault (a revoked "
                    "enrolment?); never used. `edge revoke` removes it, `edge vault reindex` accepts it",
                )
            )
            continue
        listed = set().union(*(s["files"] for s in states))
        use = frozenset(f for f in files if f in listed or free(f))
        for name in sorted(files - use):
            why = "unexpected file in an entry" if not is_record_name(name) else "not in the vault index"
            problems.append(RecordError(f"{rel}/{name}", f"{why}: copied in or put back from an older copy; not used"))
        if entry not in pending:
            for name in sorted(set(index.entries[entry]["files"]) - files):
                if not free(name):
                    problems.append(RecordError(f"{rel}/{name}", "missing: the vault index lists it (deleted?)"))
        usable[entry] = (person, use)
    gone: dict[str, list[tuple[str, dict]]] = {}
    for entry, info in index.entries.items():
        if entry not in on_disk and entry not in pending:
            gone.setdefault(info["person"], []).append((entry, info))
    if gone and disk.people is None:
        infos = [info for group in gone.values() for _, info in group]
        problems.append(RecordError(PEOPLE, f"missing: the vault index lists {describe(infos)} in it: deleted"))
    elif gone:
        for person, group in sorted(gone.items()):
            infos = [info for _, info in group]
            if person not in (disk.people or {}):
                name = infos[0].get("name")
                forget = f"`edge revoke {shlex.quote(name)}`" if name else "`edge vault reindex`"
                problems.append(
                    RecordError(
                        f"{PEOPLE}/{person}",
                        f"missing: the vault index lists {describe(infos)} here: deleted. {forget} forgets them",
                    )
                )
                continue
            for entry, info in group:
                problems.append(
                    RecordError(
                        f"{PEOPLE}/{person}/{entry}",
                        f"missing: the vault index lists {describe([info])} here: deleted. `edge revoke --entry "
                        f"{entry}` forgets it",
                    )
                )
    return usable, unindexed, problems


def settle(index: Index, on_disk: Listing) -> None:
    """Settle the change a killed writer left pending: within its scope, take what the disk holds
    (only files one of the entry's states lists); leave the index committed (the caller writes it)."""
    for entry, after in index.pending_entries().items():
        before = index.entries.get(entry)
        found = on_disk.get(entry)
        if found is None:
            index.entries.pop(entry, None)
            continue
        person, files = found
        mine = [s for s in (after, before) if s is not None and s["person"] == person]
        if not mine:
            index.entries.pop(entry, None)  # not what the writer was making: stays "not in the index"
            continue
        listed = set().union(*(s["files"] for s in mine))
        index.entries[entry] = {"person": person, "name": mine[0].get("name"), "files": sorted(files & listed)}
    if index.templates_pending():
        for entry, info in index.entries.items():
            found = on_disk.get(entry)
            if found is None or found[0] != info["person"]:
                continue
            kept = {f for f in info["files"] if not TEMPLATE.fullmatch(f)}
            info["files"] = sorted(kept | {f for f in found[1] if TEMPLATE.fullmatch(f)})
    index.pending = None


def stranger(kind: str) -> str:
    if kind == "link":
        return "a symbolic link: never followed, never used (remove it)"
    if kind == "other":
        return "not a regular file or directory (a pipe, a socket or a device): never opened, never used"
    return f"unexpected {_KINDS.get(kind, kind)} in the vault: not used"


def describe(infos: list[dict]) -> str:
    """ "2 enrolment(s) of 'Ada' (3 photo(s))" for the entries the index lists."""
    names = sorted({repr(i.get("name")) if i.get("name") else "an unnamed person" for i in infos})
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    photos = sum(1 for i in infos for f in i.get("files", []) if PHOTO.fullmatch(f))
    return f"{len(infos)} enrolment(s) of {shown} ({photos} photo(s))"


def merged(first: list[RecordError], then: list[RecordError]) -> list[RecordError]:
    """`first` and `then`, two problems with one record made one ("a symbolic link…; missing: the
    vault index lists 1 enrolment(s) of 'Ada' here…"), so neither half is lost to `unique`."""
    out = {p.record: p for p in first}
    for p in then:
        earlier = out.get(p.record)
        out[p.record] = p if earlier is None else RecordError(p.record, f"{earlier.reason}; {p.reason}")
    return list(out.values())


def unique(problems: list[RecordError]) -> list[RecordError]:
    """One problem per record (the first found: the index's word on a missing file says more)."""
    seen: set[str] = set()
    out = []
    for p in problems:
        if p.record not in seen:
            seen.add(p.record)
            out.append(p)
    return out


__all__ = [
    "ID",
    "META",
    "PEOPLE",
    "PHOTO",
    "TEMPLATE",
    "Disk",
    "Index",
    "Listing",
    "compare",
    "describe",
    "is_record_name",
    "merged",
    "settle",
    "stranger",
    "unique",
]
