"""The composition root: the one place that turns a `Config` into running parts.

    config ─▶ engine ─▶ gallery (vault or photo folder) ─▶ camera source ─▶ sinks (stdout, audit, MQTT)
           ─▶ Appliance(engine, gallery, source, sinks) ─▶ MQTT commands wired to it

Nothing else builds parts from the configuration: the CLI's `run` calls `appliance_from_config`,
the stages and the appliance get what they need handed in. A new transport or output (HTTP,
door relay) is built here and handed the engine or attached to the appliance as a sink.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from edge.appliance.loop import Appliance
from edge.appliance.notify import Notifier
from edge.camera import Source, SourceError, open_source
from edge.config import Config, ConfigError
from edge.engine import Engine, EngineConfig
from edge.images import IntakeLimits
from edge.matching import Gallery
from edge.sinks import AuditLogSink, Sink, StdoutSink

logger = logging.getLogger(__name__)

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def engine_from_config(config: Config) -> Engine:
    e = config.engine
    limits = IntakeLimits(**{f.name: getattr(config.images, f.name) for f in fields(config.images)})
    return Engine(
        EngineConfig.profile(
            e.profile, detector_mode=e.detector, detector_tile=e.detector_tile, threads=e.threads, limits=limits
        )
    )


def source_from_config(config: Config) -> Source:
    cam = config.camera
    try:
        return open_source(cam.source, width=cam.width, height=cam.height, fps=cam.fps)
    except SourceError as exc:
        raise ConfigError("camera.source", str(exc)) from None


def sinks_from_config(config: Config, *, stdout=None) -> list[Sink]:
    sinks: list[Sink] = []
    if config.sinks.stdout:
        sinks.append(StdoutSink(stdout))
    if config.audit.path:
        a = config.audit
        try:
            sinks.append(AuditLogSink(a.path, max_bytes=a.max_bytes, backups=a.backups, fsync=a.fsync))
        except OSError as exc:
            raise ConfigError("audit.path", f"cannot open {a.path}: {exc.strerror or exc}") from None
    return sinks


# --- the enrolled people -------------------------------------------------------------------------


def gallery_from_photos(engine: Engine, directory: str | Path) -> Gallery:
    """A folder with one sub-folder of photos per person (its name is the person's).

    The largest face of each photo becomes a template; a photo without a face is skipped
    with a warning. Development and tests only: the photos are not encrypted.
    """
    root = Path(directory)
    if not root.is_dir():
        raise ConfigError("gallery.path", f"{root} is not a directory")
    names, templates = [], []
    for person in sorted(p for p in root.iterdir() if p.is_dir()):
        for photo in sorted(p for p in person.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES):
            faces = engine.faces(str(photo), max_faces=1)
            if not faces:
                logger.warning("gallery: no face in %s; skipped", photo)
                continue
            names.append(person.name)
            templates.append(faces[0].embedding)
    if not names:
        raise ConfigError("gallery.path", f"{root} has no person folder with a usable photo")
    return Gallery.from_embeddings(names, np.stack(templates))


def vault_gallery_loader(engine: Engine, path: str | Path) -> Callable[[], Gallery]:
    """A function that (re-)reads the vault at `path` into a `Gallery`, reporting its problems.

    The appliance calls it once at start-up and again on SIGHUP or a `reload` command (e.g.
    after `edge enroll` in another process). Only templates of this engine's model version
    are used.
    """
    from edge.vault import Vault, VaultError, gallery_of

    path = Path(path)
    if not path.is_dir():
        raise ConfigError("vault.path", f"{path} is not a vault directory (create one with the vault tools)")
    try:
        vault = Vault.open(path)
    except (VaultError, OSError) as exc:
        raise ConfigError("vault.path", f"cannot open the vault at {path}: {exc}") from None

    def load() -> Gallery:
        gallery = gallery_of(vault.templates(engine.model_version, int(engine.dim)))
        for problem in gallery.problems:
            logger.warning("vault: %s", problem)
        if gallery.stale:
            logger.warning(
                "vault: %d template(s) belong to another model version and are not used; "
                "rebuild them with the vault tools",
                gallery.stale,
            )
        if not len(gallery):
            logger.warning("vault: nobody is enrolled for this model version in %s; every face is unknown", path)
        return gallery

    return load


def gallery_from_config(config: Config, engine: Engine) -> tuple[Gallery, Callable[[], Gallery] | None]:
    """The enrolled people the config names, and how to re-read them (None: they cannot change)."""
    if config.gallery.path:
        return gallery_from_photos(engine, config.gallery.path), None
    if config.vault.path:
        from edge.vault import VaultError

        load = vault_gallery_loader(engine, config.vault.path)
        try:
            return load(), load
        except (VaultError, OSError) as exc:  # e.g. no index: refuse to start, naming the path (a reload keeps the old)
            raise ConfigError("vault.path", f"cannot use the vault at {config.vault.path}: {exc}") from None
    raise ConfigError("vault.path", "no enrolment store: set vault.path (or gallery.path for development)")


# --- MQTT ----------------------------------------------------------------------------------------


def mqtt_sink_from_config(config: Config):
    """The MQTT sink (not started) when `mqtt.enabled`, else None. Errors name the config key."""
    if not config.mqtt.enabled:
        return None
    from edge.admin.signing import CommandVerifier
    from edge.errors import EdgeError
    from edge.mqtt.client import MqttSettings, MqttSetupError
    from edge.mqtt.outbox import Outbox
    from edge.mqtt.sink import MqttSink
    from edge.mqtt.topics import Topics

    m, device_id = config.mqtt, config.device_id
    try:
        settings = MqttSettings.from_config(m, client_id=f"edge-{device_id}")
    except MqttSetupError as exc:
        raise ConfigError(exc.key, exc.detail) from None
    holder: dict[str, Any] = {}

    def dropped(count: int, first: int, last: int) -> None:
        sink = holder.get("sink")
        if sink is not None:
            sink.report(
                "outbox_dropped", {"dropped": count, "first_seq": first, "last_seq": last, "total": sink.outbox.dropped}
            )

    try:
        outbox = Outbox(m.outbox_path, max_items=m.outbox_max, on_drop=dropped)
    except OSError as exc:
        raise ConfigError("mqtt.outbox_path", f"cannot use {m.outbox_path}: {exc.strerror or exc}") from None
    verifier = None
    if m.admin_keys:
        try:
            verifier = CommandVerifier(
                m.admin_keys,
                device_id=device_id,
                max_age=m.command_max_age,
                nonce_log=f"{m.outbox_path}/command-nonces.json",
                groups=m.groups,
            )
        except EdgeError as exc:
            raise ConfigError("mqtt.outbox_path", exc.message) from None
    sink = MqttSink(
        settings,
        device_id=device_id,
        outbox=outbox,
        topics=Topics.for_device(device_id, m.topic_prefix),
        discovery=m.discovery,
        discovery_prefix=m.discovery_prefix,
        state_interval=m.state_interval,
        verifier=verifier,
        face_recipient=m.face_recipient,
        command_max_bytes=m.command_max_bytes,
        **ha_options_from_config(config),
    )
    holder["sink"] = sink
    sink.fleet = fleet_door_from_config(config, topics=sink.topics)
    return sink


def console_url(config: Config) -> str:
    """Where HA's "Visit" link points: mqtt.discovery_console_url, else the console when the HTTP API
    is on an address HA can reach (a loopback console is not reachable from HA's host)."""
    m, h = config.mqtt, config.http
    if m.discovery_console_url or not h.enabled:
        return m.discovery_console_url
    if h.host in ("127.0.0.1", "localhost", "::1"):
        return ""
    host = socket.gethostname() if h.host in ("0.0.0.0", "::", "") else h.host
    host = f"[{host}]" if ":" in host else host
    return f"{'https' if h.tls_cert else 'http'}://{host}:{h.port}/console/"


def ha_options_from_config(config: Config) -> dict[str, Any]:
    """The MQTT sink's Home Assistant keywords (docs/mqtt.md, "Home Assistant")."""
    from edge.mqtt.topics import HaOptions

    m = config.mqtt
    ha = HaOptions(area=m.discovery_area, console_url=console_url(config), commands=tuple(m.ha_commands))
    return {
        "ha": ha,
        "stranger": m.discovery_stranger,
        "discovery_people": m.discovery_people,
        "announced_path": f"{m.outbox_path}/ha-announced.json",
    }


def attach_ha(appliance: Appliance, mqtt: Any, door: Any = None) -> None:
    """What HA's unsigned commands do, and who is enrolled (for the per-person entities).
    `door`: the door relay's controller (docs/door.md), when configured."""
    mqtt.people_source = lambda: list(appliance.gallery.people)
    mqtt.ha_actions["reload"] = appliance.reload
    if door is not None:
        mqtt.ha_actions["door_enable"] = lambda: door.set_enabled(True)
        mqtt.ha_actions["door_disable"] = lambda: door.set_enabled(False)
        mqtt.door_enabled = lambda: bool(door.enabled)


# --- fleet enrolment (docs/fleet.md) ----------------------------------------------------------------


def fleet_door_from_config(config: Config, *, topics: Any) -> Any:
    """The door's part in the fleet (group commands, the retained fleet state) when `mqtt.groups`
    names any group, else None."""
    m = config.mqtt
    if not m.groups:
        return None
    from edge.mqtt.fleet import FleetDoor

    return FleetDoor(
        device_id=config.device_id,
        topics=topics,
        groups=m.groups,
        group_prefix=m.group_prefix,
        vault_path=config.vault.path or None,
        applied_log=f"{m.outbox_path}/fleet-applied.json",
        interval=m.state_interval,
    )


class FleetNode:
    """The appliance without a camera (`edge node`): the MQTT link, the vault, signed device and
    group commands, imports through the real engine. For fleet tests and for a door whose camera
    is elsewhere; `close()` stops it like `edge run` (availability "stopped")."""

    def __init__(self, config: Config, *, engine: Engine | None = None) -> None:
        import threading

        from edge.admin.commands import CommandHandler

        if not config.mqtt.enabled:
            raise ConfigError("mqtt.enabled", "edge node needs MQTT (--mqtt URL or [mqtt] enabled = true)")
        if not config.vault.path:
            raise ConfigError("vault.path", "edge node needs a vault (--vault DIR or [vault] path)")
        self.engine = engine or engine_from_config(config)
        self.mqtt = mqtt_sink_from_config(config)
        self._started = time.time()
        lock = threading.Lock()  # the engine's interpreters are not shared between threads

        def in_lock(fn: Callable[[], Any]) -> Any:
            with lock:
                return fn()

        self.mqtt.commands = CommandHandler(
            status=lambda: {"mode": "node", "uptime_s": round(time.time() - self._started, 1)},
            vault_path=config.vault.path,
            engine=self.engine.bytes_only(),  # commands come from the network: image content only
            run_in_loop=in_lock,
        )
        self.mqtt.set_event_hook(lambda kind, fields: logger.info("node: %s %s", kind, fields))

    def start(self) -> FleetNode:
        self.mqtt.start()
        return self

    def close(self) -> None:
        self.mqtt.close()


def attach_mqtt(appliance: Appliance, mqtt: Any, *, vault_path: str | None, door: Any = None) -> None:
    """Wire an MQTT sink to the appliance (commands, events, status) and start it."""
    from edge.admin.commands import CommandHandler

    mqtt.commands = CommandHandler(
        status=lambda: {**appliance.snapshot(), "mqtt": mqtt.state_payload()["mqtt"]},
        vault_path=vault_path,
        engine=appliance.engine.bytes_only(),  # commands come from the network: image content only, never a path
        reload=appliance.reload,
        run_in_loop=appliance.call_in_loop,
    )
    mqtt.set_event_hook(lambda kind, fields: appliance.post_event(kind, **fields))
    appliance.want_face = appliance.want_face or mqtt.wants_face
    attach_ha(appliance, mqtt, door)
    mqtt.start()


# --- the door (edge/door, docs/door.md) ---------------------------------------------------------


def door_sink_from_config(config: Config):
    """The door sink (its lines requested, its thread not started) when `door.enabled`, else None."""
    if not config.door.enabled:
        return None
    from edge.door import DoorController, DoorSink, Lines
    from edge.door.lines import DoorSetupError, open_request

    d = config.door
    try:
        request = open_request(d)
    except DoorSetupError as exc:
        raise ConfigError(exc.key, exc.detail) from None
    lines = Lines(request, relay=d.relay_line, contact=d.contact_line, exit=d.exit_line)
    controller = DoorController(lines, mode=d.mode, hold_s=d.hold_s, held_open_s=d.held_open_s)
    return DoorSink(controller, max_grant_age_s=d.max_grant_age_s)


def attach_door(appliance: Appliance, door: Any) -> None:
    """Door events go out through the appliance; grant ages are measured on its clock."""
    offset = appliance.wall() - appliance.clock()  # the appliance's monotonic → epoch mapping, taken now
    door.attach(post_event=appliance.post_event, epoch=lambda: appliance.clock() + offset)


# --- the appliance -------------------------------------------------------------------------------


def appliance_from_config(
    config: Config,
    *,
    engine: Engine | None = None,
    gallery: Gallery | None = None,
    source: Source | None = None,
    sinks: Sequence[Sink] | None = None,
    stdout=None,
    notifier: Notifier | None = None,
) -> Appliance:
    """Everything `edge run` builds, from the config (pass any part to use your own).

    With `mqtt.enabled` the MQTT sink is added (unless `sinks` is given), wired to the
    appliance for commands and events, and started: it connects while the models load.
    A `gallery` given here is fixed (SIGHUP cannot re-read it).
    """
    source = source or source_from_config(config)
    engine = engine or engine_from_config(config)
    if config.liveness.mode != "off":
        engine.open_liveness()  # now, not on the first face: that frame would wait for the model
        if config.liveness.blink:
            engine.open_blink()
    reload_gallery = None
    if gallery is None:
        gallery, reload_gallery = gallery_from_config(config, engine)
    mqtt = door = None
    if sinks is None:
        sinks = sinks_from_config(config, stdout=stdout)
        mqtt = mqtt_sink_from_config(config)
        if mqtt is not None:
            sinks.append(mqtt)
        door = door_sink_from_config(config)
        if door is not None:
            sinks.insert(0, door)  # first: the relay moves before the other sinks write
    seq_start = max((s.last_seq() for s in sinks if isinstance(s, AuditLogSink)), default=0)
    if mqtt is not None:
        seq_start = max(seq_start, mqtt.outbox.last_seq)
    appliance = Appliance(
        engine,
        gallery,
        source,
        reload_gallery=reload_gallery,
        config=config,
        sinks=sinks,
        notifier=notifier or Notifier(),
        seq_start=seq_start,
    )
    if door is not None:
        attach_door(appliance, door)
    if mqtt is not None:
        controller = door.controller if door is not None else None
        attach_mqtt(appliance, mqtt, vault_path=config.vault.path or None, door=controller)
    return appliance


__all__ = [
    "FleetNode",
    "HttpThread",
    "appliance_from_config",
    "enrolments_from_config",
    "http_app_from_config",
    "serve_http",
    "attach_door",
    "attach_mqtt",
    "door_sink_from_config",
    "engine_from_config",
    "fleet_door_from_config",
    "gallery_from_config",
    "gallery_from_photos",
    "mqtt_sink_from_config",
    "sinks_from_config",
    "source_from_config",
    "vault_gallery_loader",
]


# --- the HTTP API ----------------------------------------------------------------------------


def enrolments_from_config(config: Config, engine: Engine) -> Any:
    """The vault and gallery the /v1/ endpoints of `edge serve` use (edge.http.admin.Enrolments),
    or None when the config names no enrolment store or it cannot be used (a warning: the
    compare endpoints are served all the same). The gallery is re-read from the vault after each
    /v1/ enrolment or revocation."""
    from edge.http.admin import Enrolments

    if not (config.gallery.path or config.vault.path):
        return None
    try:
        gallery, load = gallery_from_config(config, engine)
    except ConfigError as exc:  # the compare endpoints need no vault: serve them, /v1/ says there is none
        logger.warning("HTTP /v1/ has no enrolments to work on: %s", exc.message)
        return None
    current = {"gallery": gallery}

    def refresh() -> None:
        if load is not None:
            current["gallery"] = load()

    vault_path = None if config.gallery.path else config.vault.path
    return Enrolments(vault_path, lambda: current["gallery"], refresh)


def http_app_from_config(config: Config, engine: Engine | None = None, *, appliance: Appliance | None = None) -> Any:
    """The HTTP API's app (edge.http, docs/http.md), answering with `engine` (built from the
    config when not given). Encrypted images open with the device key of `vault.path` when
    that vault has one; without it they are refused (1200).

    With `appliance` (`edge run`), the app shares its engine and gallery: every engine job runs
    on the camera loop's thread between frames (the engine's interpreters are not thread-safe),
    and a /v1/ enrolment re-reads the loop's gallery before it is answered."""
    from edge.http import create_app
    from edge.http.admin import Enrolments
    from edge.vault import VaultError, load_private_key
    from edge.vault.keys import PRIVATE_KEY_FILE

    key = None
    if config.vault.path and (Path(config.vault.path) / PRIVATE_KEY_FILE).exists():
        try:
            key = load_private_key(config.vault.path)
        except VaultError as exc:
            raise ConfigError("vault.path", f"cannot open the device key: {exc}") from None
    if appliance is not None:
        vault_path = None if config.gallery.path else config.vault.path
        enrolments = Enrolments(vault_path, lambda: appliance.gallery, appliance.reload_now)
        console = console_from_config(config, appliance, vault_path)
        app = create_app(
            appliance.engine,
            config.http,
            unseal_key=key,
            enrolments=enrolments,
            runner=appliance.call_in_loop,
            extra_routes=console.routes,
            on_close=[console.close],
        )
        app.add_middleware(console.middleware)
        return app
    engine = engine or engine_from_config(config)
    return create_app(engine, config.http, unseal_key=key, enrolments=enrolments_from_config(config, engine))


class _ConsoleParts:
    def __init__(self, routes: list, close: Callable[[], None], middleware: Any) -> None:
        self.routes, self.close, self.middleware = routes, close, middleware


def console_from_config(config: Config, appliance: Appliance, vault_path: str | None) -> _ConsoleParts:
    """The web console (edge.console, docs/console.md) for `edge run`'s HTTP app: its routes
    under /console, working on the appliance (live view, verdicts) and its vault (enrol, revoke,
    people, through the same edge.vault steps as `edge enroll`). Without a vault the pages that
    change enrolments answer that there is none."""
    from edge.console.actions import NoVaultActions, VaultActions
    from edge.console.app import ConsoleContext, SecurityHeaders, console_routes

    actions = VaultActions(appliance, vault_path) if vault_path else NoVaultActions()
    context = ConsoleContext(
        appliance=appliance,
        config=config,
        enrol=actions.enrol,
        revoke=actions.revoke,
        people=actions.people,
        check_photo=actions.check_photo,
    )
    routes = console_routes(context)
    return _ConsoleParts(routes, routes[0].console.close, SecurityHeaders)


def _uvicorn_config(app: Any, config: Config) -> Any:
    import uvicorn

    h = config.http
    tls = {"ssl_certfile": h.tls_cert, "ssl_keyfile": h.tls_key} if h.tls_cert else {}
    logger.warning("serving the HTTP API on %s://%s:%d", "https" if tls else "http", h.host, h.port)
    # log_config=None: uvicorn logs through the root logger edge.logs configured; no Server header.
    return uvicorn.Config(app, host=h.host, port=h.port, log_config=None, server_header=False, access_log=False, **tls)


def serve_http(app: Any, config: Config) -> None:
    """Serve `app` with uvicorn on `http.host`:`http.port` (HTTPS with `http.tls_cert`/`tls_key`) until stopped."""
    import uvicorn

    uvicorn.Server(_uvicorn_config(app, config)).run()


class HttpThread:
    """The HTTP API served on a thread beside the camera loop (`edge run` with `http.enabled`).

    The loop keeps the main thread (its signal handlers stop it on SIGTERM); `stop()` then ends
    the server: open requests are answered, new connections refused."""

    def __init__(self, app: Any, config: Config) -> None:
        import threading

        import uvicorn

        self.server = uvicorn.Server(_uvicorn_config(app, config))
        self.thread = threading.Thread(target=self.server.run, name="edge-http", daemon=True)
        self.where = f"{config.http.host}:{config.http.port}"

    def start(self, timeout: float = 30.0) -> None:
        """Start serving; ConfigError naming http.port when the server cannot start (e.g. the port is taken)."""
        import time

        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise ConfigError("http.port", f"the HTTP API cannot listen on {self.where} (see the log above)")
            time.sleep(0.02)

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout)
