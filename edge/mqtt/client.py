"""One connection to the broker: MQTT 5 (falling back to 3.1.1), TLS, last will, reconnect with backoff.

`MqttLink` wraps a paho-mqtt 2.x client and runs its network loop on its own thread. It
never raises for a transport problem: an unreachable broker, a refused login or a dropped
connection becomes a call of `on_status(kind, detail)` (and a record on this module's logger), and the link
keeps trying, waiting `reconnect_min` seconds and doubling up to `reconnect_max`.

With ``protocol = "auto"`` the link speaks MQTT 5 and, if the broker answers that it does
not support protocol level 5, starts again with a new client speaking 3.1.1 (messages that
client had not delivered are handed over again by whoever published them: see
`on_new_session`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge.broker_url import PASSWORD_ENV, BrokerUrl, BrokerUrlError, command_line_password_warning, parse_broker_url

logger = logging.getLogger(__name__)

PROTOCOLS = {"5": paho.MQTTv5, "3.1.1": paho.MQTTv311}
# CONNACK reason codes (MQTT 5 numbering; paho maps 3.1.1 return codes onto them)
UNSUPPORTED_PROTOCOL = {1, 132}
BAD_LOGIN = {4, 5, 134, 135}


class MqttSetupError(ValueError):
    """Settings that cannot work (unreadable password or certificate file, bad URL); names the key."""

    def __init__(self, key: str, detail: str) -> None:
        self.key, self.detail = key, detail
        super().__init__(f"{key}: {detail}")


@dataclass(frozen=True)
class MqttSettings:
    broker: BrokerUrl
    client_id: str
    username: str | None = None
    password: str | None = None
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    protocol: str = "auto"
    keepalive: int = 30
    reconnect_min: float = 1.0
    reconnect_max: float = 30.0

    @classmethod
    def from_config(cls, mqtt: Any, *, client_id: str, url: str | None = None) -> MqttSettings:
        """Settings from an `edge.config.MqttConfig` (and an optional URL that replaces `mqtt.url`).

        The password is, first found: the file `mqtt.password_file`; the environment variable
        ``EDGE_MQTT_PASSWORD``; the URL's (which a URL given on the command line leaves in the
        process list: that is logged as a warning)."""
        key = "--mqtt" if url else "mqtt.url"
        try:
            broker = parse_broker_url(url or mqtt.url)
        except BrokerUrlError as exc:
            raise MqttSetupError(key, str(exc)) from None
        username = mqtt.username or broker.username
        warning = command_line_password_warning(url, key) if url else None
        if warning:
            logger.warning("%s", warning)
        password = broker.password
        if os.environ.get(PASSWORD_ENV):
            password = os.environ[PASSWORD_ENV]
        if mqtt.password_file:
            try:
                password = Path(mqtt.password_file).read_text().strip("\r\n")
            except OSError as exc:
                detail = f"cannot read {mqtt.password_file}: {exc.strerror}"
                raise MqttSetupError("mqtt.password_file", detail) from None
        for name in ("ca_file", "cert_file", "key_file"):
            path = getattr(mqtt, name)
            if path and not Path(path).is_file():
                raise MqttSetupError(f"mqtt.{name}", f"no such file: {path}")
        return cls(
            broker=broker,
            client_id=client_id,
            username=username,
            password=password,
            ca_file=mqtt.ca_file,
            cert_file=mqtt.cert_file,
            key_file=mqtt.key_file,
            protocol=mqtt.protocol,
            keepalive=mqtt.keepalive,
            reconnect_min=mqtt.reconnect_min,
            reconnect_max=mqtt.reconnect_max,
        )


def describe_refusal(reason: Any) -> str:
    code = getattr(reason, "value", reason)
    if code in BAD_LOGIN:
        return f"the broker refused the login ({reason}): check the user name and password"
    if code in UNSUPPORTED_PROTOCOL:
        return f"the broker does not support this MQTT version ({reason})"
    return f"the broker refused the connection ({reason})"


class MqttLink:
    """A paho client on its own thread, reconnecting for ever until `stop()`."""

    def __init__(
        self,
        settings: MqttSettings,
        *,
        will: tuple[str, bytes, int, bool] | None = None,
        on_connect: Callable[[MqttLink, bool], None] | None = None,
        on_status: Callable[[str, str], None] | None = None,
        on_message: Callable[[paho.MQTTMessage], None] | None = None,
        on_publish: Callable[[int, int, int], None] | None = None,
        on_new_session: Callable[[int], None] | None = None,
        max_inflight: int = 64,
    ) -> None:
        self.settings = settings
        self.will = will
        self._on_connect = on_connect
        self._on_status = on_status
        self._on_message = on_message
        self._on_publish = on_publish
        self._on_new_session = on_new_session
        self.max_inflight = max_inflight
        self.protocol = "3.1.1" if settings.protocol == "3.1.1" else "5"
        self.connected = threading.Event()
        self.last_error: str | None = None
        self.connects = 0
        self.failures = 0
        self.session = 0  # a new paho client (first start, protocol fallback): its mids start over
        self._client: paho.Client | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._restart = False  # set by on_connect to leave loop_forever and start a new client
        self._lock = threading.Lock()
        self._subacks: set[int] = set()
        self._subacked = threading.Condition()

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> MqttLink:
        self._thread = threading.Thread(target=self._run, name="edge-mqtt", daemon=True)
        self._thread.start()
        return self

    def stop(self, final: tuple[str, bytes, int, bool] | None = None, *, timeout: float = 5.0) -> None:
        """Publish `final` (if connected; waits for its ack up to `timeout`), disconnect, end the thread."""
        client = self._client
        if client is not None and final is not None and self.connected.is_set():
            try:
                info = client.publish(*final)
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError, OSError):
                pass
        self._stopping.set()
        if client is not None:
            try:
                client.disconnect()
            except Exception:  # noqa: BLE001 - already gone
                pass
        if self._thread is not None:
            self._thread.join(timeout)

    def wait_connected(self, timeout: float) -> bool:
        return self.connected.wait(timeout)

    # --- publishing ----------------------------------------------------------------------------

    def publish(
        self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False, properties: Properties | None = None
    ) -> int | None:
        """Hand a message to the client; its mid (acked later through `on_publish`), or None if not connected."""
        client = self._client
        if client is None or not self.connected.is_set():
            return None
        if properties is not None and self.protocol != "5":
            properties = None
        try:
            info = client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        except (ValueError, RuntimeError) as exc:
            logger.warning("publish to %s failed: %s", topic, exc)
            return None
        if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN, paho.MQTT_ERR_QUEUE_SIZE):
            return None
        return info.mid

    def subscribe(self, topic: str, qos: int = 1, *, wait: float | None = None) -> bool:
        """Subscribe; with `wait`, block (not on the network thread!) until the broker's SUBACK."""
        client = self._client
        if client is None or not self.connected.is_set():
            return False
        _rc, mid = client.subscribe(topic, qos)
        if wait is None or mid is None:
            return True
        with self._subacked:
            return self._subacked.wait_for(lambda: mid in self._subacks, wait)

    def _suback(self, _client, _userdata, mid, _reasons, _properties) -> None:
        with self._subacked:
            self._subacks.add(mid)
            self._subacked.notify_all()

    # --- the network thread --------------------------------------------------------------------

    def _make_client(self) -> paho.Client:
        s = self.settings
        version = PROTOCOLS[self.protocol]
        client = paho.Client(
            paho.CallbackAPIVersion.VERSION2,
            client_id=s.client_id,
            protocol=version,
            clean_session=None if version == paho.MQTTv5 else True,
            reconnect_on_failure=True,
        )
        if s.username is not None:
            client.username_pw_set(s.username, s.password)
        if s.broker.tls:
            client.tls_set(
                ca_certs=s.ca_file or None,
                certfile=s.cert_file or None,
                keyfile=s.key_file or None,
                cert_reqs=ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        if self.will is not None:
            topic, payload, qos, retain = self.will
            client.will_set(topic, payload, qos=qos, retain=retain)
        client.reconnect_delay_set(s.reconnect_min, s.reconnect_max)  # type: ignore[arg-type] - floats work
        client.max_inflight_messages_set(self.max_inflight)
        client.on_connect = self._connected
        client.on_connect_fail = self._connect_failed
        client.on_disconnect = self._disconnected
        client.on_message = self._message
        client.on_subscribe = self._suback
        session = self.session
        client.on_publish = lambda _c, _u, mid, reason, _p: self._published(session, mid, reason)
        return client

    def _run(self) -> None:
        s = self.settings
        while not self._stopping.is_set():
            self._restart = False
            self.session += 1
            client = self._make_client()
            with self._lock:
                self._client = client
            if self._on_new_session is not None:
                self._on_new_session(self.session)
            try:
                client.connect_async(
                    s.broker.host,
                    s.broker.port,
                    keepalive=s.keepalive,
                    clean_start=True if self.protocol == "5" else paho.MQTT_CLEAN_START_FIRST_ONLY,
                )
                client.loop_forever(retry_first_connection=True)
            except Exception as exc:  # noqa: BLE001 - e.g. a TLS setup error: report, wait, retry
                self._status("error", f"{type(exc).__name__}: {exc}")
                self._stopping.wait(s.reconnect_max)
            self.connected.clear()
            if not self._restart:
                break

    # --- paho callbacks (on the network thread) ------------------------------------------------------

    def _status(self, kind: str, detail: str) -> None:
        if kind != "connected":
            self.last_error = detail
        level = logging.INFO if kind in ("connected", "fallback") else logging.WARNING
        logger.log(level, "%s: %s: %s", self.settings.broker.redacted(), kind, detail)
        if self._on_status is not None:
            try:
                self._on_status(kind, detail)
            except Exception as exc:  # noqa: BLE001
                logger.error("status callback: %s", exc)

    def _connected(self, client, _userdata, _flags, reason: ReasonCode, _properties) -> None:
        if reason.is_failure:
            code = reason.value
            if code in UNSUPPORTED_PROTOCOL and self.settings.protocol == "auto" and self.protocol == "5":
                self._status("fallback", "the broker does not speak MQTT 5; using 3.1.1")
                self.protocol = "3.1.1"
                self._restart = True
                client.disconnect()
                return
            self.failures += 1
            self._status("refused", describe_refusal(reason))
            return
        self.connects += 1
        self.last_error = None
        self.connected.set()
        self._status("connected", f"MQTT {self.protocol}")
        if self._on_connect is not None:
            try:
                self._on_connect(self, self.connects == 1)
            except Exception as exc:  # noqa: BLE001
                logger.error("on-connect: %s: %s", type(exc).__name__, exc)

    def _connect_failed(self, _client, _userdata) -> None:
        self.failures += 1
        self._status("unreachable", f"cannot connect to {self.settings.broker.host}:{self.settings.broker.port}")

    def _disconnected(self, _client, _userdata, _flags, reason, _properties) -> None:
        was = self.connected.is_set()
        self.connected.clear()
        if was and not self._stopping.is_set():
            self._status("disconnected", str(reason))

    def _message(self, _client, _userdata, message: paho.MQTTMessage) -> None:
        if self._on_message is not None:
            try:
                self._on_message(message)
            except Exception as exc:  # noqa: BLE001
                logger.error("message on %s: %s: %s", message.topic, type(exc).__name__, exc)

    def _published(self, session: int, mid: int, reason: ReasonCode) -> None:
        if self._on_publish is not None:
            code = getattr(reason, "value", 0) or 0
            self._on_publish(session, mid, code)


def response_properties(response_topic: str, correlation: bytes) -> Properties:
    props = Properties(PacketTypes.PUBLISH)
    props.ResponseTopic = response_topic
    props.CorrelationData = correlation
    return props


def reply_properties(correlation: bytes) -> Properties:
    props = Properties(PacketTypes.PUBLISH)
    props.CorrelationData = correlation
    return props


def probe(settings: MqttSettings, *, timeout: float = 5.0) -> tuple[bool, str]:
    """Connect once and disconnect: (True, "MQTT 5") or (False, why). For `edge doctor`."""
    probe_settings = dataclasses.replace(settings, client_id=f"{settings.client_id}-probe-{secrets.token_hex(3)}")
    result: dict[str, str] = {}
    done = threading.Event()

    def status(kind: str, detail: str) -> None:
        if kind in ("connected", "refused", "unreachable", "error"):
            result.setdefault(kind, detail)
            done.set()

    link = MqttLink(probe_settings, on_status=status)
    link.start()
    done.wait(timeout)
    ok = "connected" in result
    link.stop(timeout=2.0)
    if ok:
        return True, f"MQTT {link.protocol}"
    if result:
        kind, detail = next(iter(result.items()))
        return False, detail
    return False, f"no answer from {settings.broker.host}:{settings.broker.port} within {timeout:g} s"


__all__ = [
    "PASSWORD_ENV",
    "MqttLink",
    "MqttSettings",
    "MqttSetupError",
    "describe_refusal",
    "probe",
    "reply_properties",
    "response_properties",
]
