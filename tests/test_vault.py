"""The vault without the face engine: keys, names, records, people, revoke, integrity, 1:N search."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys

import numpy as np
import pytest
from vault_helpers import DIM, MV, png, unit_rows

from edge import fs as vault_fs
from edge.errors import EdgeError
from edge.matching import Gallery
from edge.vault import (
    KeyPermissionError,
    RecordError,
    Vault,
    VaultError,
    VaultIndexError,
    load_private_key,
    parse_public_key,
    validate_name,
)
from edge.vault.records import MAGIC


@pytest.fixture
def vault(tmp_path) -> Vault:
    return Vault.init(tmp_path / "vault")


def _enrol(vault: Vault, name: str, n: int = 2, seed: int = 0, mv: str = MV):
    return vault.add_entry(name, [png(seed + i) for i in range(n)], unit_rows(n, seed=seed), mv)


def _files(root) -> list[str]:
    return sorted(os.path.relpath(os.path.join(r, f), root) for r, _, fs in os.walk(root) for f in fs)


# --- 1. keys -------------------------------------------------------------------------------------


def test_keys_init_creates_a_0600_private_key_and_the_public_key(tmp_path):
    directory = tmp_path / "v"
    vault = Vault.init(directory)
    key = directory / "device.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    pub = (directory / "device.pub").read_text().strip()
    assert pub == vault.public_key_b64 and len(base64.b64decode(pub)) == 32
    assert bytes(parse_public_key(pub)) == bytes(vault.public_key)
    assert bytes(parse_public_key(str(directory / "device.pub"))) == bytes(vault.public_key)
    with pytest.raises(VaultError, match="already exists"):
        Vault.init(directory)  # never replaces a device key
    assert bytes(load_private_key(directory)) == bytes(vault.private_key)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o620])
def test_group_or_other_accessible_private_key_is_refused_with_the_chmod_to_run(tmp_path, mode):
    directory = tmp_path / "v"
    Vault.init(directory)
    key = directory / "device.key"
    os.chmod(key, mode)
    with pytest.raises(KeyPermissionError) as info:
        Vault.open(directory)
    message = str(info.value)
    assert f"run: chmod 600 {key}" in message
    assert f"{mode:04o}" in message
    if mode & 0o044:
        assert "readable by group or others" in message
    os.chmod(key, 0o600)
    Vault.open(directory)


def test_cli_keys_init_show_and_refusal(tmp_path):
    directory = tmp_path / "v"
    run = [sys.executable, "-m", "edge.cli"]
    out = subprocess.run([*run, "keys", "init", "--vault", str(directory)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    shown = subprocess.run([*run, "keys", "show", "--vault", str(directory)], capture_output=True, text=True)
    assert shown.returncode == 0 and shown.stdout.strip() == (directory / "device.pub").read_text().strip()
    assert shown.stdout.strip() in out.stdout
    again = subprocess.run([*run, "keys", "init", "--vault", str(directory)], capture_output=True, text=True)
    assert again.returncode == 1 and "already exists" in again.stderr
    os.chmod(directory / "device.key", 0o644)
    refused = subprocess.run([*run, "keys", "show", "--vault", str(directory)], capture_output=True, text=True)
    assert refused.returncode == 1 and refused.stdout == ""
    assert f"chmod 600 {directory / 'device.key'}" in refused.stderr


def test_missing_vault_and_mismatched_public_key_are_clear_errors(tmp_path):
    with pytest.raises(VaultError, match="edge keys init --vault"):
        Vault.open(tmp_path / "nowhere")
    Vault.init(tmp_path / "v")
    other = Vault.init(tmp_path / "w")
    (tmp_path / "v" / "device.pub").write_text(other.public_key_b64 + "\n")
    with pytest.raises(VaultError, match="does not match"):
        Vault.open(tmp_path / "v")
    with pytest.raises(VaultError, match="not a device public key"):
        parse_public_key("not-a-key")


# --- 2. names ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Ada Lovelace", "José Álvarez", "O'Brien-Smith Jr.", "李小龙", "anne_2", "7 of 9"])
def test_valid_names(name):
    assert validate_name(name) == name


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("x" * 65, "at most 64"),
        ("bad/slash", "'/'"),
        ("../etc", "'.'"),  # starts with a dot → not a letter or digit first... the '/' is caught first
        ("new\nline", "not allowed"),
        ("tab\there", "not allowed"),
        ("-dash", "start with a letter or a digit"),
        (" lead", "start with a letter or a digit"),
        ("trail ", "ends with a space"),
        ("emoji 😀", "not allowed"),
        ("semi;colon", "not allowed"),
    ],
)
def test_invalid_names_are_refused_with_a_reason(name, why):
    with pytest.raises(EdgeError) as info:
        validate_name(name)
    assert info.value.code == 1200
    assert "invalid name" in info.value.message
    if why not in ("'.'",):
        assert why in info.value.message


def test_enrolment_refuses_bad_names_before_writing(vault):
    with pytest.raises(EdgeError, match="invalid name"):
        vault.add_entry("bad/name", [png(0)], unit_rows(1), MV)
    assert vault.entries() == ([], [])


# --- 4. store, people, revoke --------------------------------------------------------------------


def test_records_are_encrypted_and_names_never_appear_on_disk(vault):
    _enrol(vault, "Ada Lovelace")
    for rel in _files(vault.directory):
        data = (vault.directory / rel).read_bytes()
        assert b"Ada" not in data and b"Lovelace" not in data
        if rel.endswith(".rec"):
            assert data.startswith(MAGIC)
    assert "Ada" not in " ".join(_files(vault.directory))


def test_people_lists_names_counts_and_dates_never_templates(vault):
    _enrol(vault, "Ada Lovelace", 2, seed=0)
    _enrol(vault, "Alan Turing", 1, seed=10)
    _enrol(vault, "Ada Lovelace", 1, seed=20)  # more photos of a known person
    people, problems = vault.people(MV)
    assert problems == []
    assert [(p.name, p.photos, p.entries, p.templates) for p in people] == [
        ("Ada Lovelace", 3, 2, 3),
        ("Alan Turing", 1, 1, 1),
    ]
    for p in people:
        d = p.to_dict()
        assert set(d) == {"name", "photos", "enrolled", "updated", "entries", "templates"}
        assert all(isinstance(v, (str, int)) for v in d.values())  # counts and dates, no arrays
        assert d["enrolled"] <= d["updated"]
    assert len({e.person for e in vault.find("Ada Lovelace")}) == 1


def test_a_name_differing_only_in_case_is_refused(vault):
    _enrol(vault, "Ada Lovelace")
    with pytest.raises(EdgeError, match="differs only in letter case"):
        _enrol(vault, "ada lovelace")


def test_templates_group_rows_by_person_and_count_other_versions_as_stale(vault):
    _enrol(vault, "A", 2, seed=0)
    _enrol(vault, "B", 3, seed=10)
    _enrol(vault, "C", 1, seed=20, mv="fedcba9876543210")  # another model version
    t = vault.templates(MV, DIM)
    assert t.matrix.shape == (5, DIM) and t.matrix.dtype == np.float32
    assert sorted(t.names) == ["A", "B"] and t.problems == []
    assert t.stale == 1 and t.missing == 1  # C's photo has no template of MV: never used
    by_name = {t.names[o] for o in t.owners}
    assert by_name == {"A", "B"}
    np.testing.assert_array_equal(t.matrix[t.owners == t.names.index("B")], unit_rows(3, seed=10))


def test_revoke_overwrites_then_unlinks_and_keeps_everyone_else(vault, monkeypatch):
    _enrol(vault, "Ada Lovelace", 2, seed=0)
    _enrol(vault, "Ada Lovelace", 1, seed=5)
    _enrol(vault, "Alan Turing", 2, seed=10)
    ada_dirs = {vault.directory / e.path for e in vault.find("Ada Lovelace")}
    originals = {p: p.read_bytes() for d in ada_dirs for p in d.iterdir()}  # meta, photos, templates of both entries
    seen_before_unlink: dict[tuple[str, str], bytes] = {}
    real_unlink = os.unlink

    def key(path, dir_fd) -> tuple[str, str]:  # (entry id, file name): the entry moved to staging/ before shredding
        where = os.readlink(f"/proc/self/fd/{dir_fd}") if dir_fd is not None else os.path.dirname(path)
        return os.path.basename(where), os.path.basename(path)

    def spy_unlink(path, *a, dir_fd=None, **k):  # the shredding walks directory descriptors (no link followed)
        fd = os.open(path, os.O_RDONLY, dir_fd=dir_fd)
        with open(fd, "rb") as fh:
            seen_before_unlink[key(path, dir_fd)] = fh.read()
        return real_unlink(path, *a, dir_fd=dir_fd, **k)

    monkeypatch.setattr(vault_fs.os, "unlink", spy_unlink)
    report = vault.revoke("Ada Lovelace")
    monkeypatch.undo()
    assert (report.entries, report.photos, report.files) == (2, 3, 8)
    assert len(seen_before_unlink) == len(originals) == 8
    for path, content in originals.items():
        assert not os.path.exists(path)
        overwritten = seen_before_unlink[key(path, None)]
        assert len(overwritten) == len(content) and overwritten != content  # same size, other bytes
    assert all(not d.exists() for d in ada_dirs)
    assert os.listdir(vault.directory / "staging") == []
    people, problems = vault.people()
    assert [p.name for p in people] == ["Alan Turing"] and problems == []
    assert vault.templates(MV, DIM).matrix.shape == (2, DIM)
    with pytest.raises(EdgeError, match="no one named"):
        vault.revoke("Ada Lovelace")


def test_revoke_entry_removes_an_entry_whose_meta_is_damaged(vault):
    entry = _enrol(vault, "Ada Lovelace")
    _enrol(vault, "Alan Turing", seed=10)
    meta = vault.directory / entry.path / "meta.rec"
    meta.write_bytes(meta.read_bytes()[:-1])
    _, problems = vault.entries()
    assert [p.record for p in problems] == [f"{entry.path}/meta.rec"]
    assert vault.revoke_entry(entry.entry) == 5
    assert not (vault.directory / "people" / entry.person).exists()
    assert [p.name for p in vault.people()[0]] == ["Alan Turing"]
    assert vault.entries()[1] == []


# --- 7. integrity --------------------------------------------------------------------------------


def _flip(path, offset: int = -5) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "magic"])
def test_a_damaged_template_is_named_and_everything_else_still_loads(vault, damage):
    a = _enrol(vault, "A", 2, seed=0)
    _enrol(vault, "B", 2, seed=10)
    path = vault.directory / a.path / f"template-1.{MV}.rec"
    if damage == "flip":
        _flip(path)
    elif damage == "truncate":
        path.write_bytes(path.read_bytes()[:40])
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        _flip(path, 0)
    t = vault.templates(MV, DIM)
    assert [p.record for p in t.problems] == [f"{a.path}/template-1.{MV}.rec"]
    assert t.matrix.shape == (3, DIM)  # A's other template and both of B's
    reason = t.problems[0].reason
    assert {"flip": "does not authenticate", "truncate": "truncated", "empty": "truncated", "magic": "bad magic"}[
        damage
    ] in reason
    good, problems = vault.check()
    assert [p.record for p in problems] == [f"{a.path}/template-1.{MV}.rec"]


def test_a_damaged_meta_record_hides_only_its_entry(vault):
    a = _enrol(vault, "A", 2, seed=0)
    _enrol(vault, "B", 2, seed=10)
    _flip(vault.directory / a.path / "meta.rec", 30)
    entries, problems = vault.entries()
    assert [e.name for e in entries] == ["B"]
    assert len(problems) == 1 and problems[0].record == f"{a.path}/meta.rec"
    assert "does not authenticate" in problems[0].reason
    t = vault.templates(MV, DIM)
    assert t.names == ["B"] and [p.record for p in t.problems] == [f"{a.path}/meta.rec"]


@pytest.mark.parametrize("damage", ["flip", "truncate", "missing"])
def test_a_damaged_photo_is_named_by_check_and_read_photo(vault, damage):
    a = _enrol(vault, "A", 2, seed=0)
    path = vault.directory / a.path / "photo-0.rec"
    if damage == "flip":
        _flip(path, 100)
    elif damage == "truncate":
        path.write_bytes(path.read_bytes()[:-100])
    else:
        path.unlink()
    with pytest.raises(RecordError) as info:
        vault.read_photo(a, 0)
    assert info.value.record == f"{a.path}/photo-0.rec"
    assert vault.read_photo(a, 1) == png(1)
    _, problems = vault.check()
    assert [p.record for p in problems] == [f"{a.path}/photo-0.rec"]


def test_records_written_under_another_device_key_are_named_and_refused(tmp_path):
    mine = Vault.init(tmp_path / "mine")
    theirs = Vault.init(tmp_path / "theirs")
    a = _enrol(mine, "A", 2, seed=0)
    _enrol(mine, "B", 1, seed=10)
    # Another device writes an entry with the same ids; its records are copied into my vault.
    foreign = theirs.directory / "people" / a.person / a.entry
    foreign.mkdir(parents=True)
    from edge.vault.records import seal_secret

    header = {"kind": "template", "person": a.person, "entry": a.entry, "record": f"template-0.{MV}", "photo": 0}
    header |= {"model_version": MV, "dim": DIM, "dtype": "float32"}
    forged = seal_secret(theirs._record_key, header, unit_rows(1, seed=99)[0].tobytes())
    (mine.directory / a.path / f"template-0.{MV}.rec").write_bytes(forged)
    t = mine.templates(MV, DIM)
    assert [p.record for p in t.problems] == [f"{a.path}/template-0.{MV}.rec"]
    assert "another device's key" in t.problems[0].reason
    assert t.matrix.shape == (2, DIM)
    # and a whole vault opened with the wrong key: its index does not open, so nothing is used
    # (VaultIndexError, naming the index); `check` names the index and every record, without crashing
    wrong = Vault(mine.directory, theirs.private_key)
    with pytest.raises(VaultIndexError, match="index.rec: does not authenticate"):
        wrong.entries()
    good, problems = wrong.check()
    assert good == 0 and [p.record for p in problems][0] == "index.rec"
    assert len(problems) == 3 and all(p.record.endswith("meta.rec") for p in problems[1:])


def test_a_valid_record_moved_to_another_person_is_refused(vault):
    a = _enrol(vault, "A", 1, seed=0)
    b = _enrol(vault, "B", 1, seed=10)
    # Put A's template in place of B's: it authenticates, but says it belongs elsewhere.
    src = vault.directory / a.path / f"template-0.{MV}.rec"
    (vault.directory / b.path / f"template-0.{MV}.rec").write_bytes(src.read_bytes())
    t = vault.templates(MV, DIM)
    assert t.names == ["A"]
    assert [p.record for p in t.problems] == [f"{b.path}/template-0.{MV}.rec"]
    assert "moved or copied" in t.problems[0].reason
    # the same for a photo: the hash in B's meta record does not match
    (vault.directory / b.path / "photo-0.rec").write_bytes((vault.directory / a.path / "photo-0.rec").read_bytes())
    with pytest.raises(RecordError, match="sha256"):
        vault.read_photo(b, 0)


def test_leftovers_of_interrupted_writers_are_invisible_and_cleaned_by_the_next_writer(vault):
    a = _enrol(vault, "A", 1)
    staged = vault.directory / "staging" / ("new-" + "ab" * 16) / ("cd" * 16)
    staged.mkdir(parents=True)
    (staged / "photo-0.rec").write_bytes(b"half")
    tmp = vault.directory / a.path / f".tmp-template-0.{MV}.rec.123456"
    tmp.write_bytes(b"half a template")
    assert [e.name for e in vault.entries()[0]] == ["A"] and vault.entries()[1] == []
    assert vault.templates(MV, DIM).problems == [] and vault.check()[1] == []
    with vault.writing():
        pass
    assert os.listdir(vault.directory / "staging") == [] and not tmp.exists()


def test_atomic_write_leaves_old_content_when_interrupted(tmp_path, monkeypatch):
    path = tmp_path / "f"
    vault_fs.atomic_write(path, b"old")
    monkeypatch.setattr(vault_fs.os, "replace", lambda *a: (_ for _ in ()).throw(OSError("crash")))
    with pytest.raises(OSError):
        vault_fs.atomic_write(path, b"new")
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["f"]


# --- 5. the vault's gallery ----------------------------------------------------------------------


def test_generation_changes_after_every_committed_change_by_any_process(vault, tmp_path):
    seen = {vault.generation()}
    other = Vault.open(vault.directory)  # stands for another process
    a = _enrol(other, "A")
    seen.add(vault.generation())
    with other.writing():
        other.write_template(a, 0, unit_rows(1, seed=7)[0], "feedfacefeedface")
    seen.add(vault.generation())
    with other.writing():
        other.drop_templates(a, MV)
    seen.add(vault.generation())
    other.revoke("A")
    seen.add(vault.generation())
    assert len(seen) == 5
    with other.writing():  # no change, no new generation
        pass
    assert vault.generation() in seen


def test_bulk_enrolment_through_one_vault_reads_the_entries_once(vault, monkeypatch):
    scans = []
    real = Vault._scan_entries
    monkeypatch.setattr(Vault, "_scan_entries", lambda self: scans.append(1) or real(self))
    for i in range(20):
        _enrol(vault, f"Person {i}", 1, seed=i)
    assert len(scans) == 1
    vault.revoke("Person 3")
    assert len(scans) == 1
    with vault.writing():  # the cache, as the writer sees it, is what is on disk
        cached = vault.entries()[0]
    assert len(scans) == 1
    fresh = vault.entries()[0]  # readers always read afresh
    assert len(scans) == 2
    assert sorted(e.entry for e in fresh) == sorted(e.entry for e in cached)
    assert sorted(e.name for e in fresh) == sorted(f"Person {i}" for i in range(20) if i != 3)


def test_another_process_change_invalidates_the_cache(vault):
    _enrol(vault, "A")
    assert [e.name for e in vault.entries()[0]] == ["A"]
    other = Vault.open(vault.directory)
    _enrol(other, "B", seed=5)
    assert sorted(e.name for e in vault.entries()[0]) == ["A", "B"]
    other.revoke("A")
    assert [e.name for e in vault.entries()[0]] == ["B"]


def vault_gallery_of(vault: Vault) -> Gallery:
    """`vault_gallery` as `edge identify` calls it, for templates of model version MV."""
    import importlib
    from types import SimpleNamespace
    from unittest import mock

    gallery_module = importlib.import_module("edge.vault.gallery")
    with mock.patch.object(gallery_module, "model_version", lambda engine: MV):
        return gallery_module.vault_gallery(SimpleNamespace(dim=DIM), vault)


def test_a_writer_killed_mid_change_leaves_readers_uncached_until_the_next_writer(vault, monkeypatch):
    _enrol(vault, "A")
    _enrol(vault, "B", seed=5)
    reader = Vault.open(vault.directory)
    assert len(reader.entries()[0]) == 2
    assert len(vault_gallery_of(reader)) == 4  # two templates each; now cached by the reader
    # A revoke dies after hiding the person, before shredding or settling the generation.
    import edge.vault.store as store_module

    def die(*args, **kwargs):
        raise KeyboardInterrupt  # stands for SIGKILL: nothing after it runs

    real_write, generation_writes = store_module.atomic_write, []

    def write(path, *args, **kwargs):  # the "pending" marks (index, then generation) go through; nothing after
        if os.path.basename(path) not in ("index.rec", "generation") or generation_writes:
            die()
        if os.path.basename(path) == "generation":
            generation_writes.append(path)
        return real_write(path, *args, **kwargs)

    monkeypatch.setattr(store_module, "shred_tree", die)
    monkeypatch.setattr(store_module, "atomic_write", write)
    with pytest.raises(KeyboardInterrupt):
        Vault.open(vault.directory).revoke("A")
    monkeypatch.undo()
    assert vault.generation().startswith("pending-")
    assert [e.name for e in reader.entries()[0]] == ["B"]
    assert vault_gallery_of(reader).people == ["B"]  # the running identifier no longer matches A
    assert reader._cache == {}  # and caches nothing while the generation is pending
    with Vault.open(vault.directory).writing():  # the next writer settles it
        pass
    assert not vault.generation().startswith("pending-")
    assert os.listdir(vault.directory / "staging") == []
