"""The vault's edges (issue 17, item 5): deletions detected through the index, rollback within a
process, modes whatever the umask, group/world-writable vaults refused, no symbolic link ever
followed, and vault faults as clear messages with exit 1 from the CLI, never a traceback.

No engine: photos and templates are synthetic (vault_helpers), the CLI commands used here
(`keys`, `people`, `revoke`, `vault check`, `vault reindex`) load no model.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from vault_helpers import DIM, MV, png, unit_rows

import edge.fs as edge_fs
from edge import cli
from edge.config import ConfigError
from edge.errors import EdgeError
from edge.vault import Vault, VaultError, VaultIndexError, VaultPermissionError

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def vault(tmp_path) -> Vault:
    return Vault.init(tmp_path / "vault")


def _enrol(vault: Vault, name: str, n: int = 2, seed: int = 0):
    return vault.add_entry(name, [png(seed + i) for i in range(n)], unit_rows(n, seed=seed), MV)


def edge_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """`edge ARGV` in this process → (exit code, stdout, stderr); a traceback would fail the test."""
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def _records(problems) -> list[str]:
    return [p.record for p in problems]


# --- deletions -----------------------------------------------------------------------------------


def test_a_deleted_template_file_is_named_by_check_and_at_load(vault, capsys):
    a = _enrol(vault, "Ada")
    _enrol(vault, "Bob", seed=10)
    (vault.directory / a.path / f"template-1.{MV}.rec").unlink()
    good, problems = vault.check()
    assert _records(problems) == [f"{a.path}/template-1.{MV}.rec"]
    assert "missing: the vault index lists it" in problems[0].reason
    t = vault.templates(MV, DIM)  # what the appliance loads: the others still match, the deletion is reported
    assert _records(t.problems) == [f"{a.path}/template-1.{MV}.rec"] and t.matrix.shape == (3, DIM)
    code, out, _ = edge_cli(capsys, "vault", "check", "--vault", str(vault.directory))
    assert code == 1
    assert f"damaged: {a.path}/template-1.{MV}.rec: missing: the vault index lists it" in out
    assert "1 problem(s)" in out


def test_a_deleted_meta_or_photo_file_is_named_once(vault):
    a = _enrol(vault, "Ada")
    (vault.directory / a.path / "photo-0.rec").unlink()
    (vault.directory / a.path / "meta.rec").unlink()
    _, problems = vault.check()
    assert sorted(_records(problems)) == [f"{a.path}/meta.rec", f"{a.path}/photo-0.rec"]
    assert all("the vault index lists it" in p.reason for p in problems)


def test_a_deleted_person_directory_is_named_with_who_it_was(vault, capsys):
    a = _enrol(vault, "Ada Lovelace")
    _enrol(vault, "Ada Lovelace", 1, seed=5)
    _enrol(vault, "Bob", seed=10)
    shutil.rmtree(vault.directory / "people" / a.person)
    entries, problems = vault.entries()
    assert [e.name for e in entries] == ["Bob"]
    assert _records(problems) == [f"people/{a.person}"]
    assert "2 enrolment(s) of 'Ada Lovelace' (3 photo(s))" in problems[0].reason and "deleted" in problems[0].reason
    assert _records(vault.check()[1]) == [f"people/{a.person}"]
    code, out, _ = edge_cli(capsys, "vault", "check", "--vault", str(vault.directory))
    assert code == 1 and f"damaged: people/{a.person}: missing" in out and "'Ada Lovelace'" in out
    # people and identify still work for everyone else, with the deletion as a warning
    code, out, err = edge_cli(capsys, "people", "--vault", str(vault.directory))
    assert code == 0 and "Bob" in out and "Ada" not in out and "'Ada Lovelace'" in err


def test_a_deleted_entry_of_a_person_with_two_is_named(vault):
    a = _enrol(vault, "Ada")
    b = _enrol(vault, "Ada", 1, seed=5)
    shutil.rmtree(vault.directory / b.path)
    entries, problems = vault.entries()
    assert [e.entry for e in entries] == [a.entry]
    assert _records(problems) == [b.path] and "an enrolment" not in problems[0].reason
    assert "1 enrolment(s) of 'Ada' (1 photo(s))" in problems[0].reason
    assert f"edge revoke --entry {b.entry}" in problems[0].reason


def test_deleting_people_is_named_and_the_next_writer_does_not_forget_it(vault, capsys):
    _enrol(vault, "Ada")
    _enrol(vault, "Bob", seed=10)
    shutil.rmtree(vault.directory / "people")
    entries, problems = vault.entries()
    assert entries == [] and _records(problems) == ["people"]
    assert "2 enrolment(s) of 'Ada', 'Bob' (4 photo(s))" in problems[0].reason
    code, out, _ = edge_cli(capsys, "vault", "check", "--vault", str(vault.directory))
    assert code == 1 and "damaged: people: missing: the vault index lists 2 enrolment(s)" in out
    _enrol(vault, "Carol", seed=20)  # a writer recreates people/ but the index still remembers
    entries, problems = vault.entries()
    assert [e.name for e in entries] == ["Carol"]
    assert sorted(p.reason.split(" (")[0] for p in problems) == [
        "missing: the vault index lists 1 enrolment(s) of 'Ada'",
        "missing: the vault index lists 1 enrolment(s) of 'Bob'",
    ]


def test_revoking_a_deleted_person_forgets_them_and_check_is_clean_again(vault, capsys):
    a = _enrol(vault, "Ada")
    b = _enrol(vault, "Bob", seed=10)
    c = _enrol(vault, "Carol", seed=20)
    shutil.rmtree(vault.directory / "people" / a.person)
    shutil.rmtree(vault.directory / c.path)
    report = vault.revoke("Ada")
    assert (report.entries, report.photos, report.files, report.missing) == (1, 2, 0, 1)
    assert vault.revoke_entry(c.entry) == 0  # listed by the index only: forgotten
    assert vault.check()[1] == []
    assert [e.entry for e in vault.entries()[0]] == [b.entry]
    shutil.rmtree(vault.directory / "people" / b.person)
    code, out, _ = edge_cli(capsys, "revoke", "Bob", "--vault", str(vault.directory))
    assert code == 0 and "1 of them had been deleted already" in out


def test_a_revoked_person_put_back_from_a_copy_is_never_used(vault, tmp_path, capsys):
    a = _enrol(vault, "Ada")
    _enrol(vault, "Bob", seed=10)
    copy = tmp_path / "copy-of-ada"
    shutil.copytree(vault.directory / "people" / a.person, copy)
    vault.revoke("Ada")
    shutil.copytree(copy, vault.directory / "people" / a.person)  # the files authenticate: same key, same place
    entries, problems = vault.entries()
    assert [e.name for e in entries] == ["Bob"]
    assert _records(problems) == [a.path] and "not in the vault index" in problems[0].reason
    t = vault.templates(MV, DIM)
    assert t.names == ["Bob"] and t.matrix.shape == (2, DIM)  # Ada does not match
    code, out, _ = edge_cli(capsys, "vault", "check", "--vault", str(vault.directory))
    assert code == 1 and f"damaged: {a.path}: not in the vault index" in out
    assert vault.revoke("Ada").files == 5  # a revoke finds and shreds the copy too
    assert vault.check()[1] == [] and not (vault.directory / "people" / a.person).exists()


def test_a_file_put_back_into_an_entry_is_not_used(vault, tmp_path):
    a = _enrol(vault, "Ada")
    old = (vault.directory / a.path / f"template-0.{MV}.rec").read_bytes()
    with vault.writing():
        vault.drop_templates(a, "feedfacefeedface")  # drops the MV templates
    (vault.directory / a.path / f"template-0.{MV}.rec").write_bytes(old)
    entry = vault.entries()[0][0]
    assert f"template-0.{MV}.rec" not in entry.files
    t = vault.templates(MV, DIM)
    assert t.matrix.shape == (0, DIM) and _records(t.problems) == [f"{a.path}/template-0.{MV}.rec"]


def test_a_rollback_is_refused_within_a_process_and_visible_in_the_counter(vault, tmp_path, capsys):
    _enrol(vault, "Ada")
    _enrol(vault, "Bob", seed=10)
    reader = Vault.open(vault.directory)  # a long-running reader, like `edge run`
    assert len(reader.templates(MV, DIM).names) == 2
    code, out, _ = edge_cli(capsys, "vault", "check", "--vault", str(vault.directory))
    before = int(out.rsplit("change counter ", 1)[1])
    backup = tmp_path / "backup"
    shutil.copytree(vault.directory, backup)
    vault.revoke("Ada")
    assert reader.templates(MV, DIM).names == ["Bob"]
    # Put the whole vault back, index included: everything authenticates and agrees.
    shutil.rmtree(vault.directory)
    shutil.copytree(backup, vault.directory)
    with pytest.raises(VaultIndexError, match="put back to an older copy"):
        reader.templates(MV, DIM)
    with pytest.raises(VaultIndexError, match="put back to an older copy"):
        _enrol(Vault.open(vault.directory), "Carol", seed=20)  # writers refuse too
    # A fresh process cannot tell: the counter `vault check` prints is what shows it.
    child = subprocess.run(
        [sys.executable, "-m", "edge.cli", "vault", "check", "--vault", str(vault.directory)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert child.returncode == 0 and int(child.stdout.rsplit("change counter ", 1)[1]) == before
    # Accepting it on purpose (a restore from a backup) makes it usable again.
    assert reader.reindex().counter > before + 1
    assert sorted(reader.templates(MV, DIM).names) == ["Ada", "Bob"]


def test_a_vault_without_its_index_is_used_for_nothing_until_reindexed(vault, capsys):
    a = _enrol(vault, "Ada")
    _enrol(vault, "Bob", seed=10)
    (vault.directory / "index.rec").unlink()
    with pytest.raises(VaultIndexError, match="index.rec: missing"):
        vault.entries()
    with pytest.raises(VaultIndexError, match="edge vault reindex"):
        _enrol(vault, "Carol", seed=20)
    d = str(vault.directory)
    code, out, err = edge_cli(capsys, "people", "--vault", d)
    assert code == 1 and out == "" and "index.rec: missing" in err and f"edge vault reindex --vault {d}" in err
    code, out, _ = edge_cli(capsys, "vault", "check", "--vault", d)
    assert code == 1 and "damaged: index.rec: missing" in out and "10 record(s) open" in out  # every record opened
    # revoking needs no index
    code, out, _ = edge_cli(capsys, "revoke", "Ada", "--vault", d)
    assert code == 0 and "revoked 'Ada'" in out and not (vault.directory / "people" / a.person).exists()
    code, out, _ = edge_cli(capsys, "vault", "reindex", "--vault", d)
    assert code == 0 and "accepted: people/" in out and "'Bob'" in out and "no readable index before" in out
    code, out, _ = edge_cli(capsys, "vault", "check", "--vault", d)
    assert code == 0 and "0 problem(s)" in out
    assert [e.name for e in vault.entries()[0]] == ["Bob"]


def test_a_damaged_index_is_refused_and_reindex_reports_what_changed(vault, capsys):
    a = _enrol(vault, "Ada")
    _enrol(vault, "Bob", seed=10)
    shutil.rmtree(vault.directory / "people" / a.person)
    code, out, _ = edge_cli(capsys, "vault", "reindex", "--vault", str(vault.directory))
    assert code == 0 and f"forgotten: {a.path} ('Ada')" in out
    index = vault.directory / "index.rec"
    data = bytearray(index.read_bytes())
    data[-3] ^= 1
    index.write_bytes(bytes(data))
    with pytest.raises(VaultIndexError, match="does not authenticate"):
        vault.people()


class _Kill(BaseException):
    """Stands for SIGKILL: not an Exception, so nothing catches it on the way out."""


def test_a_rebuild_killed_half_way_leaves_no_problem_and_is_settled_by_the_next_writer(vault):
    a = _enrol(vault, "Ada")
    b = _enrol(vault, "Bob", seed=10)
    with pytest.raises(_Kill), vault.writing():
        vault.write_template(a, 0, unit_rows(1, seed=3)[0], "feedfacefeedface")
        vault.drop_templates(a, "feedfacefeedface")
        raise _Kill  # before Bob's templates and before the index is committed
    reader = Vault.open(vault.directory)
    assert reader.check()[1] == []  # the index says template files may be changing
    assert len(reader.entries()[0]) == 2
    with Vault.open(vault.directory).writing():  # the next writer settles it from the disk
        pass
    index_files = {e.entry: e.files for e in reader.entries()[0]}
    assert index_files[a.entry] == {"meta.rec", "photo-0.rec", "photo-1.rec", "template-0.feedfacefeedface.rec"}
    assert f"template-0.{MV}.rec" in index_files[b.entry]
    (vault.directory / a.path / "template-0.feedfacefeedface.rec").unlink()  # now a deletion is a deletion again
    assert _records(reader.check()[1]) == [f"{a.path}/template-0.feedfacefeedface.rec"]


def test_a_concurrent_writer_is_never_mistaken_for_tampering(vault):
    """A reader that lists people/ while another writer commits must not report deletions or strangers."""
    _enrol(vault, "Seed")
    writer = Vault.open(vault.directory)  # its own lock fd: excluded from nothing but other writers
    stop = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for i in range(25):
                writer.add_entry(f"Person {i}", [png(i)], unit_rows(1, seed=i), MV)
                if i % 3 == 2:
                    writer.revoke(f"Person {i - 1}")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            stop.set()

    thread = threading.Thread(target=write)
    thread.start()
    reads = 0
    while not stop.is_set():
        reader = Vault.open(vault.directory)
        entries, problems = reader.entries()
        assert problems == [], problems
        assert reader.templates(MV, DIM).problems == []
        reads += 1
    thread.join()
    assert not errors and reads >= 3
    assert vault.check()[1] == []


# --- modes whatever the umask ---------------------------------------------------------------------


def _modes(root: Path) -> dict[str, int]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath, name)
            out[path.relative_to(root).as_posix()] = stat.S_IMODE(path.lstat().st_mode)
    return out


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
def test_directories_are_0700_and_files_0600_whatever_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        vault = Vault.init(tmp_path / "vault")
        a = _enrol(vault, "Ada")
        _enrol(vault, "Ada", 1, seed=5)  # more photos of a known person: another code path
        _enrol(vault, "Bob", seed=10)
        with vault.writing():
            vault.write_template(a, 0, unit_rows(1, seed=3)[0], "feedfacefeedface")
        vault.revoke("Bob")
        vault.reindex()
    finally:
        os.umask(old)
    modes = _modes(vault.directory)
    assert stat.S_IMODE(vault.directory.stat().st_mode) == 0o700
    dirs = {k: v for k, v in modes.items() if (vault.directory / k).is_dir()}
    files = {k: v for k, v in modes.items() if k not in dirs}
    assert len(dirs) == 5  # people, staging, Ada's person dir, her two entries
    assert set(dirs.values()) == {0o700}, dirs
    assert files.pop("device.pub") == 0o644  # the public key, meant to be handed out
    assert set(files.values()) == {0o600}, files
    assert {"device.key", "index.rec", "generation", ".lock"} <= set(files)


def test_the_cli_makes_a_0700_vault_under_umask_000(tmp_path):
    directory = tmp_path / "v"
    out = subprocess.run(
        [sys.executable, "-m", "edge.cli", "keys", "init", "--vault", str(directory)],
        capture_output=True,
        text=True,
        cwd=REPO,
        preexec_fn=lambda: os.umask(0),
    )
    assert out.returncode == 0, out.stderr
    assert {k: v for k, v in _modes(directory).items() if k != "device.pub"} == {
        "people": 0o700,
        "staging": 0o700,
        "device.key": 0o600,
        "index.rec": 0o600,
        "generation": 0o600,
        ".lock": 0o600,
    }
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_loose_directories_of_older_vaults_are_narrowed_by_the_next_writer(vault):
    a = _enrol(vault, "Ada")
    for path in (vault.directory / "people" / a.person, vault.directory / a.path, vault.directory / "people"):
        os.chmod(path, 0o755)
    _enrol(vault, "Bob", seed=10)
    assert {stat.S_IMODE(p.stat().st_mode) for p in (vault.directory / "people").rglob("*") if p.is_dir()} == {0o700}
    assert stat.S_IMODE((vault.directory / "people").stat().st_mode) == 0o700


# --- group/world-writable vaults ------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o1777, 0o707])
def test_keys_init_refuses_a_writable_existing_directory(tmp_path, capsys, mode):
    directory = tmp_path / "shared"
    directory.mkdir()
    os.chmod(directory, mode)
    with pytest.raises(VaultPermissionError, match=f"writable by group or others \\(mode {mode:04o}"):
        Vault.init(directory)
    code, out, err = edge_cli(capsys, "keys", "init", "--vault", str(directory))
    assert code == 1 and out == ""
    assert f"refusing to use the vault directory {directory}" in err and f"run: chmod 700 {directory}" in err
    assert os.listdir(directory) == []  # no key, nothing written


def test_keys_init_narrows_an_empty_directory_and_keeps_a_full_ones_mode(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir(mode=0o755)
    os.chmod(empty, 0o755)
    Vault.init(empty)
    assert stat.S_IMODE(empty.stat().st_mode) == 0o700
    full = tmp_path / "full"
    full.mkdir()
    os.chmod(full, 0o750)
    (full / "notes.txt").write_text("mine")
    Vault.init(full)
    assert stat.S_IMODE(full.stat().st_mode) == 0o750


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o722])
def test_a_writable_vault_is_refused_at_load_naming_the_path(vault, capsys, mode):
    _enrol(vault, "Ada")
    os.chmod(vault.directory, mode)
    with pytest.raises(VaultPermissionError, match=f"refusing to use the vault directory {vault.directory}"):
        Vault.open(vault.directory)
    for argv in (["people"], ["keys", "show"], ["vault", "check"], ["revoke", "Ada"], ["vault", "reindex"]):
        code, out, err = edge_cli(capsys, *argv, "--vault", str(vault.directory))
        assert code == 1 and out == "", argv
        assert f"chmod 700 {vault.directory}" in err, argv
    # `edge run` at start-up: a configuration error naming vault.path and the directory
    from edge.app import vault_gallery_loader

    with pytest.raises(ConfigError) as info:
        vault_gallery_loader(object(), vault.directory)
    assert info.value.key == "vault.path" and f"refusing to use the vault directory {vault.directory}" in str(
        info.value
    )
    os.chmod(vault.directory, 0o700)
    assert [e.name for e in Vault.open(vault.directory).entries()[0]] == ["Ada"]


@pytest.mark.parametrize("fault", ["world-writable", "no index"])
def test_edge_run_refuses_a_faulty_vault_at_start_up_naming_it(vault, fault):
    """What `edge run` builds (`appliance_from_config`) stops at a configuration error on vault.path
    (the CLI prints it and exits 2) before anything runs; no model is needed to get there."""
    from dataclasses import replace
    from types import SimpleNamespace

    from edge.app import appliance_from_config
    from edge.config import Config

    _enrol(vault, "Ada")
    if fault == "world-writable":
        os.chmod(vault.directory, 0o777)
    else:
        (vault.directory / "index.rec").unlink()
    config = replace(Config(), vault=replace(Config().vault, path=str(vault.directory)))
    engine = SimpleNamespace(model_version=MV, dim=DIM)
    with pytest.raises(ConfigError) as info:
        appliance_from_config(config, engine=engine, source=object(), sinks=[])
    assert info.value.key == "vault.path" and str(vault.directory) in str(info.value)
    assert ("writable by group or others" if fault == "world-writable" else "index.rec: missing") in str(info.value)


# --- symbolic links: never followed ---------------------------------------------------------------


@pytest.fixture
def outside(tmp_path) -> Path:
    """A directory outside the vault with a file that must never be written or read."""
    d = tmp_path / "outside"
    d.mkdir()
    (d / "victim").write_bytes(b"precious, not the vault's")
    return d


def _untouched(outside: Path) -> None:
    assert (outside / "victim").read_bytes() == b"precious, not the vault's"


def test_planted_tmp_links_are_removed_never_followed(vault, outside):
    """The reported attack: a `.tmp-*` link made the clean-up of leftovers overwrite another file."""
    a = _enrol(vault, "Ada")
    victim = outside / "victim"
    plants = [
        vault.directory / ".tmp-generation.abc",
        vault.directory / a.path / f".tmp-template-0.{MV}.rec.abc",
        vault.directory / "staging" / "new-planted",
        vault.directory / "people" / a.person / ".tmp-x",
    ]
    for plant in plants:
        plant.symlink_to(victim)
    (vault.directory / "staging" / "add-dir").symlink_to(outside, target_is_directory=True)
    os.link(victim, vault.directory / a.path / ".tmp-hardlink")  # a hard link shares the content: not overwritten
    _enrol(vault, "Bob", seed=10)  # the writer's recovery cleans up
    _untouched(outside)
    assert sorted(os.listdir(outside)) == ["victim"]
    assert not any(os.path.lexists(p) for p in plants)
    assert not (vault.directory / a.path / ".tmp-hardlink").exists()
    assert os.listdir(vault.directory / "staging") == []
    assert vault.check()[1] == []


def test_a_linked_staging_directory_is_replaced_never_written_through(vault, outside):
    shutil.rmtree(vault.directory / "staging")
    (vault.directory / "staging").symlink_to(outside, target_is_directory=True)
    _enrol(vault, "Ada")
    _untouched(outside)
    assert sorted(os.listdir(outside)) == ["victim"]
    assert (vault.directory / "staging").is_dir() and not (vault.directory / "staging").is_symlink()


def _opened_paths(monkeypatch) -> list[str]:
    """Every file the vault code opens (through edge.fs), resolved from the descriptor the kernel gave."""
    seen: list[str] = []
    real_open = os.open

    def spy(path, flags, mode=0o777, *, dir_fd=None):
        fd = real_open(path, flags, mode, dir_fd=dir_fd)
        seen.append(os.readlink(f"/proc/self/fd/{fd}"))
        return fd

    monkeypatch.setattr(edge_fs.os, "open", spy)
    return seen


def test_links_into_the_vault_are_reported_and_nothing_outside_is_read(vault, tmp_path, outside, monkeypatch):
    a = _enrol(vault, "Ada")
    b = _enrol(vault, "Bob", seed=10)
    c = _enrol(vault, "Carol", seed=20)
    # A copy of Carol's entry outside: following a link to it would find records that open.
    elsewhere = outside / "carol"
    shutil.copytree(vault.directory / c.path, elsewhere)
    os.mkfifo(outside / "pipe")  # opening it for reading would block: a follower hangs
    # a person directory, an entry directory and a template replaced by links
    shutil.rmtree(vault.directory / "people" / a.person)
    (vault.directory / "people" / a.person).symlink_to(outside, target_is_directory=True)
    shutil.rmtree(vault.directory / c.path)
    (vault.directory / c.path).symlink_to(elsewhere, target_is_directory=True)
    template = vault.directory / b.path / f"template-1.{MV}.rec"
    template.unlink()
    template.symlink_to(outside / "pipe")
    (vault.directory / "generation").unlink()
    (vault.directory / "generation").symlink_to("/dev/zero")  # unbounded if read
    real_outside = os.path.realpath(outside)
    opened = _opened_paths(monkeypatch)
    entries, problems = vault.entries()
    t = vault.templates(MV, DIM)
    good, checked = vault.check()
    monkeypatch.undo()
    assert opened and not [p for p in opened if p.startswith(real_outside) or p == "/dev/zero"]
    assert [e.name for e in entries] == ["Bob"] and t.names == ["Bob"] and t.matrix.shape == (1, DIM)
    reasons = {p.record: p.reason for p in checked}
    for link in (f"people/{a.person}", c.path, f"{b.path}/template-1.{MV}.rec"):
        assert reasons[link].startswith("a symbolic link: never followed"), (link, reasons)
    assert "missing: the vault index lists 1 enrolment(s) of 'Ada'" in " ".join(reasons.values())
    assert vault.generation() == ""  # not read through the link: nothing is cached


def test_revoking_through_links_removes_the_links_only(vault, outside):
    a = _enrol(vault, "Ada")
    template = vault.directory / a.path / f"template-0.{MV}.rec"
    template.unlink()
    template.symlink_to(outside / "victim")
    report = vault.revoke("Ada")
    _untouched(outside)
    assert report.files == 4  # meta, two photos, one template: the link was unlinked, not overwritten
    assert not (vault.directory / "people" / a.person).exists()


def test_linked_key_lock_index_and_people_are_clear_errors(vault, tmp_path, outside, capsys):
    _enrol(vault, "Ada")
    d = vault.directory
    # the lock file: writers refuse, the link's target is not created
    (d / ".lock").unlink()
    (d / ".lock").symlink_to(outside / "lock-target")
    with pytest.raises(VaultError, match=r"\.lock is a symbolic link: not followed"):
        _enrol(vault, "Bob", seed=10)
    assert not (outside / "lock-target").exists()
    code, _, err = edge_cli(capsys, "revoke", "Ada", "--vault", str(d))
    assert code == 1 and ".lock is a symbolic link" in err
    (d / ".lock").unlink()
    # the index
    shutil.move(d / "index.rec", outside / "index.rec")
    (d / "index.rec").symlink_to(outside / "index.rec")
    with pytest.raises(VaultIndexError, match="a symbolic link: not followed"):
        vault.entries()
    (d / "index.rec").unlink()
    shutil.move(outside / "index.rec", d / "index.rec")
    # people/ itself: readers say so, writers refuse (nothing is written through it)
    shutil.move(d / "people", outside / "people")
    (d / "people").symlink_to(outside / "people", target_is_directory=True)
    _, problems = vault.entries()
    assert _records(problems)[:2] == ["people", "people"] or problems[0].reason.startswith("is a symbolic link")
    with pytest.raises(VaultError, match="people is a symbolic link: the vault writes only into its own directories"):
        _enrol(vault, "Bob", seed=10)
    code, out, err = edge_cli(capsys, "vault", "check", "--vault", str(d))
    assert code == 1 and "damaged: people: is a symbolic link: not followed" in out
    (d / "people").unlink()
    shutil.move(outside / "people", d / "people")
    assert vault.check()[1] == []
    # the private key
    shutil.move(d / "device.key", outside / "device.key")
    (d / "device.key").symlink_to(outside / "device.key")
    with pytest.raises(VaultError, match="device.key is a symbolic link"):
        Vault.open(d)
    code, out, err = edge_cli(capsys, "keys", "show", "--vault", str(d))
    assert code == 1 and out == "" and "device.key is a symbolic link" in err


def test_an_oversized_or_special_record_is_refused_without_reading_it(vault, tmp_path):
    a = _enrol(vault, "Ada")
    b = _enrol(vault, "Bob", seed=10)
    meta = vault.directory / a.path / "meta.rec"
    meta.unlink()
    os.mkfifo(meta)  # a pipe where a record belongs: opening it to read could block
    big = vault.directory / b.path / f"template-1.{MV}.rec"
    with open(big, "r+b") as fh:
        fh.truncate(200 << 20)  # sparse: claims 200 MiB, beyond any record
    t = vault.templates(MV, DIM)
    reasons = {p.record: p.reason for p in t.problems}
    assert set(reasons) == {f"{a.path}/meta.rec", f"{b.path}/template-1.{MV}.rec"}
    assert reasons[f"{a.path}/meta.rec"].startswith("not a regular file or directory (a pipe")
    assert "bytes, more than" in reasons[f"{b.path}/template-1.{MV}.rec"]
    assert t.names == ["Bob"] and t.matrix.shape == (1, DIM)


# --- vault faults at the command line: a message and exit 1, never a traceback --------------------


def test_vault_faults_are_messages_with_exit_1(tmp_path, capsys):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    nowhere = tmp_path / "nowhere"
    for argv in (
        ["people", "--vault", str(nowhere)],
        ["vault", "check", "--vault", str(nowhere)],
        ["vault", "reindex", "--vault", str(nowhere)],
        ["revoke", "X", "--vault", str(nowhere)],
        ["keys", "show", "--vault", str(not_a_dir)],
        ["people", "--vault", str(not_a_dir)],
        ["keys", "init", "--vault", str(not_a_dir)],
        ["keys", "init", "--vault", str(not_a_dir / "sub")],
    ):
        code, out, err = edge_cli(capsys, *argv)
        assert code == 1 and out == "" and "ERROR edge.cli" in err, (argv, err)
    v = tmp_path / "v"
    Vault.init(v)
    (v / "index.rec").write_bytes(b"not an index")
    code, out, err = edge_cli(capsys, "people", "--vault", str(v))
    assert code == 1 and out == "" and "index.rec: not a vault record" in err and "edge vault reindex" in err
    code, out, err = edge_cli(capsys, "revoke", "X", "--vault", str(v))  # a revoke needs no index
    assert code == 1 and out == "" and "no one named 'X' is enrolled [1200]" in err
    with pytest.raises(EdgeError, match="no one named 'X'"):
        Vault.open(v).revoke("X")


def _replace(path: Path, kind: str) -> None:
    if not path.parent.is_dir():  # its entry was revoked by an earlier command
        return
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()
    if kind == "dir":
        path.mkdir()
    elif kind == "file":
        path.write_text("junk")
    elif kind == "pipe":
        os.mkfifo(path)
    elif kind == "empty":
        path.write_bytes(b"")


_BROKEN = {  # what is where something of the vault's belongs
    "people is a file": ("people", "file"),
    "staging is a file": ("staging", "file"),
    "generation is a directory": ("generation", "dir"),
    "index.rec is a directory": ("index.rec", "dir"),
    "index.rec is a pipe": ("index.rec", "pipe"),
    "index.rec is empty": ("index.rec", "empty"),
    "device.pub is a directory": ("device.pub", "dir"),
    "device.key is a directory": ("device.key", "dir"),
    "device.key is empty": ("device.key", "empty"),
    ".lock is a directory": (".lock", "dir"),
    ".lock is a pipe": (".lock", "pipe"),
    "an entry is a file": ("ENTRY", "file"),
    "a person is a file": ("PERSON", "file"),
    "a meta record is a directory": ("ENTRY/meta.rec", "dir"),
}


@pytest.mark.parametrize("broken", sorted(_BROKEN))
def test_a_broken_vault_gives_messages_never_a_traceback(vault, capsys, broken):
    a = _enrol(vault, "Ada")
    _enrol(vault, "Bob", seed=10)
    where, kind = _BROKEN[broken]
    where = where.replace("ENTRY", a.path).replace("PERSON", f"people/{a.person}")
    d = vault.directory
    commands = [
        ["people"],
        ["vault", "check"],
        ["revoke", "Bob"],
        ["revoke", "--entry", a.entry],
        ["vault", "reindex"],
        ["keys", "show"],
    ]
    for argv in commands:
        _replace(d / where, kind)
        code, out, err = edge_cli(capsys, *argv, "--vault", str(d))  # an exception here fails the test
        assert code in (0, 1), (argv, code)
        if code == 1 and argv != ["vault", "check"]:  # check prints its problems on stdout
            assert "ERROR edge.cli: " in err and len(err.strip().splitlines()) == 1, (argv, err)
        usable = where != "people" and not where.startswith(("index.rec", "device."))  # else nothing is vouched for
        if argv == ["people"] and usable:  # the first command: Bob is still there, and listed
            assert code == 0 and "Bob" in out, (out, err)
