"""MQTT broker URLs (the grammar the config validates and the MQTT client connects with):
 ``mqtt://[user[:password]@]host[:port]`` and ``mqtts://…`` (TLS).

The port defaults to 1883 (mqtt) or 8883 (mqtts). User and password are percent-decoded, so a
password with ``@`` or ``:`` is written ``%40`` / ``%3A``. An IPv6 host goes in brackets
(``mqtt://[::1]:1883``).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
# The broker password from the environment (a systemd EnvironmentFile, an exported shell variable):
# unlike a URL on a command line, the environment of a process is readable only by its user.
PASSWORD_ENV = "EDGE_MQTT_PASSWORD"


class BrokerUrlError(ValueError):
    """A broker URL that cannot be used; the message says what is wrong."""


@dataclass(frozen=True)
class BrokerUrl:
    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = None

    def redacted(self) -> str:
        """The URL without the password (for logs and errors)."""
        user = f"{self.username}:***@" if self.password is not None else (f"{self.username}@" if self.username else "")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{host}:{self.port}"


def parse_broker_url(url: str) -> BrokerUrl:
    if not isinstance(url, str) or not url.strip():
        raise BrokerUrlError("is empty; give mqtt://host[:port] or mqtts://host[:port]")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:  # a port that is not a number or out of range
        raise BrokerUrlError(f"{_redact(url)}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise BrokerUrlError(f"{_redact(url)}: the scheme must be mqtt:// or mqtts://, got {parts.scheme or 'none'!r}")
    if not parts.hostname:
        raise BrokerUrlError(f"{_redact(url)}: no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise BrokerUrlError(f"{_redact(url)}: a broker URL has no path, query or fragment")
    if port == 0:
        raise BrokerUrlError(f"{_redact(url)}: port 0")
    return BrokerUrl(
        host=parts.hostname,
        port=port or DEFAULT_PORTS[scheme],
        tls=scheme == "mqtts",
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def command_line_password_warning(url: str, flag: str = "--mqtt") -> str | None:
    """What to say when a broker URL typed on a command line carries a password (every user of the
    machine can read a command line: ps, /proc/<pid>/cmdline); None when it does not."""
    try:
        if parse_broker_url(url).password is None:
            return None
    except BrokerUrlError:
        return None  # the URL's own error is reported where it is used
    return (
        f"{flag}: the password in the URL can be read by every user of this machine (ps, /proc/<pid>/cmdline); "
        f"give it in a file (mqtt.password_file, --password-file) or in ${PASSWORD_ENV}"
    )


def _redact(url: str) -> str:
    """`url` with any password replaced, for error messages."""
    head, sep, tail = url.partition("://")
    if not sep or "@" not in tail:
        return url
    userinfo, _, rest = tail.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return f"{head}://{user}:***@{rest}" if ":" in userinfo else url
