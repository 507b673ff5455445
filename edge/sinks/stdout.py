"""Verdicts (and events) as JSON lines on standard output."""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

from edge.sinks.base import Record, Sink, json_line

logger = logging.getLogger(__name__)


class StdoutSink(Sink):
    """One JSON object per line, flushed at once; records carry ``"type": "verdict" | "event"``.

    A closed pipe (the reader went away) turns the sink off with one warning record
    instead of stopping the appliance.
    """

    name = "stdout"

    def __init__(self, stream: TextIO | None = None, *, events: bool = True) -> None:
        self.stream = stream
        self.events = events
        self.broken = False

    def _write(self, record: dict[str, Any]) -> None:
        if self.broken:
            return
        stream = self.stream or sys.stdout
        try:
            stream.write(json_line(record) + "\n")
            stream.flush()
        except (BrokenPipeError, ValueError, OSError) as exc:  # ValueError: the stream is closed
            self.broken = True
            logger.warning("stdout sink off: %s", exc)

    def publish(self, verdict: Record) -> None:
        self._write(verdict.to_dict())

    def event(self, event: dict[str, Any]) -> None:
        if self.events:
            self._write(event)

    def flush(self) -> None:
        if not self.broken:
            try:
                (self.stream or sys.stdout).flush()
            except (BrokenPipeError, ValueError, OSError):
                self.broken = True
