"""The appliance's configuration: typed dataclasses, loaded from TOML, validated at load.

    cfg = load_config("firmware_config/edge.toml", overrides={"camera": {"source": "clip.avi"}})

Every key has a type, a default and (where it matters) a range or a set of choices. A
value of the wrong type, out of range, or a key the schema does not know stops loading
with a `ConfigError` that names the key path (``decision.k: must be an integer between 1
and decision.n (5), got 7``). `firmware_config/edge.toml` documents every key; its
values are the defaults here (tests/test_config.py holds the two together).

Paths are used as written: a relative path is relative to the working directory of the
process (systemd units should give absolute paths).
"""

from __future__ import annotations

import math
import re
import socket
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

from edge.errors import INVALID_ARGUMENT, EdgeError
from edge.logs import DEFAULT_LEVEL, LEVELS
from edge.matching import DEFAULT_THRESHOLD
from edge.profiles import PROFILE_NAMES

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10 (JetPack 6): the same parser as a package
    import tomli as tomllib


class ConfigError(EdgeError):
    """A config value is missing, unknown, of the wrong type or out of range; `key` names it."""

    def __init__(self, key: str, detail: str, *, source: str | None = None) -> None:
        self.key = key
        self.detail = detail
        self.source = source
        prefix = f"{source}: " if source else ""
        super().__init__(INVALID_ARGUMENT, f"{prefix}{key}: {detail}")


def _opt(default: Any, *, lo: float | None = None, hi: float | None = None, choices: tuple = (), **meta: Any) -> Any:
    """A config field with its default and the limits `_check` enforces."""
    return field(default=default, metadata={"lo": lo, "hi": hi, "choices": choices, **meta})


DEVICE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class DeviceConfig:
    # Names the device in every verdict (and, later, in MQTT topics). Empty: the hostname.
    id: str = _opt("")


@dataclass(frozen=True)
class CameraConfig:
    # "picamera2" or "picamera2:N" (Pi CSI camera N), a device index ("0"), a V4L2 path
    # ("/dev/video0"), an rtsp://, http:// or https:// URL, a video file, or a directory of images.
    source: str = _opt("0", int_ok=True)
    width: int = _opt(640, lo=16, hi=8192)  # asked of live cameras; files and directories keep their size
    height: int = _opt(480, lo=16, hi=8192)
    fps: float = _opt(30.0, lo=0.1, hi=240.0)  # asked of live cameras; the pace of a directory in realtime mode
    realtime: bool = _opt(False)  # pace files and directories at their frame rate (dropping frames like a camera)
    reopen_backoff: float = _opt(0.5, lo=0.01, hi=60.0)  # first wait before reopening a failed source, seconds
    reopen_backoff_max: float = _opt(10.0, lo=0.01, hi=3600.0)  # the wait doubles up to this


@dataclass(frozen=True)
class EngineSection:
    profile: str = _opt("accurate", choices=PROFILE_NAMES)
    threads: int = _opt(1, lo=0, hi=16)  # interpreter threads per model; 0 = one per core (at most 4)
    detector: str = _opt("cascade", choices=("cascade", "both", "full", "short"))
    # Full range also looks at square tiles of this side in large frames, so far faces (down to
    # ~24 px wide in 640×480) are found; 0 = off (cheaper when nobody stands far away).
    detector_tile: int = _opt(352, lo=0, hi=4096)
    max_faces: int = _opt(2, lo=1, hi=32)  # the largest N faces of a frame are tracked and identified


@dataclass(frozen=True)
class ImagesConfig:
    # The image intake (edge/images.py, docs/api.md "Image limits"): what a photo given to the
    # engine (an MQTT `import`, the coming HTTP API) may be, and what decoding one may cost.
    max_bytes: int = _opt(5 * 1024 * 1024, lo=1, hi=1 << 31)  # encoded size; 2004 above
    min_side: int = _opt(64, lo=1, hi=65535)  # pixels; 2003 below
    max_side: int = _opt(4096, lo=1, hi=65535)  # pixels; 2003 above (unless downscale)
    max_pixels: int = _opt(4096 * 4096, lo=1, hi=1 << 32)  # width × height; 2003 above (unless downscale)
    max_scans: int = _opt(32, lo=1, hi=10_000)  # JPEG scans; 2006 above
    max_decoded_bytes: int = _opt(256 * 1024 * 1024, lo=1 << 20, hi=1 << 36)  # decoder memory; 2003 above
    decode_timeout_ms: float = _opt(2000.0, lo=1.0, hi=600_000.0)  # CPU time of the structure checks; 2006
    downscale: bool = _opt(False)  # photos above max_side/max_pixels: decoded smaller instead of refused
    downscale_max_bytes: int = _opt(32 * 1024 * 1024, lo=1, hi=1 << 31)
    downscale_max_pixels: int = _opt(64 * 1024 * 1024, lo=1, hi=1 << 32)


@dataclass(frozen=True)
class QualityConfig:
    min_face: int = _opt(32, lo=0, hi=4096)  # faces narrower than this (pixels) are ignored
    min_score: float = _opt(0.6, lo=0.0, hi=1.0)  # detections less confident than this are ignored
    gate: bool = _opt(True)  # skip faces the quality stage marks not ok (when edge.vision.quality is installed)


@dataclass(frozen=True)
class VaultConfig:
    path: str = _opt("/var/lib/edge/vault")  # the encrypted enrolment vault


@dataclass(frozen=True)
class GalleryConfig:
    # Development only: a folder with one sub-folder of photos per person, enrolled at
    # start-up, unencrypted. Set this or vault.path, not both.
    path: str = _opt("")


@dataclass(frozen=True)
class DecisionConfig:
    threshold: float = _opt(DEFAULT_THRESHOLD, lo=0.0, hi=1.0)  # gallery-aware score; 0.7 ↔ FPIR 1/10,000 per face
    # "mean": granted when the mean embedding of a track's last n frames of one face (at least k
    # of them) matches a person; "count": when k of its last n identified frames each match.
    evidence: str = _opt("mean", choices=("mean", "count"))
    k: int = _opt(3, lo=1, hi=1000)
    n: int = _opt(5, lo=1, hi=1000)
    # A frame whose 1:1 score against its track's evidence is below this is another face: the
    # evidence starts afresh (0.5 ↔ FAR 1/100: the same face scores far higher frame to frame).
    same_face_score: float = _opt(0.5, lo=0.0, hi=1.0)
    deny_after: int = _opt(10, lo=1, hi=100_000)  # denied after this many confident non-matches
    unknown_after: int = _opt(5, lo=0, hi=100_000)  # one `unknown` event after this many; 0 = never
    cooldown_s: float = _opt(15.0, lo=0.0, hi=86_400.0)  # no second `granted` for a person within this
    recheck_every: int = _opt(15, lo=1, hi=100_000)  # a decided track is re-identified every N frames ...
    recheck_s: float = _opt(1.0, lo=0.0, hi=3600.0)  # ... or after this many seconds, whichever comes first
    # A granted track whose re-checks fail to name its person this many times in a row is split:
    # the face there is decided afresh (a stranger who took an enrolled person's place).
    lose_after: int = _opt(5, lo=1, hi=1000)
    # A grant while another, unrecognised face is in view (or one that follows while the door
    # is open): "flag" raises a `tailgate` event; "withhold" also holds the grant back; "off".
    tailgate: str = _opt("flag", choices=("off", "flag", "withhold"))
    door_open_s: float = _opt(5.0, lo=0.0, hi=3600.0)  # how long a grant keeps the door open
    track_iou: float = _opt(0.3, lo=0.0, hi=1.0)  # a face continues a track when they overlap this much
    track_max_shift: float = _opt(0.5, lo=0.0, hi=10.0)  # ... or its centre moved ≤ this × the box width
    track_max_age: int = _opt(10, lo=0, hi=100_000)  # frames a track survives unseen


@dataclass(frozen=True)
class LivenessConfig:
    # Presentation-attack detection (docs/liveness.md). "off": a photo or a phone screen of an
    # enrolled person opens the door. "passive": the liveness model on the track's frames and the
    # planar-motion cue must say live before a grant. "passive+challenge": also a random head
    # turn the face must follow. When on it fails closed: no liveness evidence, no grant.
    mode: str = _opt("off", choices=("off", "passive", "passive+challenge"))
    threshold: float = _opt(0.5, lo=0.0, hi=1.0)  # mean live probability for "live": calibrate per camera
    spoof_below: float = _opt(0.1, lo=0.0, hi=1.0)  # mean live probability at or below this: a `spoof` verdict
    window: int = _opt(15, lo=1, hi=1000)  # frames of the track the mean is taken over
    min_frames: int = _opt(5, lo=1, hi=1000)  # frames with a score before either answer
    # The challenge's turn must not move as a plane (a photo turned in the hand): planarity (the
    # landmarks' homography residual over their motion) at least this (docs/liveness.md: 0.061
    # is BPCER 5 % on the synthetic turns, where prints have a median of 0.025).
    planar_below: float = _opt(0.06, lo=0.0, hi=10.0)
    challenge_s: float = _opt(5.0, lo=0.5, hi=120.0)  # the head must follow the prompt within this
    turn_deg: float = _opt(15.0, lo=3.0, hi=60.0)  # ... by turning at least this many degrees left or right
    # ... or up by this many: the pose estimate reads a head's pitch at about 0.6 of its true
    # angle (docs/liveness.md, scripts/eval/head_pose.py), so 10 here asks for a real nod of about 15°.
    up_deg: float = _opt(10.0, lo=3.0, hi=60.0)
    timeout_ms: float = _opt(200.0, lo=1.0, hi=10_000.0)  # a liveness score that took longer is no evidence
    # Measure eye_openness (the eyelid stage, edge/vision/blink.py) on the judged frames and report
    # it and whether a blink was seen in the verdict's figures. It decides nothing: a blink rule is
    # not measured on real blinks yet (docs/liveness.md "Blink cue"). Off by default: it costs
    # 3-5 ms a judged face, on the frames that decide, for figures only.
    blink: bool = _opt(False)


@dataclass(frozen=True)
class AuditConfig:
    path: str = _opt("/var/lib/edge/audit.jsonl")  # append-only JSONL; "" = no audit log
    max_bytes: int = _opt(10 * 1024 * 1024, lo=1024, hi=1 << 40)  # rotate before a file grows past this
    backups: int = _opt(5, lo=1, hi=1000)  # rotated files kept: audit.jsonl.1 … .N
    fsync: bool = _opt(True)  # fsync every batch of records (see docs/appliance.md)


@dataclass(frozen=True)
class SinksConfig:
    stdout: bool = _opt(True)  # verdicts (and events) as JSON lines on stdout


@dataclass(frozen=True)
class MqttConfig:
    # Verdicts, availability, state, events and signed commands over MQTT (docs/mqtt.md).
    enabled: bool = _opt(False)  # `edge run --mqtt URL` turns it on
    url: str = _opt("mqtt://localhost:1883")  # mqtt://[user[:pass]@]host[:port] or mqtts:// (TLS)
    username: str = _opt("")  # overrides the URL's user
    password_file: str = _opt("")  # the password, read from this file (keeps it out of the config)
    ca_file: str = _opt("")  # mqtts: the CA that signed the broker's certificate ("" = system CAs)
    cert_file: str = _opt("")  # mqtts: client certificate (with key_file), for brokers that ask for one
    key_file: str = _opt("")
    protocol: str = _opt("auto", choices=("auto", "5", "3.1.1"))  # auto: MQTT 5, falls back to 3.1.1
    keepalive: int = _opt(30, lo=5, hi=3600)  # seconds
    topic_prefix: str = _opt("")  # "" = edge/<device_id>
    reconnect_min: float = _opt(1.0, lo=0.1, hi=600.0)  # first wait before reconnecting, seconds
    reconnect_max: float = _opt(30.0, lo=0.1, hi=3600.0)  # the wait doubles up to this
    outbox_path: str = _opt("/var/lib/edge/outbox")  # verdicts wait here (fsynced) until the broker acks
    outbox_max: int = _opt(100_000, lo=10, hi=10_000_000)  # verdicts kept; beyond, the oldest are dropped
    state_interval: float = _opt(30.0, lo=1.0, hi=86_400.0)  # the retained state is republished this often
    discovery: bool = _opt(True)  # Home Assistant MQTT discovery
    discovery_prefix: str = _opt("homeassistant")
    # --- Home Assistant fit (docs/mqtt.md, "Home Assistant") ---
    discovery_area: str = _opt("")  # the device's suggested_area in HA ("" = none)
    # The device's configuration_url (http:// or https://); "" = the console's URL when http is
    # enabled on an address HA can reach (not loopback), else none.
    discovery_console_url: str = _opt("")
    discovery_stranger: str = _opt("stranger")  # "Last person" for anyone not granted
    discovery_people: bool = _opt(False)  # a "last seen" entity per enrolled person (names go to HA)
    ha_commands: tuple = _opt((), item=str)  # unsigned commands HA may send: reload, door_enable, door_disable
    admin_keys: tuple = _opt((), item=str)  # Ed25519 public keys (base64) allowed to send commands
    command_max_age: float = _opt(120.0, lo=5.0, hi=86_400.0)  # older (or that far in the future): refused
    # A command payload longer than this is refused from its length alone, before any parsing
    # or signature check (docs/mqtt.md). The default holds an `import` of a bundle of ~6 MB of photos.
    command_max_bytes: int = _opt(8 * 1024 * 1024, lo=4096, hi=256 * 1024 * 1024)
    face_recipient: str = _opt("")  # X25519 public key (base64): verdicts carry the face sealed to it
    # Fleet enrolment (docs/fleet.md): the groups this door belongs to; it takes signed commands
    # for "group:<name>" on <group_prefix>/<name>/cmd as well as its own.
    groups: tuple = _opt((), item=str)
    group_prefix: str = _opt("edge/group")


@dataclass(frozen=True)
class HttpConfig:
    # The HTTP API (docs/http.md): `edge serve` answers it. Loopback unless host says otherwise.
    enabled: bool = _opt(False)  # `edge run` serves the API beside the camera loop; `edge serve` always serves
    host: str = _opt("127.0.0.1")
    port: int = _opt(8080, lo=1, hi=65535)
    # A request whose Content-Length is above this is refused (413, 2004) before its body is read.
    # 16 MiB holds two photos at the 5 MiB image limit, also base64-encoded and sealed (×4/3).
    max_body_bytes: int = _opt(16 * 1024 * 1024, lo=1024, hi=1 << 31)
    # The engine answers one request at a time; this many more may wait. Beyond: 503 + Retry-After.
    max_queue: int = _opt(8, lo=0, hi=10_000)
    retry_after_s: int = _opt(1, lo=1, hi=3600)  # the Retry-After of a 503
    tls_cert: str = _opt("")  # PEM certificate chain: with tls_key, HTTPS instead of HTTP
    tls_key: str = _opt("")
    # Keys a client must send in the X-API-Key header (401 without one, 403 for a wrong one,
    # before the engine is touched). Empty: no key is asked for (keep host on loopback then).
    api_keys: tuple = _opt((), item=str)
    # Tencent CompareFace dialect (POST / with X-TC-Action): "SecretId:SecretKey" pairs its
    # TC3-HMAC-SHA256 signatures are checked against. Empty: that dialect refuses every request.
    tencent_secrets: tuple = _opt((), item=str)
    # Hosts UrlA/UrlB (Tencent) may name. Empty: URLs are refused (the device is offline by design).
    url_allow_hosts: tuple = _opt((), item=str)
    # aigen dialect: keys a client must send in x-aigen-key. Empty: that dialect refuses every request.
    aigen_keys: tuple = _opt((), item=str)
    # /v1/ enrolment and identification: keys for X-API-Key there, distinct from api_keys.
    # Empty: /v1/ refuses every request.
    admin_keys: tuple = _opt((), item=str)


@dataclass(frozen=True)
class ConsoleConfig:
    # The local web console (docs/console.md): pages served beside the HTTP API.
    # The admin password's scrypt hash, written by `edge console set-password`. Empty: every
    # login is refused (the door display still works; it needs no login).
    password_hash: str = _opt("")
    session_ttl_s: float = _opt(3600.0, lo=60.0, hi=7 * 86_400.0)  # a login lasts this long (idle or not)
    # Keep unknown faces' crops so an `unknown` verdict can become an enrolment. Off: no face
    # image of a stranger is kept anywhere.
    keep_unknown_crops: bool = _opt(False)
    door_display_names: bool = _opt(False)  # the door display greets a granted person by name
    preview_fps: float = _opt(5.0, lo=0.2, hi=30.0)  # the live view's frames per second, at most
    # Failed logins per minute, per client address and (×4) over all addresses; beyond: 429.
    login_failures_per_min: int = _opt(5, lo=1, hi=1000)


# --- the door output (edge/door, docs/door.md) ------------------------------------------


@dataclass(frozen=True)
class DoorConfig:
    # A lock relay on a GPIO line (libgpiod), opened by grants. Off unless enabled.
    enabled: bool = _opt(False)
    chip: str = _opt("/dev/gpiochip0")  # the GPIO chip (Raspberry Pi 5: also /dev/gpiochip0 on recent kernels)
    relay_line: int = _opt(17, lo=0, hi=1023)  # line offset on the chip (BCM number on a Pi)
    relay_active_level: str = _opt("high", choices=("high", "low"))  # the level that energises the relay coil
    # What the door does when the relay coil is off (edge stopped, crashed or killed):
    # "fail_secure": stays locked; a grant energises the relay. "fail_safe": opens; edge keeps
    # the relay energised to hold the door locked and releases it for a grant.
    mode: str = _opt("fail_secure", choices=("fail_secure", "fail_safe"))
    hold_s: float = _opt(5.0, lo=0.2, hi=600.0)  # a grant unlocks for this long, counted from the grant
    max_grant_age_s: float = _opt(2.0, lo=0.1, hi=30.0)  # an older grant reaching the door is ignored
    contact_line: int = _opt(-1, lo=-1, hi=1023)  # door contact input; -1 = none
    contact_open_level: str = _opt("high", choices=("high", "low"))  # its level while the door is open
    held_open_s: float = _opt(30.0, lo=1.0, hi=86_400.0)  # open longer than this: a door_held_open event
    exit_line: int = _opt(-1, lo=-1, hi=1023)  # request-to-exit button input; -1 = none
    exit_active_level: str = _opt("low", choices=("high", "low"))  # its level while pressed
    bias: str = _opt("pull_up", choices=("pull_up", "pull_down", "disabled", "as_is"))  # of the input lines
    debounce_ms: float = _opt(20.0, lo=0.0, hi=1000.0)  # input edges shorter than this are ignored


@dataclass(frozen=True)
class LogConfig:
    # Diagnostics on stderr (the journal) at this level and above; `edge run --log-level` /
    # `-v` override it.
    level: str = _opt(DEFAULT_LEVEL, choices=tuple(LEVELS))


@dataclass(frozen=True)
class Config:
    device: DeviceConfig = field(default_factory=DeviceConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    engine: EngineSection = field(default_factory=EngineSection)
    images: ImagesConfig = field(default_factory=ImagesConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    vault: VaultConfig = field(default_factory=VaultConfig)
    gallery: GalleryConfig = field(default_factory=GalleryConfig)
    decision: DecisionConfig = field(default_factory=DecisionConfig)
    liveness: LivenessConfig = field(default_factory=LivenessConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    sinks: SinksConfig = field(default_factory=SinksConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    console: ConsoleConfig = field(default_factory=ConsoleConfig)
    log: LogConfig = field(default_factory=LogConfig)
    door: DoorConfig = field(default_factory=DoorConfig)

    @property
    def device_id(self) -> str:
        """`device.id`, or the hostname when it is empty."""
        return self.device.id or _hostname()

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {name: _asdict(getattr(self, name)) for name in _SECTIONS}


def _asdict(section: Any) -> dict[str, Any]:
    return {f.name: getattr(section, f.name) for f in fields(section)}


def _hostname() -> str:
    name = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:64].strip("-.")
    return name or "edge"


# section name → its dataclass, in file order
_SECTIONS: dict[str, type] = {f.name: get_type_hints(Config)[f.name] for f in fields(Config)}


# --- checking one value ------------------------------------------------------------------


def _type_name(tp: type) -> str:
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string", tuple: "a list"}[tp]


def _check(key: str, value: Any, tp: type, meta: dict) -> Any:
    if tp is tuple:  # a TOML array of one item type, kept as a tuple (the config is immutable)
        item = meta["item"]
        if not isinstance(value, list):
            raise ConfigError(key, f"must be a list of {_type_name(item).removeprefix('a ')}s, got {value!r}")
        return tuple(_check(f"{key}[{i}]", v, item, {}) for i, v in enumerate(value))
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(key, f"must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, f"must be an integer{_range(meta)}, got {value!r}")
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(key, f"must be a number{_range(meta)}, got {value!r}")
        value = float(value)
    elif tp is str:
        if meta.get("int_ok") and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise ConfigError(key, f"must be a string, got {value!r}")
    choices = meta.get("choices") or ()
    if choices and value not in choices:
        raise ConfigError(key, f"must be one of {', '.join(map(repr, choices))}, got {value!r}")
    lo, hi = meta.get("lo"), meta.get("hi")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ConfigError(key, f"must be {_type_name(tp)}{_range(meta)}, got {value!r}")
    return value


def _range(meta: dict) -> str:
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and hi is not None:
        return f" between {lo:g} and {hi:g}"
    if lo is not None:
        return f" of at least {lo:g}"
    if hi is not None:
        return f" of at most {hi:g}"
    return ""


def _section(name: str, cls: type, data: Any) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(name, f"must be a table ([{name}]), got {data!r}")
    hints = get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    for key in data:
        if key not in known:
            raise ConfigError(f"{name}.{key}", f"unknown key; [{name}] takes {', '.join(sorted(known))}")
    values = {}
    for key, value in data.items():
        values[key] = _check(f"{name}.{key}", value, hints[key], dict(known[key].metadata))
    return cls(**values)


# --- whole-config rules ----------------------------------------------------------------


def _validate(cfg: Config) -> None:
    if cfg.device.id and not DEVICE_ID.fullmatch(cfg.device.id):
        raise ConfigError(
            "device.id",
            f"must be 1–64 characters of letters, digits, '.', '_' or '-' (starting with a letter or digit), "
            f"got {cfg.device.id!r}",
        )
    for group in cfg.mqtt.groups:  # fleet enrolment: a group name is one topic level
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", group):
            raise ConfigError("mqtt.groups", f"a group name is 1-64 of letters, digits, '.', '_' or '-'; got {group!r}")
    if not re.fullmatch(r"[^#+]+", cfg.mqtt.group_prefix) or cfg.mqtt.group_prefix.endswith("/"):
        raise ConfigError(
            "mqtt.group_prefix", f"must be a topic without wildcards or a trailing '/'; got {cfg.mqtt.group_prefix!r}"
        )
    if not cfg.camera.source.strip():
        raise ConfigError("camera.source", "must not be empty")
    if cfg.camera.reopen_backoff_max < cfg.camera.reopen_backoff:
        raise ConfigError(
            "camera.reopen_backoff_max",
            f"must be at least camera.reopen_backoff ({cfg.camera.reopen_backoff:g}), "
            f"got {cfg.camera.reopen_backoff_max:g}",
        )
    i = cfg.images
    if i.max_side < i.min_side:
        raise ConfigError("images.max_side", f"must be at least images.min_side ({i.min_side}), got {i.max_side}")
    if i.max_pixels < i.min_side * i.min_side:
        raise ConfigError(
            "images.max_pixels", f"must be at least images.min_side² ({i.min_side * i.min_side}), got {i.max_pixels}"
        )
    d = cfg.decision
    if d.k > d.n:
        raise ConfigError("decision.k", f"must be an integer between 1 and decision.n ({d.n}), got {d.k}")
    if cfg.vault.path and cfg.gallery.path:
        raise ConfigError("gallery.path", 'set either vault.path or gallery.path, not both (set vault.path = "")')
    _validate_mqtt(cfg.mqtt)
    _validate_http(cfg.http)
    _validate_console(cfg.console)
    _validate_door(cfg.door)


def _validate_console(c: ConsoleConfig) -> None:
    if c.password_hash and not c.password_hash.startswith("scrypt$"):
        raise ConfigError(
            "console.password_hash", "must be a hash written by `edge console set-password` (scrypt$...), or empty"
        )
    if c.password_hash:
        parts = c.password_hash.split("$")
        if len(parts) != 6 or not all(parts[1:4]) or not all(p.isdigit() for p in parts[1:4]):
            raise ConfigError("console.password_hash", "is damaged: set it again with `edge console set-password`")


def _validate_http(h: HttpConfig) -> None:
    if not h.host.strip():
        raise ConfigError("http.host", "must not be empty (127.0.0.1: this device only; 0.0.0.0: every interface)")
    if (h.tls_cert == "") != (h.tls_key == ""):
        raise ConfigError("http.tls_key" if h.tls_cert else "http.tls_cert", "set tls_cert and tls_key together")
    for name in ("api_keys", "aigen_keys", "admin_keys"):  # each as hard to guess as the others
        for i, key in enumerate(getattr(h, name)):
            if len(key) < 16 or not key.isprintable() or " " in key:
                raise ConfigError(f"http.{name}[{i}]", "must be at least 16 printable characters without spaces")
    for i, key in enumerate(h.admin_keys):
        if key in h.api_keys or key in h.aigen_keys:  # a compare client must never be able to enrol or revoke
            raise ConfigError(f"http.admin_keys[{i}]", "is also a compare key; an admin key must be its own")


def _validate_door(d: DoorConfig) -> None:
    if not d.enabled:
        return
    if not d.chip.strip():
        raise ConfigError("door.chip", "must name a GPIO chip (e.g. /dev/gpiochip0)")
    used = {"door.relay_line": d.relay_line}
    for key, line in (("door.contact_line", d.contact_line), ("door.exit_line", d.exit_line)):
        if line < 0:
            continue
        for other, taken in used.items():
            if line == taken:
                raise ConfigError(key, f"line {line} is already {other}")
        used[key] = line


TOPIC_PREFIX = re.compile(r"[^#+\x00]{1,200}")


def _validate_mqtt(m: MqttConfig) -> None:
    from edge.broker_url import BrokerUrlError, parse_broker_url

    try:
        parse_broker_url(m.url)
    except BrokerUrlError as exc:
        raise ConfigError("mqtt.url", str(exc)) from None
    if m.reconnect_max < m.reconnect_min:
        raise ConfigError("mqtt.reconnect_max", f"must be at least mqtt.reconnect_min ({m.reconnect_min:g})")
    if (m.cert_file == "") != (m.key_file == ""):
        raise ConfigError("mqtt.key_file" if m.cert_file else "mqtt.cert_file", "set cert_file and key_file together")
    for name in ("topic_prefix", "discovery_prefix"):
        value = getattr(m, name)
        if value and (not TOPIC_PREFIX.fullmatch(value) or value.startswith("/") or value.endswith("/")):
            raise ConfigError(f"mqtt.{name}", f"must be a topic without +, # or a leading/trailing '/', got {value!r}")
    if not m.discovery_prefix:
        raise ConfigError("mqtt.discovery_prefix", "must not be empty")
    from edge.keytext import KeyFormatError, parse_key32

    for i, key in enumerate(m.admin_keys):
        try:
            parse_key32(key, kind="Ed25519 admin")
        except KeyFormatError as exc:
            raise ConfigError(f"mqtt.admin_keys[{i}]", str(exc)) from None
    if m.face_recipient:
        try:
            parse_key32(m.face_recipient, kind="X25519 recipient")
        except KeyFormatError as exc:
            raise ConfigError("mqtt.face_recipient", str(exc)) from None
    _validate_mqtt_ha(m)


# HA shows these states as "no value"; a sensor that reads one of them hides the verdict.
HA_RESERVED_STATES = ("unknown", "unavailable", "none", "")
# The unsigned commands HA may send (edge.mqtt.topics.HA_COMMANDS is the same list; the config
# may not import a transport: tests/test_ha.py checks that they agree).
HA_COMMANDS = ("reload", "door_enable", "door_disable")


def _validate_mqtt_ha(m: MqttConfig) -> None:
    if m.discovery_stranger.strip().lower() in HA_RESERVED_STATES or len(m.discovery_stranger) > 255:
        raise ConfigError(
            "mqtt.discovery_stranger", f"must be a word HA shows as a state (not {', '.join(HA_RESERVED_STATES[:3])})"
        )
    url = m.discovery_console_url
    if url and (not re.fullmatch(r"https?://[^\s/]+(/\S*)?", url)):
        raise ConfigError("mqtt.discovery_console_url", f"must be an http:// or https:// URL, got {url!r}")
    if len(m.discovery_area) > 100 or not m.discovery_area.isprintable():
        raise ConfigError("mqtt.discovery_area", 'must be a short printable name (e.g. "Front door")')
    for i, name in enumerate(m.ha_commands):
        if name not in HA_COMMANDS:
            raise ConfigError(f"mqtt.ha_commands[{i}]", f"must be one of {', '.join(HA_COMMANDS)}; got {name!r}")


def config_from_dict(data: dict[str, Any], *, source: str | None = None) -> Config:
    """A validated `Config` from nested dicts (as TOML parses them); missing keys take defaults."""
    try:
        if not isinstance(data, dict):
            raise ConfigError("(top level)", "must be a table of sections")
        for name in data:
            if name not in _SECTIONS:
                raise ConfigError(name, f"unknown section; the config takes [{'], ['.join(_SECTIONS)}]")
        cfg = Config(**{name: _section(name, _SECTIONS[name], value) for name, value in data.items()})
        _validate(cfg)
        return cfg
    except ConfigError as exc:
        if source and not exc.source:
            raise ConfigError(exc.key, exc.detail, source=source) from None
        raise


def merge(base: dict[str, Any], overrides: dict[str, Any] | None) -> dict[str, Any]:
    """`base` with `overrides` ({section: {key: value}}) laid over it (None values skipped)."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    for section, values in (overrides or {}).items():
        for key, value in values.items():
            if value is None:
                continue
            target = out.setdefault(section, {})
            if not isinstance(target, dict):
                raise ConfigError(section, f"must be a table ([{section}]), got {target!r}")
            target[key] = value
    return out


def load_config(path: str | Path | None = None, *, overrides: dict[str, Any] | None = None) -> Config:
    """Read and validate a TOML config (or the defaults when `path` is None), with overrides applied.

    Overrides are checked like the file's own values, so an error names the same key.
    """
    data: dict[str, Any] = {}
    source = None
    if path is not None:
        source = str(path)
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError("(file)", "no such config file", source=source) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("(file)", f"not valid TOML: {exc}", source=source) from None
    return config_from_dict(merge(data, overrides), source=source)


def field_paths() -> list[str]:
    """Every key as "section.key", in schema order (for docs and the firmware config test)."""
    return [f"{name}.{f.name}" for name, cls in _SECTIONS.items() for f in fields(cls)]


__all__ = [
    "AuditConfig",
    "CameraConfig",
    "Config",
    "ConfigError",
    "DecisionConfig",
    "DeviceConfig",
    "DoorConfig",
    "EngineSection",
    "GalleryConfig",
    "HttpConfig",
    "ImagesConfig",
    "LogConfig",
    "MqttConfig",
    "QualityConfig",
    "SinksConfig",
    "VaultConfig",
    "config_from_dict",
    "field_paths",
    "load_config",
    "merge",
]
