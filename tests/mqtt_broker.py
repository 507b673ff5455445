"""A real mosquitto for tests (and scripts/bench/soak_mqtt.py): started on a free port in a temp dir.

    with Broker(tmp_path) as broker:          # anonymous, plain TCP
        broker.url                            # "mqtt://127.0.0.1:PORT"
    Broker(tmp_path, users={"door-1": "pw"})  # password file made with mosquitto_passwd
    Broker(tmp_path, tls=True)                # CA, server cert made here with openssl; broker.ca_file

`stop()` (SIGTERM: the broker saves its persistence file), `kill()` (SIGKILL), `start()`
again on the same port. Persistence is on, so a subscriber with a persistent session keeps
its queued messages across a restart.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def available() -> bool:
    return os.path.exists(MOSQUITTO)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_ca(directory: Path, *, host: str = "127.0.0.1") -> dict[str, Path]:
    """A CA and a server certificate for `host`, made with openssl (and a client cert)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
        "-subj", "/CN=edge test CA", "-keyout", "ca.key", "-out", "ca.crt")  # fmt: skip
    for name, cn in (("server", host), ("client", "door-1")):
        run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", f"/CN={cn}",
            "-keyout", f"{name}.key", "-out", f"{name}.csr")  # fmt: skip
        ext = d / f"{name}.ext"
        ext.write_text(f"subjectAltName=IP:{host}\n" if name == "server" else "extendedKeyUsage=clientAuth\n")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", ext.name, "-out", f"{name}.crt")  # fmt: skip
    return {k: d / v for k, v in {
        "ca": "ca.crt", "server_cert": "server.crt", "server_key": "server.key",
        "client_cert": "client.crt", "client_key": "client.key"}.items()}  # fmt: skip


class Broker:
    def __init__(self, directory: Path, *, users: dict[str, str] | None = None, tls: bool = False,
                 port: int | None = None, require_certificate: bool = False) -> None:  # fmt: skip
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.tls = tls
        self.proc: subprocess.Popen | None = None
        lines = [
            f"listener {self.port} 127.0.0.1",
            "persistence true",
            f"persistence_location {self.dir}/",
            "autosave_interval 1",
            "max_queued_messages 200000",
            "max_inflight_messages 100",
            f"log_dest file {self.dir}/mosquitto.log",
        ]
        if os.geteuid() == 0:  # as root mosquitto would switch to user "mosquitto", who cannot read the temp dir
            lines.append("user root")
        if users:
            pw = self.dir / "passwd"
            pw.write_text("")
            for user, password in users.items():
                subprocess.run(["mosquitto_passwd", "-b", str(pw), user, password], check=True, capture_output=True)
            lines += ["allow_anonymous false", f"password_file {pw}"]
        else:
            lines.append("allow_anonymous true")
        if tls:
            self.certs = make_ca(self.dir / "certs")
            lines += [
                f"cafile {self.certs['ca']}",
                f"certfile {self.certs['server_cert']}",
                f"keyfile {self.certs['server_key']}",
            ]
            if require_certificate:
                lines.append("require_certificate true")
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> str:
        return str(self.certs["ca"])

    def start(self, timeout: float = 10.0) -> Broker:
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.proc.stderr.read().decode(errors='replace')}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on {self.port} within {timeout} s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.kill()
