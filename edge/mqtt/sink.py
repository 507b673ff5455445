"""`MqttSink`: the appliance's verdicts, events and state on MQTT, and signed commands back.

Threads: the appliance calls `publish`, `event` and `state` from its loop; the link's
network thread runs paho's callbacks; a publisher thread moves verdicts from the outbox to
the client (at most `window` in flight) and turns PUBACKs into removals; a command thread
checks and carries out commands. paho calls `on_publish` with its own lock held, so the
callback only queues the ack; the publisher thread does the rest.
"""

from __future__ import annotations

import base64
import hashlib
import json
import queue
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edge import __version__
from edge.admin.commands import CommandHandler
from edge.admin.fleet import target_group
from edge.admin.signing import CommandRefused, CommandVerifier
from edge.errors import INVALID_ARGUMENT, EdgeError
from edge.mqtt.admin import HaCommandGate
from edge.mqtt.announced import Announced
from edge.mqtt.client import MqttLink, MqttSettings, reply_properties
from edge.mqtt.fleet import FleetDoor
from edge.mqtt.outbox import Outbox
from edge.mqtt.topics import HaOptions, Topics, discovery_messages, person_slug
from edge.sinks.base import Record, Sink, json_line

MAX_COMMAND_QUEUE = 64
# A command payload longer than this is refused from its length alone (`mqtt.command_max_bytes`).
DEFAULT_COMMAND_MAX_BYTES = 8 * 1024 * 1024
MAX_COMMAND_NAME = 64  # longer "command" fields are not names: never echoed or recorded
# Refused and dropped commands are recorded individually up to this many per window, then
# counted: nobody without the admin key can fill (and so rotate away) the audit log.
REFUSED_BURST = 10
REFUSED_WINDOW = 60.0  # seconds
MAX_HELD_EVENTS = 200


class MqttSink(Sink):
    name = "mqtt"

    def __init__(
        self,
        settings: MqttSettings,
        *,
        device_id: str,
        outbox: Outbox,
        topics: Topics | None = None,
        discovery: bool = True,
        discovery_prefix: str = "homeassistant",
        state_interval: float = 30.0,
        verifier: CommandVerifier | None = None,
        commands: CommandHandler | None = None,
        face_recipient: str = "",
        window: int = 64,
        command_max_bytes: int = DEFAULT_COMMAND_MAX_BYTES,
        clock: Callable[[], float] = time.monotonic,
        # --- Home Assistant (docs/mqtt.md, "Home Assistant") ---
        ha: HaOptions | None = None,
        stranger: str = "stranger",
        discovery_people: bool = False,
        announced_path: str | Path | None = None,
        fleet: FleetDoor | None = None,
    ) -> None:
        self.ha = ha or HaOptions()
        self.stranger = stranger
        self.discovery_people = discovery_people
        # The discovery (and retained HA values) published so far, remembered across restarts so a
        # renamed device, a changed prefix or a revoked person's entity is removed, not orphaned.
        self.announced = Announced(announced_path)
        self.people_source: Callable[[], Iterable[str]] | None = None  # enrolled names, for discovery_people
        self.ha_actions: dict[str, Callable[[], Any]] = {}  # unsigned HA command → what it does
        self.door_enabled: Callable[[], bool] | None = None  # the door switch's state, if there is a door
        self._ha_gate = HaCommandGate(self.ha.commands)
        self._people: set[str] = set()  # those with a "last seen" entity announced
        self._people_lock = threading.Lock()  # the loop adds to it, the publisher thread replaces it
        self._announced_people: tuple[str, ...] = ()  # in the discovery last made
        self._enrolled: Any = None  # the enrolled count last seen in a snapshot: a change re-reads people
        self._last: bytes | None = None  # the retained summary of the last verdict (ha/last)
        self._last_due = threading.Event()
        self.device_id = device_id
        self.fleet = fleet  # fleet enrolment: group commands and the retained fleet state (edge.mqtt.fleet)
        self.topics = topics or Topics.for_device(device_id)
        self.outbox = outbox
        self.discovery = discovery
        self.discovery_prefix = discovery_prefix
        self.state_interval = state_interval
        self.verifier = verifier
        self.commands = commands
        self.window = window
        self.command_max_bytes = int(command_max_bytes)
        self.clock = clock
        self._recipient = None
        if face_recipient:
            from nacl.public import PublicKey, SealedBox

            from edge.keytext import parse_key32

            self._recipient = SealedBox(PublicKey(parse_key32(face_recipient, kind="X25519 recipient")))
        self.counts = {"published": 0, "acked": 0, "refused_by_broker": 0, "events_dropped": 0}
        self.counts |= {"commands": 0, "commands_dropped": 0, "commands_too_large": 0}
        self.counts |= {"ha_commands": 0, "ha_events_dropped": 0}
        self._snapshot: dict[str, Any] = {}
        self._held: deque[str] = deque(maxlen=MAX_HELD_EVENTS)  # events made while disconnected
        self._started = time.time()
        self._acks: queue.SimpleQueue = queue.SimpleQueue()
        self._commands: queue.Queue = queue.Queue(MAX_COMMAND_QUEUE)
        # Signed commands that found `_commands` full (a flood): served first, never dropped for unsigned ones.
        self._signed: queue.Queue = queue.Queue(MAX_COMMAND_QUEUE)
        self._command_ready = threading.Event()
        self._refusals = _Limiter(REFUSED_BURST, REFUSED_WINDOW, clock)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._new_session = threading.Event()
        self._mids: dict[int, int] = {}  # mid → outbox id, for the current session
        self._session = 0
        self._last_state = -1e18
        self._discovery_due = False  # set on connect, on HA's birth, on a new person: the publisher sends it
        self._snapshot_sent = False  # the appliance's numbers are in the retained state since the last connect
        self._state_due = threading.Event()
        self.link = MqttLink(
            settings,
            will=(self.topics.availability, b"offline", 1, True),
            on_connect=self._on_connect,
            on_status=self._on_status,
            on_message=self._on_message,
            on_publish=lambda session, mid, code: (self._acks.put((session, mid, code)), self._wake.set()),
            on_new_session=self._on_session,
            max_inflight=window,
        )
        self._threads = [
            threading.Thread(target=self._publisher, name="edge-mqtt-out", daemon=True),
            threading.Thread(target=self._command_worker, name="edge-mqtt-cmd", daemon=True),
        ]
        self._event_hook: Callable[[str, dict], None] | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> MqttSink:
        for t in self._threads:
            t.start()
        self.link.start()
        return self

    def set_event_hook(self, hook: Callable[[str, dict], None]) -> None:
        """Where the sink's own events (broker down, outbox drops, refused commands) go: the appliance."""
        self._event_hook = hook

    @property
    def wants_face(self) -> bool:
        """True when verdicts should carry the face crop (sealed to the configured recipient)."""
        return self._recipient is not None

    # --- Sink --------------------------------------------------------------------------------------

    def publish(self, verdict: Record) -> None:
        record = verdict.to_dict()
        face = getattr(verdict, "face_jpeg", None)
        if self._recipient is not None and face:
            record["face"] = {"format": "jpeg", "sealed": base64.b64encode(self._recipient.encrypt(face)).decode()}
        self.outbox.append(json_line(record).encode(), int(record.get("seq", 0)))
        self._wake.set()
        self._publish_for_ha(record)
        if record.get("decision") == "unknown":
            self._emit(
                {
                    "type": "event",
                    "event": "unknown_face",
                    "device_id": self.device_id,
                    "ts": record.get("timestamps", {}).get("decided"),
                    "seq": record.get("seq"),
                    "score": record.get("score"),
                    "track_id": record.get("track_id"),
                }
            )

    def event(self, event: dict[str, Any]) -> None:
        self._emit(event)
        if event.get("event") == "tailgate" and self.discovery:
            fields = {k: event.get(k) for k in ("track_id", "status", "withheld") if k in event}
            self._ha_event({"event_type": "tailgate", **fields, "device_id": self.device_id})

    # --- Home Assistant: the event entity, the retained last verdict, last seen per person ---------

    def _publish_for_ha(self, record: dict[str, Any]) -> None:
        """A verdict as HA wants it: an event (fires every time) and the retained summary (`ha/last`)."""
        if not self.discovery:
            return
        decision = record.get("decision")
        name = record.get("name") if decision == "granted" else None
        seen = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        summary = {
            "person": name or self.stranger,
            "decision": decision,
            "score": record.get("score"),
            "seq": record.get("seq"),
            "last_seen": seen,
        }
        self._last = json.dumps(summary).encode()
        self._last_due.set()
        self._wake.set()
        self._ha_event({"event_type": decision, "name": name, "score": record.get("score"), "seq": record.get("seq")})
        if name and self.discovery_people:
            with self._people_lock:
                new = name not in self._people
                self._people.add(name)
            if new:
                self._rediscover()
            self.link.publish(self.topics.ha_seen(person_slug(name)), seen, qos=1, retain=True)

    def _ha_event(self, payload: dict[str, Any]) -> None:
        # Not held while the broker is away: an automation fired minutes late (a light, a chime) is
        # worse than none. The verdict itself is in the outbox and `ha/last` catches up.
        if self.link.publish(self.topics.ha_event, json.dumps(payload), qos=1) is None:
            self.counts["ha_events_dropped"] += 1

    def _rediscover(self) -> None:
        self._discovery_due = True
        self._wake.set()

    def _emit(self, event: dict[str, Any]) -> None:
        payload = json_line(event)
        if self.link.publish(self.topics.event, payload, qos=1) is None:
            # Not connected: keep the latest few for when the broker is back (every event is in
            # the audit log all the same); older ones are counted, not kept.
            if len(self._held) == self._held.maxlen:
                self.counts["events_dropped"] += 1
            self._held.append(payload)

    def state(self, snapshot: dict[str, Any]) -> None:
        """The appliance's latest numbers; published (retained) every `state_interval` and on connect."""
        self._snapshot = dict(snapshot)
        if self.discovery_people and snapshot.get("enrolled") != self._enrolled:
            self._enrolled = snapshot.get("enrolled")  # an enrolment, a revoke, a reload: re-read who is there
            self._rediscover()
        if not self._snapshot_sent or self.clock() - self._last_state >= self.state_interval:
            self._state_due.set()
            self._wake.set()

    def state_payload(self) -> dict[str, Any]:
        return {
            "type": "state",
            "device_id": self.device_id,
            "status": "stopped" if self._stop.is_set() else "running",
            "version": __version__,
            "uptime_s": round(time.time() - self._started, 1),
            **self._snapshot,
            **({"door_enabled": bool(self.door_enabled())} if self.door_enabled is not None else {}),
            "mqtt": {
                "protocol": self.link.protocol,
                "outbox": len(self.outbox),
                "outbox_dropped": self.outbox.dropped,
                **self.counts,
            },
        }

    def flush(self) -> None:
        """Wait (a little) for the outbox to drain; what is left stays on disk for the next start."""
        self.drain(timeout=2.0)

    def drain(self, timeout: float) -> bool:
        end = self.clock() + timeout
        while len(self.outbox) and self.clock() < end:
            self._wake.set()
            time.sleep(0.02)
        return len(self.outbox) == 0

    def _queue_signed(self, message) -> bool:
        """A message that found the command queue full: into the signed lane if it carries a valid
        admin signature (and the lane has room). False: it is dropped."""
        if self.verifier is None or not self.verifier.signed(message.payload):
            return False
        try:
            self._signed.put_nowait(message)
        except queue.Full:
            return False
        return True

    def _report_refusal(self, kind: str, fields: dict) -> None:
        """`report`, but at most REFUSED_BURST refusals a window; the rest are counted and
        reported as one `commands_suppressed` event when the window has passed (or at close)."""
        self._report_suppressed()
        if self._refusals.admit(kind):
            self.report(kind, fields)

    def _report_suppressed(self, force: bool = False) -> None:
        summary = self._refusals.roll(force=force)
        if summary:
            self.report("commands_suppressed", summary)

    def finish(self) -> None:
        """The appliance stops: the refusals suppressed so far, as one event, while the audit log is open."""
        self._report_suppressed(force=True)

    def close(self) -> None:
        self._report_suppressed(force=True)
        if self.link.connected.is_set():
            self.drain(timeout=3.0)
        self._stop.set()
        self._wake.set()
        final = (self.topics.availability, b"stopped", 1, True)
        state = json_line(self.state_payload()).encode()
        if self.link.connected.is_set():
            self.link.publish(self.topics.state, state, qos=1, retain=True)
        self.link.stop(final=final)
        for t in self._threads:
            t.join(5.0)
        self.outbox.close()

    # --- link callbacks (network thread) -----------------------------------------------------------------

    def _on_session(self, session: int) -> None:
        self._session = session
        self._new_session.set()
        self._wake.set()

    def _on_connect(self, link: MqttLink, _first: bool) -> None:
        link.publish(self.topics.availability, b"online", qos=1, retain=True)
        self._snapshot_sent = False
        link.subscribe(self.topics.command, qos=1)
        if self.ha.commands:
            link.subscribe(self.topics.ha_command, qos=1)
        if self.fleet is not None:
            self.fleet.connected(link)
        if self.discovery:
            link.subscribe(f"{self.discovery_prefix}/status", qos=1)
        self._discovery_due = True  # on the publisher thread: it may read the people (and a file)
        self._last_due.set()  # a summary made while the broker was away
        self._state_due.set()
        self._wake.set()

    def discovery_now(self) -> list[tuple[str, dict[str, Any]]]:
        """The discovery this device announces now (with the people enrolled, if discovery_people)."""
        if not self.discovery:
            return []
        if self.discovery_people and self.people_source is not None:
            try:
                people_now = set(self.people_source())
                with self._people_lock:
                    self._people = people_now
            except Exception as exc:  # noqa: BLE001 - keep the entities announced so far
                self.report("ha_people_unreadable", {"detail": f"{type(exc).__name__}: {exc}"})
        with self._people_lock:
            people = tuple(sorted(self._people)) if self.discovery_people else ()
        self._announced_people = people
        ha = HaOptions(area=self.ha.area, console_url=self.ha.console_url, people=people, commands=self.ha.commands)
        return discovery_messages(
            self.device_id, self.topics, prefix=self.discovery_prefix, sw_version=__version__, ha=ha
        )

    def _publish_discovery(self) -> None:
        """Empty retained messages for what was announced before and is no more (a renamed device, a
        changed prefix, a revoked person, discovery turned off), then the configs as they are now."""
        messages = self.discovery_now()
        configs = [topic for topic, _payload in messages]
        values = [self.topics.ha_last] if self.discovery else []
        values += [self.topics.ha_seen(person_slug(n)) for n in self._announced_people]
        for topic in self.announced.stale(configs, values):
            self.link.publish(topic, b"", qos=1, retain=True)
        for topic, payload in messages:
            self.link.publish(topic, json.dumps(payload), qos=1, retain=True)
        try:
            self.announced.save(configs, values)
        except OSError as exc:
            self.report("ha_announced_unsaved", {"detail": f"{exc.strerror or exc}", "path": str(self.announced.path)})

    def _on_status(self, kind: str, detail: str) -> None:
        if kind in ("connected", "disconnected", "refused", "unreachable", "fallback", "error"):
            self.report(f"mqtt_{kind}", {"detail": detail})

    def report(self, kind: str, fields: dict) -> None:
        """One of the sink's own events (and the outbox's), to whoever `set_event_hook` named."""
        if self._event_hook is not None:
            self._event_hook(kind, fields)

    def _on_message(self, message) -> None:
        group_command = self.fleet is not None and self.fleet.is_group_topic(message.topic)
        if message.topic == self.topics.command or group_command:
            if len(message.payload) > self.command_max_bytes:
                self._refuse_too_large(message)
                return
            try:
                self._commands.put_nowait(message)
            except queue.Full:
                if not self._queue_signed(message):
                    self.counts["commands_dropped"] += 1
                    self._report_refusal("command_dropped", {"reason": "too many commands queued"})
            self._command_ready.set()
        elif self.discovery and message.topic == f"{self.discovery_prefix}/status":
            if message.payload.strip() == b"online":  # Home Assistant restarted: it forgot the entities
                self._rediscover()
                self._state_due.set()
                self._wake.set()
        elif message.topic == self.topics.ha_command and self.ha.commands:
            self._admit_ha_command(message)

    def _admit_ha_command(self, message) -> None:
        """An unsigned command from HA: queued only if the gate lets it through (one of the configured
        names, exactly, not retained, not too soon after the last); any other payload is recorded as
        its size and hash, like a refused signed command."""
        payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
        command, reason = self._ha_gate.check(payload, retained=bool(getattr(message, "retain", False)))
        if command is None:
            self._report_refusal(
                "ha_command_refused",
                {"reason": reason, "bytes": len(payload), "sha256": hashlib.sha256(payload).hexdigest()},
            )
            return
        try:
            self._commands.put_nowait(("ha", command))
        except queue.Full:
            self.counts["commands_dropped"] += 1
            self._report_refusal("command_dropped", {"reason": "too many commands queued"})
        self._command_ready.set()

    def _run_ha_command(self, command: str) -> None:
        self.counts["ha_commands"] += 1
        action = self.ha_actions.get(command)
        try:
            if action is None:
                raise RuntimeError("this device has nothing to do it with (no door configured?)")
            action()
            self.report("ha_command", {"command": command, "ok": True})
        except Exception as exc:  # noqa: BLE001 - a command never takes the device down
            self.report("ha_command", {"command": command, "ok": False, "error": f"{type(exc).__name__}: {exc}"})
        self._state_due.set()  # the door switch shows the new state at once
        self._wake.set()

    def _refuse_too_large(self, message) -> None:
        """A command longer than `command_max_bytes`: refused from its length alone (no parsing, no
        signature check, no queueing), recorded like any refusal (rate-limited), and answered on
        the default response topic so that a sender waiting for a reply learns why."""
        payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
        self.counts["commands_too_large"] += 1
        self._report_refusal(
            "command_refused",
            {
                "reason": "too_large",
                "command": None,
                "bytes": len(payload),
                "sha256": hashlib.sha256(payload).hexdigest(),
                "limit": self.command_max_bytes,
            },
        )
        reply = {
            "type": "command_response",
            "device_id": self.device_id,
            "request_id": uuid.uuid4().hex,
            "ok": False,
            "code": INVALID_ARGUMENT,
            "reason": "too_large",
            "error": f"the command is {len(payload):,} bytes; this device takes at most {self.command_max_bytes:,} "
            f"(mqtt.command_max_bytes)",
        }
        self._reply(message, reply)

    # --- the publisher thread ---------------------------------------------------------------------------------

    def _publisher(self) -> None:
        while True:
            self._wake.wait(0.5)
            self._wake.clear()
            if self._new_session.is_set():
                self._new_session.clear()
                self._mids.clear()
                self.outbox.unclaim_all()  # the new client has none of them: hand them over again
            self._take_acks()
            if self._stop.is_set():
                return
            if not self.link.connected.is_set():
                continue
            while self._held and self.link.connected.is_set():
                if self.link.publish(self.topics.event, self._held[0], qos=1) is None:
                    break
                self._held.popleft()
            if self._discovery_due:
                self._discovery_due = False
                self._publish_discovery()
            if self._last_due.is_set() and self._last is not None:
                self._last_due.clear()
                self.link.publish(self.topics.ha_last, self._last, qos=1, retain=True)
            if self._state_due.is_set():
                self._state_due.clear()
                self._last_state = self.clock()
                self._snapshot_sent = bool(self._snapshot)
                self.link.publish(self.topics.state, json_line(self.state_payload()), qos=1, retain=True)
            if self.fleet is not None:
                self.fleet.tick(self.link)
            room = self.window - len(self._mids)
            if room <= 0:
                continue
            session = self._session
            for item_id, _seq, payload in self.outbox.claim(room):
                mid = self.link.publish(self.topics.verdict, payload, qos=1)
                if mid is None or session != self._session:
                    self.outbox.unclaim_all()
                    self._mids.clear()
                    break
                self._mids[mid] = item_id
                self.counts["published"] += 1

    def _take_acks(self) -> None:
        while True:
            try:
                session, mid, code = self._acks.get_nowait()
            except queue.Empty:
                return
            if session != self._session:
                continue
            item_id = self._mids.pop(mid, None)
            if item_id is None:
                continue  # an event, the state or availability
            if code >= 0x80:
                # The broker took the message but refuses it (an ACL, a quota): sending it again
                # cannot help; it is in the audit log. Count it and say so.
                self.counts["refused_by_broker"] += 1
                self.report("verdict_refused_by_broker", {"reason_code": code, "outbox_id": item_id})
            self.outbox.remove(item_id)
            self.counts["acked"] += 1
            self._wake.set()

    # --- commands ------------------------------------------------------------------------------------------

    def _command_worker(self) -> None:
        while not self._stop.is_set():
            for lane in (self._signed, self._commands):  # signed commands from a flood first
                try:
                    message = lane.get_nowait()
                    break
                except queue.Empty:
                    continue
            else:
                self._command_ready.wait(0.5)
                self._command_ready.clear()
                continue
            if isinstance(message, tuple):  # ("ha", name): an unsigned command the gate let through
                self._run_ha_command(message[1])
            else:
                self._handle_command(message)

    def _handle_command(self, message) -> None:
        self.counts["commands"] += 1
        response_topic = None
        reply: dict[str, Any] = {
            "type": "command_response",
            "device_id": self.device_id,
            "request_id": uuid.uuid4().hex,
        }
        data: dict[str, Any] = {}
        try:
            if self.verifier is None:
                raise CommandRefused("no_admin_keys", "this device takes no commands (mqtt.admin_keys is empty)")
            data = self.verifier.parse(message.payload)
            reply["command"], reply["nonce"] = _short(data.get("command")), _short(data.get("nonce"))
            if isinstance(data.get("reply_to"), str):
                response_topic = data["reply_to"]
            self.verifier.verify(data)
            if self.commands is None:
                raise CommandRefused("no_handler", "this device cannot carry out commands")
            if target_group(data.get("device_id")) is not None:  # verified for one of this door's groups
                if self.fleet is None:
                    raise CommandRefused("wrong_group", "this device takes no group commands (mqtt.groups)")
                result = self.fleet.carry_out(data, self.commands.handle)
                if result is None:
                    return  # another door's copy: nothing done, nothing to answer
            else:
                result = self.commands.handle(data["command"], data.get("args") or {})
                if self.fleet is not None and data["command"] in ("import", "revoke"):
                    self.fleet.changed()
            reply.update(ok=True, code=1000, result=result)
        except CommandRefused as exc:
            reply.update(ok=False, code=exc.code, reason=exc.reason, error=exc.message)
            # What was refused, never its payload: whoever may publish here must not be able to
            # fill (and so rotate away) the audit log with text nobody signed.
            payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
            self._report_refusal(
                "command_refused",
                {
                    "reason": exc.reason,
                    "command": reply.get("command"),
                    "bytes": len(payload),
                    "sha256": hashlib.sha256(payload).hexdigest(),
                },
            )
        except EdgeError as exc:
            reply.update(ok=False, code=exc.code, reason="failed", error=exc.message)
        except Exception as exc:  # noqa: BLE001 - a command never takes the device down
            reply.update(ok=False, code=1200, reason="failed", error=f"{type(exc).__name__}: {exc}")
        self._reply(message, reply, reply_to=response_topic)

    def _reply(self, message, reply: dict[str, Any], *, reply_to: str | None = None) -> None:
        """Publish `reply` where the command asked (MQTT 5 response topic first, then its signed
        `reply_to`), if that is one of this device's response topics; else on the default one."""
        props = getattr(message, "properties", None)
        response_topic = getattr(props, "ResponseTopic", None) if props is not None else None
        correlation = getattr(props, "CorrelationData", None) if props is not None else None
        response_topic = response_topic or reply_to
        topic = response_topic if response_topic and self.topics.is_response_topic(response_topic) else None
        properties = reply_properties(correlation) if correlation else None
        self.link.publish(topic or self.topics.response, json_line(reply), qos=1, properties=properties)


def _short(value: Any) -> str | None:
    """A command's name or nonce as sent, if it is a short string; else None (not echoed)."""
    return value if isinstance(value, str) and len(value) <= MAX_COMMAND_NAME else None


class _Limiter:
    """At most `burst` admissions per `window` seconds; counts what it turns away, by kind."""

    def __init__(self, burst: int, window: float, clock: Callable[[], float]) -> None:
        self.burst, self.window, self.clock = burst, window, clock
        self._lock = threading.Lock()
        self._start = clock()
        self._admitted = 0
        self._suppressed: dict[str, int] = {}

    def admit(self, kind: str) -> bool:
        with self._lock:
            if self._admitted < self.burst:
                self._admitted += 1
                return True
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return False

    def roll(self, force: bool = False) -> dict | None:
        """Start a new window if this one is over (or `force`): what it suppressed, if anything."""
        with self._lock:
            now = self.clock()
            if not force and now - self._start < self.window:
                return None
            suppressed, seconds = self._suppressed, now - self._start
            self._start, self._admitted, self._suppressed = now, 0, {}
        return {"suppressed": suppressed, "seconds": round(seconds, 1)} if suppressed else None
