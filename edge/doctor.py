"""`edge doctor`: check this device and say what to fix.

    edge doctor [--config FILE] [--source SRC] [--vault DIR] [--mqtt URL] [--json] [--timeout S]

One line per check: ``ok``, ``WARN`` (works, but look at it) or ``FAIL`` (the appliance
will not work as configured), each FAIL/WARN with the command to run or the config key to
change. Exit 0 when nothing failed (warnings allowed), 1 when a check failed, 2 when the
command line or the config is wrong (the config finding names the key). The overrides are
those of `edge run`: --source sets camera.source, --vault sets vault.path (and clears
gallery.path), --mqtt URL sets mqtt.url and turns MQTT on.

Checks (docs/doctor.md): config, runtime, models, models.load, camera, vault, mqtt,
clock, disk.vault / disk.audit / disk.outbox. A check never hangs doctor: the camera read
runs on its own thread and the broker probe has a timeout. A check that raises is itself
reported as a FAIL, so doctor always prints its report.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import logging
import os
import platform
import pwd
import re
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

OK, WARN, FAIL = "ok", "WARN", "FAIL"

WARN_FREE_BYTES = 500 * 10**6  # below this on a filesystem the appliance writes to: WARN
FAIL_FREE_BYTES = 50 * 10**6  # below this: FAIL
MIN_YEAR = 2025  # a clock before this has never been set
CLOCK_SLACK_S = 86_400.0  # the clock may be this much behind the build reference before it fails
FUTURE_LIMIT_DAYS = 15 * 365  # this far past the build reference the clock is probably wrong
DEFAULT_TIMEOUT = 5.0


@dataclass
class Finding:
    name: str
    status: str  # "ok", "WARN" or "FAIL"
    detail: str
    fix: str | None = None

    def line(self, width: int = 12) -> str:
        text = f"{self.status:<4}  {self.name:<{width}}  {self.detail}"
        text = f"{text}; fix: {self.fix}" if self.fix else text
        return " ".join(text.splitlines())


def _q(path: Any) -> str:
    return shlex.quote(str(path))


def _user() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def _owner(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _path_owner(path: Path) -> str:
    """The owner of `path`, or of its nearest parent we can stat."""
    for p in (path, *path.parents):
        try:
            return _owner(p.stat().st_uid)
        except OSError:
            continue
    return "another user"


def _mib(n: int) -> str:
    if n >= 10 * 1024**3:
        return f"{n / 1024**3:.0f} GiB"
    if n >= 1024**3:
        return f"{n / 1024**3:.1f} GiB"
    return f"{n / 1024**2:.0f} MiB"


# --- 1. runtime ------------------------------------------------------------------------------


def check_runtime() -> list[Finding]:
    from importlib import metadata

    from edge import runtime

    where = f"Python {platform.python_version()}, {platform.machine() or 'unknown arch'}"
    try:
        backend = runtime.available_backend()
    except runtime.ModelError as exc:
        fix = (
            "pip install tflite-runtime 'numpy<2' (32-bit Raspberry Pi OS)"
            if platform.machine().startswith("arm") and platform.machine() != "arm64"
            else "pip install ai-edge-litert"
        )
        return [Finding("runtime", FAIL, f"no TFLite interpreter can be imported ({where}): {exc}", fix)]
    try:
        version = metadata.version(backend)
    except metadata.PackageNotFoundError:
        version = "version unknown"
    detail = f"{backend} {version}, {where}"
    if backend == "tflite-runtime":
        import numpy

        if int(numpy.__version__.split(".")[0]) >= 2:
            return [
                Finding(
                    "runtime",
                    FAIL,
                    f"{detail}: tflite-runtime 2.14 crashes with NumPy {numpy.__version__}",
                    "pip install 'numpy<2'",
                )
            ]
    return [Finding("runtime", OK, detail)]


# --- 2. models -------------------------------------------------------------------------------


def profile_model_keys(profile: str, detector: str) -> list[str]:
    """The manifest keys an engine with this profile and detector mode loads, in load order."""
    from edge.engine import EngineConfig
    from edge.vision.detector import MODEL_KEYS

    keys = []
    if detector != "short":
        keys.append(MODEL_KEYS["full"])
    if detector != "full":
        keys.append(MODEL_KEYS["short"])
    keys.append("face_mesh")
    keys.extend(EngineConfig.profile(profile).embedders)
    return keys


def check_models(profile: str, detector: str, *, note: str = "") -> list[Finding]:
    from edge import runtime

    rebuild = "reinstall the package (pip install --force-reinstall edge) or run `python scripts/build/build_models.py`"
    try:
        directory = runtime.models_dir()
        rows = runtime.manifest_status(directory)
        version = runtime.load_manifest(directory).get("version", "?")
    except (runtime.ModelError, OSError, KeyError, TypeError) as exc:
        return [Finding("models", FAIL, f"cannot read the model manifest: {exc}", rebuild)]
    if not rows:
        return [Finding("models", FAIL, f"{directory}/manifest.json lists no models", rebuild)]
    missing = [r["file"] for r in rows if r["size"] is None]
    mismatched = [r["file"] for r in rows if r["size"] is not None and not r["sha256_ok"]]
    out = []
    if missing or mismatched:
        parts = []
        if missing:
            parts.append(f"missing: {', '.join(missing)}")
        if mismatched:
            parts.append(f"sha256 does not match manifest.json: {', '.join(mismatched)}")
        out.append(Finding("models", FAIL, f"{'; '.join(parts)} (in {directory})", rebuild))
    else:
        out.append(Finding("models", OK, f"{len(rows)} files match manifest.json {version} (sha256) in {directory}"))

    # the profile's models, loaded in the interpreter as `edge run` would
    keys = profile_model_keys(profile, detector)
    loaded, failed = [], []
    t0 = time.monotonic()
    for key in keys:
        try:
            runtime.open_model(key, threads=1, directory=directory)
            loaded.append(key)
        except Exception as exc:  # noqa: BLE001 - a model that does not load is the finding
            try:
                name = runtime.model_info(key, directory)["file"]
            except Exception:  # noqa: BLE001
                name = key
            failed.append(f"{name}: {exc}")
    elapsed = time.monotonic() - t0
    what = f"profile {profile!r}, detector {detector!r}{note}"
    if failed:
        out.append(Finding("models.load", FAIL, f"{what}: cannot load {'; '.join(failed)}", rebuild))
        return out
    calibration = _calibration_problem(profile)
    if calibration:
        out.append(Finding("models.load", FAIL, f"{what}: {calibration}", rebuild))
        return out
    out.append(
        Finding(
            "models.load",
            OK,
            f"{what}: {', '.join(loaded)} load in {runtime.available_backend()} ({elapsed:.2f} s); calibrated",
        )
    )
    return out


def _calibration_problem(profile: str) -> str | None:
    """None when models/calibration.json has a calibration for this profile, else why not."""
    from edge.engine import CALIBRATION_FILE, EngineConfig
    from edge.matching import load_calibrations
    from edge.runtime import models_dir

    config = EngineConfig.profile(profile)
    path = models_dir() / CALIBRATION_FILE
    if not path.is_file():
        return f"{path} is missing: scores cannot be calibrated"
    signature = config.signature()
    if not any(c.signature == signature for c in load_calibrations(path)):
        return f"{path.name} has no calibration for these embedders ({', '.join(config.embedders)})"
    return None


# --- 3. camera -------------------------------------------------------------------------------

CAMERA_CHOICES = (
    'set camera.source (or --source) to "picamera2" for a Pi CSI camera, an rtsp:// URL, '
    "a video file or a directory of images"
)


def _video_devices() -> list[str]:
    return sorted(str(p) for p in Path("/dev").glob("video[0-9]*"))


def _camera_precheck(spec: str) -> Finding | None:
    """A FAIL for a camera that is plainly absent (no device node, no picamera2), before opening anything."""
    m = re.fullmatch(r"picamera2?(?::(\d+))?", spec)
    if m:
        if importlib.util.find_spec("picamera2") is None:
            return Finding(
                "camera",
                FAIL,
                f"picamera2 is not installed, so there is no Pi CSI camera (camera.source = {json.dumps(spec)})",
                "sudo apt install python3-picamera2 (a venv needs --system-site-packages to see it), "
                "or pip install 'edge[picamera]'; or set camera.source to another source",
            )
        return None
    device = None
    if spec.isdigit() and sys.platform.startswith("linux"):
        device = f"/dev/video{int(spec)}"
    elif spec.startswith("/dev/"):
        device = spec
    if device is None:
        return None
    if not os.path.exists(device):
        present = _video_devices()
        detail = f"no camera at {device} (camera.source = {json.dumps(spec)}): "
        if present:
            detail += f"the video devices here are {', '.join(present)}"
            fix = f'set camera.source to one of them (e.g. "{present[0]}"), or {CAMERA_CHOICES}'
        else:
            detail += "no /dev/video* device exists (no USB/V4L2 camera is connected)"
            fix = f"connect a USB camera (then `ls /dev/video*`), or {CAMERA_CHOICES}"
        if importlib.util.find_spec("picamera2") is None:
            detail += "; picamera2 is not installed either, so no Pi CSI camera"
        return Finding("camera", FAIL, detail, fix)
    if not os.access(device, os.R_OK | os.W_OK):
        return Finding(
            "camera",
            FAIL,
            f"{device} exists but {_user()} may not open it (mode {stat.filemode(os.stat(device).st_mode)})",
            f"sudo usermod -aG video {_user()} (then log in again, or restart the service)",
        )
    return None


def read_one_frame(source: Any, timeout: float) -> tuple[str, Any]:
    """Open `source`, read one frame and close it, on a daemon thread.

    → ("frame", ndarray), ("none", None) when it gave no frame, ("error", exception), or
    ("timeout", None). The thread owns the source and closes it when it is done, also after
    a timeout (when its blocked read finally returns), so a hung source never hangs doctor.
    """
    result: dict[str, Any] = {}
    done = threading.Event()

    def work() -> None:
        try:
            source.open()
            frame = source.read()
            result["value"] = ("frame", frame) if frame is not None else ("none", None)
        except BaseException as exc:  # noqa: BLE001 - reported, never raised on this thread
            result["value"] = ("error", exc)
        finally:
            try:
                source.close()
            except Exception:  # noqa: BLE001
                pass
            done.set()

    threading.Thread(target=work, name="edge-doctor-camera", daemon=True).start()
    if not done.wait(timeout):
        return "timeout", None
    return result["value"]


def check_camera(config: Any, timeout: float) -> list[Finding]:
    from edge.camera import SourceError, open_source

    cam = config.camera
    spec = cam.source.strip()
    early = _camera_precheck(spec)
    if early is not None:
        return [early]
    try:
        source = open_source(spec, width=cam.width, height=cam.height, fps=cam.fps)
    except SourceError as exc:
        return [Finding("camera", FAIL, f"camera.source: {exc}", CAMERA_CHOICES)]
    t0 = time.monotonic()
    kind, value = read_one_frame(source, timeout)
    ms = (time.monotonic() - t0) * 1000
    name = source.name
    if kind == "frame":
        h, w = value.shape[:2]
        what = "replay" if source.finite else "live"
        return [Finding("camera", OK, f"{name} ({what}): one {w}x{h} frame in {ms:.0f} ms")]
    if kind == "timeout":
        return [
            Finding(
                "camera",
                FAIL,
                f"{name} gave no frame within {timeout:g} s",
                "check the camera's cable/power or the stream URL (try it in ffplay/vlc); --timeout S waits longer",
            )
        ]
    if kind == "error":
        from edge.camera.base import mask_url

        return [Finding("camera", FAIL, f"{name}: {mask_url(str(value))}", f"check camera.source, or {CAMERA_CHOICES}")]
    if source.finite:
        return [
            Finding(
                "camera",
                FAIL,
                f"{name} holds no frames (an empty directory or a video it cannot decode)",
                CAMERA_CHOICES,
            )
        ]
    fix = 'check the camera; on a Raspberry Pi CSI camera use camera.source = "picamera2"'
    return [Finding("camera", FAIL, f"{name} opened but gave no frame", fix)]


# --- 4. vault --------------------------------------------------------------------------------


def check_vault(config: Any) -> list[Finding]:
    if config.gallery.path:
        path = Path(config.gallery.path)
        if not path.is_dir():
            return [
                Finding(
                    "vault",
                    FAIL,
                    f"gallery.path = {str(path)!r} is not a directory",
                    "set gallery.path to a folder of one sub-folder of photos per person, or use a vault "
                    "(vault.path, `edge keys init --vault DIR`)",
                )
            ]
        people = sorted(p.name for p in path.iterdir() if p.is_dir())
        return [
            Finding(
                "vault",
                WARN,
                f"gallery.path = {str(path)!r} ({len(people)} people): development only, photos unencrypted",
                "enrol into a vault (`edge keys init --vault DIR`, `edge enroll --vault DIR NAME PHOTO…`), "
                'set vault.path = DIR and gallery.path = ""',
            )
        ]
    if not config.vault.path:
        return [Finding("vault", FAIL, "no enrolment store (vault.path is empty)", "set vault.path (or --vault DIR)")]

    from edge.engine import EngineConfig
    from edge.vault import Vault, VaultError, VaultIndexError, VaultPermissionError, model_version
    from edge.vault.keys import PRIVATE_KEY_FILE

    directory = Path(config.vault.path)
    q = _q(directory)
    init = f"edge keys init --vault {q}"
    key = directory / PRIVATE_KEY_FILE
    try:
        if not directory.is_dir():
            return [
                Finding("vault", FAIL, f"no vault at {directory} (vault.path)", f"{init} (or set vault.path / --vault)")
            ]
        info = key.stat()
    except FileNotFoundError:
        return [Finding("vault", FAIL, f"no device key at {key}", f"{init} (or restore the vault's device.key)")]
    except OSError as exc:  # e.g. a 0700 vault of another user
        owner = _path_owner(directory)
        return [
            Finding(
                "vault",
                FAIL,
                f"{_user()} cannot read the vault {directory} ({exc.strerror}); it belongs to {owner}",
                f"run edge as {owner}, or sudo chown -R {_user()}: {q}",
            )
        ]
    mode = stat.S_IMODE(info.st_mode)
    if not stat.S_ISREG(info.st_mode):
        return [Finding("vault", FAIL, f"{key} is not a regular file", f"restore the device key, or {init}")]
    if mode & 0o077:
        what = "readable by group or others" if mode & 0o044 else "accessible by group or others"
        return [
            Finding(
                "vault",
                FAIL,
                f"device key {key} is {what} (mode {mode:04o}, {stat.filemode(info.st_mode)}); edge refuses it",
                f"chmod 600 {_q(key)}",
            )
        ]
    out = []
    me = os.geteuid()
    if info.st_uid != me:
        owner = _owner(info.st_uid)
        if me == 0:
            out.append(
                Finding(
                    "vault.key",
                    WARN,
                    f"device key {key} belongs to {owner}; doctor runs as root, which can read anything",
                    f"run doctor as the service user to see what it sees: sudo -u {owner} edge doctor …",
                )
            )
        else:
            return [
                Finding(
                    "vault",
                    FAIL,
                    f"device key {key} belongs to {owner}, not to {_user()} who runs edge",
                    f"sudo chown -R {_user()}: {q} (the whole vault), or run edge as {owner}",
                )
            ]
    try:
        vault = Vault.open(directory)
    except VaultPermissionError as exc:
        return [Finding("vault", FAIL, f"cannot open the vault: {exc}", f"chmod 700 {q}")]
    except VaultError as exc:
        return [Finding("vault", FAIL, f"cannot open the vault: {exc}", f"restore {key} from a backup, or {init}")]
    except OSError as exc:
        return [Finding("vault", FAIL, f"cannot read {key}: {exc}", f"sudo chown {_user()}: {_q(key)}")]
    version = model_version(EngineConfig.profile(config.engine.profile))
    try:
        people, problems = vault.people(version)
        good, damaged = vault.check()
    except (VaultError, OSError) as exc:
        fix = f"edge vault check --vault {q}" + (
            f", then edge vault reindex --vault {q}" if isinstance(exc, VaultIndexError) else ""
        )
        return [*out, Finding("vault", FAIL, f"cannot read the vault {directory}: {exc}", fix)]
    photos = sum(p.photos for p in people)
    missing = sum(p.photos - (p.templates or 0) for p in people)
    who = "1 person" if len(people) == 1 else f"{len(people)} people"
    detail = f"{directory}: key ok (0600), {who} enrolled ({photos} photo(s)), {good} record(s) open"
    warnings = []
    fixes = []
    if not people:
        warnings.append("no one is enrolled (every face will be unknown)")
        fixes.append(f"edge enroll --vault {q} NAME PHOTO…")
    if missing:
        warnings.append(f"{missing} photo(s) have no template for model version {version}")
        fixes.append(f"edge vault rebuild --vault {q}")
    seen = set()
    bad = [p for p in [*problems, *damaged] if not (str(p) in seen or seen.add(str(p)))]
    if bad:
        first = "; ".join(str(p) for p in bad[:2]) + (" …" if len(bad) > 2 else "")
        warnings.append(f"{len(bad)} damaged record(s): {first}")
        fixes.append(f"edge vault check --vault {q}, then `edge revoke --entry ID --vault {q}` and re-enrol")
    if warnings:
        out.append(Finding("vault", WARN, f"{detail}; {'; '.join(warnings)}", "; ".join(fixes)))
    else:
        out.append(Finding("vault", OK, detail))
    return out


# --- 5. broker -------------------------------------------------------------------------------


def _tcp_reason(host: str, port: int, timeout: float) -> str | None:
    """Why a plain TCP connection to host:port fails, or None when it connects."""
    try:
        with socket.create_connection((host, port), timeout=min(timeout, 3.0)):
            return None
    except socket.gaierror as exc:
        return f"the host name does not resolve ({exc.strerror or exc})"
    except TimeoutError:
        return "no answer (timed out: a firewall, or the wrong host)"
    except OSError as exc:
        return exc.strerror or str(exc)


def check_broker(config: Any, timeout: float) -> list[Finding]:
    m = config.mqtt
    if not m.enabled:
        return [Finding("mqtt", OK, "MQTT disabled (mqtt.enabled = false)")]
    from edge.mqtt.client import MqttSettings, MqttSetupError, probe

    try:
        settings = MqttSettings.from_config(m, client_id=config.device_id)
    except MqttSetupError as exc:
        return [Finding("mqtt", FAIL, f"{exc.key}: {exc.detail}", f"fix {exc.key} in the config")]
    url = settings.broker.redacted()
    host, port = settings.broker.host, settings.broker.port
    t0 = time.monotonic()
    try:
        ok, detail = probe(settings, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - e.g. a TLS context that cannot be built
        ok, detail = False, f"{type(exc).__name__}: {exc}"
    ms = (time.monotonic() - t0) * 1000
    if ok:
        return [Finding("mqtt", OK, f"connected to {url} ({detail}, {ms:.0f} ms)")]
    low = detail.lower()
    if "login" in low or "not authori" in low or "bad user" in low:
        fix = (
            "check mqtt.username (or the URL's user) and mqtt.password_file (or $EDGE_MQTT_PASSWORD) "
            "against the broker's accounts"
        )
    elif settings.broker.tls and ("ssl" in low or "certificate" in low or "tls" in low):
        fix = (
            "check mqtt.ca_file (the CA that signed the broker's certificate), the host name in mqtt.url and the clock"
        )
    else:
        fix = f"start the broker or correct the host/port in mqtt.url (now {url}); check the network and firewall"
        reason = _tcp_reason(host, port, timeout)
        if reason and reason not in detail:
            detail = f"{detail}: {reason}"
    return [Finding("mqtt", FAIL, f"{url}: {detail}", fix)]


# --- 6. clock --------------------------------------------------------------------------------


def build_reference() -> tuple[float, str] | None:
    """A time the clock cannot be earlier than: the newer of manifest.json's mtime and its version date."""
    from edge import runtime

    try:
        path = runtime.models_dir() / "manifest.json"
        when, what = path.stat().st_mtime, f"{path} was written"
    except (OSError, runtime.ModelError):
        return None
    try:
        version = str(runtime.load_manifest().get("version", ""))
        stamp = dt.datetime.strptime(version, "%Y.%m.%d").replace(tzinfo=dt.timezone.utc).timestamp()
        if stamp > when:
            when, what = stamp, f"the models were built (version {version})"
    except (ValueError, runtime.ModelError, OSError):
        pass
    return when, what


def ntp_status() -> tuple[bool | None, str]:
    """(True/False, note) from `timedatectl`, or (None, why it is unknown)."""
    exe = shutil.which("timedatectl")
    if exe is None:
        return None, "NTP state unknown (no timedatectl)"
    try:
        done = subprocess.run(
            [exe, "show", "-p", "NTPSynchronized", "--value"], capture_output=True, text=True, timeout=3
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"NTP state unknown (timedatectl: {exc})"
    value = done.stdout.strip()
    if done.returncode == 0 and value in ("yes", "no"):
        return value == "yes", "NTP synchronized" if value == "yes" else "NTP not synchronized"
    why = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[0]
    return None, f"NTP state unknown (timedatectl: {why})"


def check_clock(now: float | None = None) -> list[Finding]:
    now = time.time() if now is None else now
    stamp = dt.datetime.fromtimestamp(now, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    synced, ntp = ntp_status()
    ntp_fix = "enable NTP: sudo timedatectl set-ntp true (and let the device reach an NTP server)"
    consequence = "signed commands (mqtt.command_max_age) and TLS certificates will be refused"
    ref = build_reference()
    if dt.datetime.fromtimestamp(now, dt.timezone.utc).year < MIN_YEAR:
        return [Finding("clock", FAIL, f"the clock says {stamp}: it was never set; {consequence}; {ntp}", ntp_fix)]
    if ref is not None:
        when, what = ref
        ref_day = dt.datetime.fromtimestamp(when, dt.timezone.utc).strftime("%Y-%m-%d")
        if now < when - CLOCK_SLACK_S:
            days = (when - now) / 86_400
            return [
                Finding(
                    "clock",
                    FAIL,
                    f"the clock is behind: it says {stamp} but {what} on {ref_day} ({days:.0f} days later); "
                    f"{consequence}; {ntp}",
                    ntp_fix,
                )
            ]
        if now > when + FUTURE_LIMIT_DAYS * 86_400:
            return [
                Finding(
                    "clock",
                    WARN,
                    f"the clock says {stamp}, more than {FUTURE_LIMIT_DAYS // 365} years after {ref_day} "
                    f"({what}); {ntp}",
                    ntp_fix,
                )
            ]
    detail = f"{stamp}" + (f" (not before {ref_day}, when {ref[1]})" if ref else "") + f"; {ntp}"
    if synced is False:
        return [Finding("clock", WARN, detail, ntp_fix)]
    return [Finding("clock", OK, detail)]


# --- 7. disk ---------------------------------------------------------------------------------


def _nearest_existing(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _writable_dir(directory: Path, key: str, recursive: bool) -> tuple[str, str | None, str]:
    """(status, fix, note) for a directory the appliance must create or write.

    `recursive`: the directory is the appliance's own (vault, outbox), so the fix chowns what is in
    it too; the audit log's directory may be shared, so only it is chowned.
    """
    user = _user()
    q = _q(directory)
    if directory.is_dir():
        if os.access(directory, os.W_OK | os.X_OK):
            return OK, None, "writable"
        note = f"{directory} is not writable by {user}"
        if len(Path(os.path.abspath(directory)).parts) <= 3:  # /, /var/lib, /tmp/x: shared, never chown it
            own = "/var/lib/edge"
            fix = f"set {key} inside a directory of {user}'s own (e.g. sudo mkdir -p {own} && sudo chown {user}: {own})"
            return FAIL, fix, note
        return FAIL, f"sudo chown {'-R ' if recursive else ''}{user}: {q} (or set {key})", note
    if directory.exists():
        return FAIL, f"move it away, or set {key} elsewhere", f"{directory} exists but is not a directory"
    parent = _nearest_existing(directory)
    if parent.is_dir() and os.access(parent, os.W_OK | os.X_OK):
        return OK, None, f"will be created in {parent}"
    return (
        FAIL,
        f"sudo mkdir -p {q} && sudo chown {user}: {q} (or set {key})",
        f"{directory} does not exist and {user} cannot create it ({parent} is not writable)",
    )


def check_disk_path(name: str, key: str, directory: Path, file: Path | None = None) -> Finding:
    status, fix, note = _writable_dir(directory, key, recursive=file is None)
    if status == OK and file is not None and file.exists() and not os.access(file, os.W_OK):
        status, fix, note = FAIL, f"sudo chown {_user()}: {_q(file)}", f"{file} is not writable by {_user()}"
    target = file if file is not None else directory
    existing = _nearest_existing(directory)
    try:
        usage = shutil.disk_usage(existing)
    except OSError as exc:
        return Finding(name, FAIL, f"{target} ({key}): cannot stat {existing}: {exc}", f"check {key}")
    free = usage.free
    space = f"{_mib(free)} free of {_mib(usage.total)} on the filesystem of {existing}"
    detail = f"{target} ({key}): {space}; {note}"
    if status == FAIL:
        return Finding(name, FAIL, detail, fix)
    clean = "free space (journalctl --vacuum-size=100M, apt-get clean, old audit backups) or move " + key
    if free < FAIL_FREE_BYTES:
        return Finding(name, FAIL, f"{detail}; less than {FAIL_FREE_BYTES // 10**6} MB left", clean)
    if free < WARN_FREE_BYTES:
        return Finding(name, WARN, f"{detail}; less than {WARN_FREE_BYTES // 10**6} MB left", clean)
    return Finding(name, OK, detail)


def check_disk(config: Any) -> list[Finding]:
    out = []
    if config.vault.path:
        out.append(check_disk_path("disk.vault", "vault.path", Path(config.vault.path)))
    if config.audit.path:
        audit = Path(config.audit.path)
        out.append(check_disk_path("disk.audit", "audit.path", audit.parent, audit))
    if config.mqtt.enabled:
        out.append(check_disk_path("disk.outbox", "mqtt.outbox_path", Path(config.mqtt.outbox_path)))
    return out


# --- running the checks ------------------------------------------------------------------


def _guarded(name: str, check: Callable[[], list[Finding]]) -> list[Finding]:
    """A check's findings; a check that raises is a FAIL naming the exception (doctor still reports)."""
    try:
        return check()
    except Exception as exc:  # noqa: BLE001
        return [Finding(name, FAIL, f"the check itself failed: {type(exc).__name__}: {exc}", "report this as a bug")]


def check_liveness(config: Any) -> list[Finding]:
    """Whether the door can be fooled by a photo: liveness off says so plainly; on, its model must load."""
    lv = config.liveness
    if lv.mode == "off":
        return [
            Finding(
                "liveness",
                WARN,
                "liveness.mode = off: a printed photo or a phone screen showing an enrolled person's face "
                "opens the door",
                'set [liveness] mode = "passive" (or "passive+challenge") and calibrate it (docs/liveness.md)',
            )
        ]
    from edge.vision.liveness import Liveness

    t0 = time.perf_counter()
    Liveness.open(threads=1)
    ms = (time.perf_counter() - t0) * 1e3
    return [Finding("liveness", OK, f"{lv.mode}: threshold {lv.threshold:g}, model loaded in {ms:.0f} ms")]


def run_checks(config: Any, *, timeout: float = DEFAULT_TIMEOUT, source_label: str = "") -> list[Finding]:
    """Every check against a loaded `edge.config.Config`."""
    e = config.engine
    findings = [Finding("config", OK, f"{source_label or 'built-in defaults'} loaded; device id {config.device_id}")]
    findings += _guarded("runtime", check_runtime)
    findings += _guarded("models", lambda: check_models(e.profile, e.detector))
    findings += _guarded("camera", lambda: check_camera(config, timeout))
    findings += _guarded("vault", lambda: check_vault(config))
    findings += _guarded("liveness", lambda: check_liveness(config))
    findings += _guarded("mqtt", lambda: check_broker(config, timeout))
    findings += _guarded("clock", check_clock)
    findings += _guarded("disk", lambda: check_disk(config))
    return findings


def load(args: argparse.Namespace):
    """The config as `edge run` would load it with these overrides (raises ConfigError)."""
    from edge.config import load_config

    overrides: dict[str, dict[str, Any]] = {"camera": {"source": args.source}}
    if args.vault is not None:
        overrides["vault"] = {"path": args.vault}
        overrides["gallery"] = {"path": ""}
    if args.mqtt is not None:
        from edge.broker_url import command_line_password_warning

        warning = command_line_password_warning(args.mqtt)
        if warning:
            logger.warning("%s", warning)
        overrides["mqtt"] = {"url": args.mqtt, "enabled": True}
    return load_config(args.config, overrides=overrides)


def report(findings: list[Finding], *, as_json: bool, out=None) -> None:
    out = out or sys.stdout
    if as_json:
        ok = not any(f.status == FAIL for f in findings)
        checks = [asdict(f) for f in findings]  # one line, as every command's JSON (docs/cli.md)
        print(json.dumps({"ok": ok, "checks": checks}, ensure_ascii=False, separators=(",", ":")), file=out)
        return
    width = max(len(f.name) for f in findings)
    for f in findings:
        print(f.line(width), file=out)
    counts = {s: sum(f.status == s for f in findings) for s in (FAIL, WARN, OK)}
    verdict = "not ready" if counts[FAIL] else "ready"
    print(f"doctor: {verdict}: {counts[FAIL]} failed, {counts[WARN]} warning(s), {counts[OK]} ok", file=out)
    out.flush()


OVERRIDE_FLAGS = {"camera.source": "--source", "vault.path": "--vault", "mqtt.url": "--mqtt"}


def _config_fix(exc: Any, args: argparse.Namespace) -> str:
    """What to change for a ConfigError: the command-line flag that set the key, else the key in the file."""
    if exc.key == "(file)":
        return "give --config a readable TOML file (firmware_config/edge.toml documents every key)"
    flag = OVERRIDE_FLAGS.get(exc.key)
    if flag and getattr(args, flag.lstrip("-")) is not None:
        return f"correct {flag} (it sets {exc.key})"
    if exc.source:
        return f"correct {exc.key} in {exc.source} (firmware_config/edge.toml documents every key)"
    return f"correct {exc.key}"


def cmd_doctor(args: argparse.Namespace) -> int:
    from edge.config import ConfigError

    if not (0 < args.timeout <= 600):
        logger.error("doctor: --timeout must be between 0 and 600 seconds, got %g", args.timeout)
        return 2
    try:
        config = load(args)
    except ConfigError as exc:
        fix = _config_fix(exc, args)
        findings = [Finding("config", FAIL, exc.message, fix)]
        # what does not depend on the config still runs (the engine defaults for the models)
        from edge.config import EngineSection

        e = EngineSection()
        findings += _guarded("runtime", check_runtime)
        note = " (the defaults: the config did not load)"
        findings += _guarded("models", lambda: check_models(e.profile, e.detector, note=note))
        findings += _guarded("clock", check_clock)
        report(findings, as_json=args.json)
        return 2
    findings = run_checks(config, timeout=args.timeout, source_label=args.config)
    report(findings, as_json=args.json)
    return 1 if any(f.status == FAIL for f in findings) else 0


def register(sub) -> None:
    p = sub.add_parser(
        "doctor",
        help="check this device: runtime, models, camera, vault, broker, clock, disk",
        description="Check this device and print what to fix, one line per check. "
        "Exit 0: ready (warnings allowed); 1: a check failed; 2: the command line or the config is wrong.",
    )
    p.add_argument("--config", default=None, help="TOML config (default: the built-in defaults, as in edge.toml)")
    p.add_argument("--source", default=None, help="override camera.source (as `edge run --source`)")
    p.add_argument("--vault", default=None, metavar="DIR", help="override vault.path (and ignore gallery.path)")
    p.add_argument("--mqtt", default=None, metavar="URL", help="set mqtt.url and mqtt.enabled = true")
    p.add_argument("--json", action="store_true", help='print {"ok": …, "checks": [{name, status, detail, fix}]}')
    p.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"seconds to wait for a camera frame and for the broker (default {DEFAULT_TIMEOUT:g})",
    )
    p.set_defaults(func=cmd_doctor)
