"""Sinks: JSON lines on stdout, the append-only rotated audit log."""

from __future__ import annotations

import io
import json
import logging
import math
from dataclasses import replace

import numpy as np
import pytest

from edge.appliance.verdict import Verdict
from edge.sinks import AuditLogSink, Sink, StdoutSink, json_line


def verdict(seq: int, decision: str = "granted", name: str | None = "Ada") -> Verdict:
    return Verdict(
        device_id="door-1",
        seq=seq,
        decision=decision,
        name=name,
        score=0.8312,
        threshold=0.7,
        margin=0.41,
        frames_used=5,
        track_id=3,
        rect=(10, 20, 120, 130),
        quality={"ok": True, "blur": np.float32(0.5)},
        first_seen=1_700_000_000.0,
        frame_time=1_700_000_000.5,
        decided=1_700_000_000.52,
        latency_ms=21.5,
        frame_index=15,
        pts=0.5,
    )


def test_a_verdict_serialises_with_everything_the_issue_lists():
    d = json.loads(verdict(7).to_json())
    assert d["type"] == "verdict" and d["device_id"] == "door-1" and d["seq"] == 7
    assert d["decision"] == "granted" and d["name"] == "Ada"
    assert d["score"] == 0.8312 and d["fpir"] == pytest.approx(10 ** (3 - 8.312), rel=1e-2)
    assert d["verification_score"] is None and d["far"] is None  # not given to this verdict
    assert d["frames_used"] == 5 and d["rect"] == [10, 20, 120, 130]
    assert d["quality"] == {"ok": True, "blur": 0.5}
    full = {
        "level": "NORMAL",
        "ok": False,
        "occluded": False,
        "failures": ["roll"],
        "measurements": {"roll": {"check": "pose", "value": 32.42091, "ok": False}, "face_size": {"value": 106}},
    }
    compact = json.loads(replace(verdict(2), quality=full).to_json())["quality"]
    assert compact == {"ok": False, "failures": ["roll"], "occluded": False, "roll": 32.421, "face_size": 106}
    assert d["timestamps"] == {
        "first_seen": "2023-11-14T22:13:20.000Z",
        "frame": "2023-11-14T22:13:20.500Z",
        "decided": "2023-11-14T22:13:20.520Z",
    }
    assert d["latency_ms"] == 21.5
    assert json.loads(verdict(1, "unknown", None).to_json())["name"] is None


def test_json_line_turns_nan_into_null_and_numpy_into_numbers():
    assert json.loads(json_line({"a": math.nan, "b": [np.float32(1.5), np.int64(2)], "c": np.arange(2)})) == {
        "a": None,
        "b": [1.5, 2],
        "c": [0, 1],
    }


def test_stdout_sink_writes_one_json_object_per_line():
    out = io.StringIO()
    sink = StdoutSink(out)
    assert isinstance(sink, Sink)
    sink.publish(verdict(1))
    sink.event({"type": "event", "event": "source_error", "error": "read: no frame"})
    sink.close()
    lines = out.getvalue().splitlines()
    assert [json.loads(ln)["type"] for ln in lines] == ["verdict", "event"]


def test_stdout_sink_switches_itself_off_when_the_reader_is_gone(caplog):
    class Broken(io.StringIO):
        def write(self, _):
            raise BrokenPipeError(32, "Broken pipe")

    sink = StdoutSink(Broken())
    sink.publish(verdict(1))  # does not raise
    sink.publish(verdict(2))
    assert sink.broken
    offs = [r for r in caplog.records if "stdout sink off" in r.getMessage()]
    assert len(offs) == 1 and offs[0].name == "edge.sinks.stdout" and offs[0].levelno == logging.WARNING


def read_all(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("background", [True, False])
def test_audit_log_appends_and_is_durable_after_flush(tmp_path, background):
    path = tmp_path / "audit" / "audit.jsonl"
    sink = AuditLogSink(path, background=background)
    for i in range(1, 4):
        sink.publish(verdict(i))
    sink.event({"type": "event", "event": "stopped"})
    sink.flush()
    assert [r.get("seq") for r in read_all(path)] == [1, 2, 3, None]
    sink.close()
    # append-only: a new sink on the same file adds after the old records
    sink = AuditLogSink(path, background=background)
    sink.publish(verdict(4))
    sink.close()
    assert [r.get("seq") for r in read_all(path)] == [1, 2, 3, None, 4]
    assert oct(path.stat().st_mode & 0o777) == "0o640"


def test_rotation_never_splits_or_loses_a_record(tmp_path):
    path = tmp_path / "audit.jsonl"
    line = len(verdict(1).to_json()) + 1
    max_bytes = 10 * line + line // 2  # ten records fit, the eleventh does not
    sink = AuditLogSink(path, max_bytes=max_bytes, backups=50)
    for i in range(1, 236):
        sink.publish(verdict(i))
    sink.close()
    files = [path, *sorted(tmp_path.glob("audit.jsonl.*"), key=lambda p: -int(p.suffix[1:]))]
    seqs = [r["seq"] for f in files[1:] for r in read_all(f)] + [r["seq"] for r in read_all(path)]
    assert seqs == list(range(1, 236))  # every record once, in order, oldest file first
    assert all(f.stat().st_size <= max_bytes for f in files)
    assert len(files) == 24 and sink.rotations == 23
    assert read_all(path)[-1]["seq"] == 235
    assert read_all(tmp_path / "audit.jsonl.1")[-1]["seq"] == 230  # .1 is the newest backup


def test_seq_continues_after_a_restart_whatever_the_log_holds_since_the_last_verdict(tmp_path):
    """Receivers de-duplicate by seq (docs/mqtt.md): after a long camera outage (over a megabyte
    of events, every verdict rotated out of the log) and a restart, numbering goes on from the
    last verdict; a crash between a record and the counter is covered by the log's tail."""
    path = tmp_path / "audit.jsonl"
    sink = AuditLogSink(path, max_bytes=64 * 1024, backups=2)
    for i in range(1, 6):
        sink.publish(verdict(i))
    for i in range(4000):  # ≈ 1.2 MB of source errors
        sink.event({"type": "event", "event": "source_error", "n": i, "detail": "x" * 250})
    sink.close()
    assert not any(r.get("type") == "verdict" for f in tmp_path.glob("audit.jsonl*") for r in read_all(f))
    restarted = AuditLogSink(path, max_bytes=64 * 1024, backups=2)
    assert restarted.last_seq() == 5
    restarted.publish(verdict(6))
    restarted.close()
    for counter in ("3\n", "garbage"):  # behind the log (a crash in between), unreadable
        (tmp_path / "audit.seq").write_text(counter)
        again = AuditLogSink(path)
        assert again.last_seq() == 6  # the log's tail still answers
        again.close()


def test_seq_continues_from_the_log_when_the_counter_is_lost_after_a_megabyte_of_events(tmp_path):
    """No rotation this time: the last verdict is followed by 1.2 MB of source errors in the same
    file, and audit.seq is deleted, emptied, corrupted or behind. The log is read back past
    the megabyte to that verdict, so the restarted appliance's next verdict is 6, not 1; a
    counter ahead of the log (its verdicts rotated away) stays authoritative."""
    path = tmp_path / "audit.jsonl"
    sink = AuditLogSink(path)  # 10 MB: everything stays in audit.jsonl
    for i in range(1, 6):
        sink.publish(verdict(i))
    for i in range(4000):
        sink.event({"type": "event", "event": "source_error", "n": i, "detail": "x" * 250})
    sink.close()
    assert path.stat().st_size > 1_000_000 and not (tmp_path / "audit.jsonl.1").exists()
    seq_file = tmp_path / "audit.seq"
    assert seq_file.read_text() == "5\n"
    for damage in (None, "", "garbage\n", "2\n", "\x00\x00"):
        if damage is None:
            seq_file.unlink()
        else:
            seq_file.write_text(damage)
        assert AuditLogSink(path, background=False).last_seq() == 5, damage
    seq_file.write_text("9\n")  # ahead of the log: verdicts 6…9 were rotated away
    restarted = AuditLogSink(path)
    assert restarted.last_seq() == 9
    restarted.publish(verdict(10))
    restarted.close()
    assert seq_file.read_text() == "10\n"


def test_the_seq_file_is_replaced_atomically_and_fsynced(tmp_path, monkeypatch, caplog):
    """audit.seq is written like the vault's files: a temporary file, fsynced, renamed over the
    counter, the directory fsynced, in that order. A power cut before the rename leaves the old
    number (and a temporary file the next start removes), after it the new one: never a torn
    write. With fsync off it is still replaced atomically (no truncate-then-write)."""
    import os

    from edge import fs

    path = tmp_path / "audit.jsonl"
    sink = AuditLogSink(path, background=False)
    sink.publish(verdict(1))
    calls = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        calls.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def replace(src, dst):
        calls.append(("replace", os.path.basename(src), os.path.basename(dst)))
        return real_replace(src, dst)

    monkeypatch.setattr(fs.os, "fsync", fsync)
    monkeypatch.setattr(fs.os, "replace", replace)
    sink.publish(verdict(2))
    seq_calls = [c for c in calls if "audit.seq" in c[-1] or c[-1] == str(tmp_path)]
    assert [c[0] for c in seq_calls] == ["fsync", "replace", "fsync"], calls
    tmp_name = os.path.basename(seq_calls[0][1])
    assert tmp_name.startswith(".tmp-audit.seq.") and seq_calls[1][1:] == (tmp_name, "audit.seq")
    assert seq_calls[2][1] == str(tmp_path)  # the directory, so the rename itself is durable
    assert (tmp_path / "audit.seq").read_text() == "2\n"

    # the power goes after the temporary file was written, before the rename
    def cut(src, dst):
        raise OSError(5, "power cut")

    monkeypatch.setattr(fs.os, "replace", cut)
    monkeypatch.setattr(fs.os, "unlink", lambda p: None)  # nothing runs after a power cut
    sink.publish(verdict(3))  # the record is written; the counter's failure is logged, not raised
    monkeypatch.undo()
    assert sink.errors == 1 and "cannot save the verdict counter" in caplog.text and "audit record:" not in caplog.text
    assert (tmp_path / "audit.seq").read_text() == "2\n"  # the old number, whole
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
    assert len(leftovers) == 1 and (tmp_path / leftovers[0]).read_text() == "3\n"
    sink.close()
    again = AuditLogSink(path, background=False, fsync=False)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
    assert again.last_seq() == 3  # the log's tail is ahead of the counter: it answers
    calls.clear()
    monkeypatch.setattr(fs.os, "replace", replace)
    again.publish(verdict(4))
    assert [c[0] for c in calls] == ["replace"] and (tmp_path / "audit.seq").read_text() == "4\n"
    again.close()


def test_rotation_keeps_only_the_newest_backups(tmp_path):
    path = tmp_path / "audit.jsonl"
    sink = AuditLogSink(path, max_bytes=2048, backups=2)
    for i in range(1, 200):
        sink.publish(verdict(i))
    sink.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2", "audit.seq"]
    seqs = [r["seq"] for f in ("audit.jsonl.2", "audit.jsonl.1", "audit.jsonl") for r in read_all(tmp_path / f)]
    assert seqs == list(range(seqs[0], 200))  # a contiguous tail: only whole old files were dropped


def test_a_torn_last_line_is_ended_before_the_next_record(tmp_path):
    path = tmp_path / "audit.jsonl"
    path.write_text(verdict(1).to_json() + "\n" + '{"type":"verdict","se')  # a crash mid-write
    sink = AuditLogSink(path)
    sink.publish(verdict(2))
    sink.close()
    lines = path.read_text().splitlines()
    assert json.loads(lines[0])["seq"] == 1 and json.loads(lines[2])["seq"] == 2


def test_a_failing_disk_puts_the_audit_records_in_the_log(tmp_path, caplog):
    path = tmp_path / "audit.jsonl"
    sink = AuditLogSink(path, background=False, fsync=False)

    class Full:
        def write(self, _):
            raise OSError(28, "No space left on device")

    real, sink._fh = sink._fh, Full()
    sink.publish(verdict(7))
    sink._fh = real
    sink.close()
    assert sink.errors == 1
    errors = [r for r in caplog.records if r.name == "edge.sinks.audit"]
    assert all(r.levelno == logging.ERROR for r in errors)  # no log level hides them
    assert "No space left on device" in errors[0].getMessage()
    assert json.loads(errors[1].getMessage().removeprefix("audit record: "))["seq"] == 7


def test_last_seq_continues_the_sequence_after_a_restart(tmp_path):
    path = tmp_path / "audit.jsonl"
    sink = AuditLogSink(path, max_bytes=2048, backups=3)
    assert sink.last_seq() == 0
    for i in range(1, 30):
        sink.publish(verdict(i))
    sink.event({"type": "event", "event": "stopped"})
    sink.close()
    assert AuditLogSink(path).last_seq() == 29
    # the current file was just rotated and holds no verdict yet: the newest backup answers
    path.rename(tmp_path / "elsewhere")
    path.write_text('{"type":"event","event":"started"}\n')
    assert AuditLogSink(path, backups=3).last_seq() > 0
