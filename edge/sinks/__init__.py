"""Where verdicts go: one `Sink` interface; stdout JSON lines and the audit log (the MQTT sink is edge.mqtt.sink)."""

from __future__ import annotations

from edge.sinks.audit import AuditLogSink
from edge.sinks.base import Record, Sink, json_line
from edge.sinks.stdout import StdoutSink

__all__ = ["AuditLogSink", "Record", "Sink", "StdoutSink", "json_line"]
