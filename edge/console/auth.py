"""The console's security: the admin password's hash, sessions, CSRF tokens, login rate limits.

    hash_password("correct horse")  → "scrypt$16384$8$1$<salt b64>$<hash b64>"   (config: console.password_hash)
    verify_password("correct horse", stored) → True

Sessions are random tokens (`secrets.token_urlsafe`, 256 bits) kept server-side with their
expiry; the browser holds only the token in an HttpOnly, SameSite=Strict cookie (Secure over
TLS). Each session has its own CSRF token, which every state-changing request must repeat in
the `X-CSRF-Token` header or a `csrf` form field (compared with `hmac.compare_digest`): a page
from another site can make the browser send the cookie (not with SameSite=Strict, but older
browsers and same-site subdomains exist), never read the token.

Failed logins are limited per client address and over all addresses, so that guessing from
many addresses is bounded too; beyond the limit the answer is 429 with Retry-After, and the
password is not even checked (a right guess then says nothing).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

# scrypt's cost: N=2^14, r=8 takes 16 MiB and ~50 ms on a Raspberry Pi 4 (once per login).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 1 << 14, 8, 1
SALT_BYTES, HASH_BYTES = 16, 32
MAX_PASSWORD_BYTES = 1024  # longer: refused before scrypt (it is not a place to spend memory)
MIN_PASSWORD_CHARS = 8
SCRYPT_MAXMEM = 64 * 1024 * 1024

SESSION_COOKIE = "edge_console"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"


class PasswordError(ValueError):
    """A password that cannot be set (too short, too long)."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """The string `console.password_hash` holds: scrypt with a fresh salt, its parameters in it."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise PasswordError(f"the password must have at least {MIN_PASSWORD_CHARS} characters")
    data = password.encode("utf-8")
    if len(data) > MAX_PASSWORD_BYTES:
        raise PasswordError(f"the password must have at most {MAX_PASSWORD_BYTES} bytes")
    salt = secrets.token_bytes(SALT_BYTES)
    digest = hashlib.scrypt(data, salt=salt, n=n, r=r, p=p, dklen=HASH_BYTES, maxmem=SCRYPT_MAXMEM)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` is the one `stored` was made from. An empty or damaged hash verifies
    nothing (fail closed); so does a password longer than MAX_PASSWORD_BYTES."""
    if not stored:
        return False
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
        if scheme != "scrypt":
            return False
        n_, r_, p_ = int(n), int(r), int(p)
        salt_b, expected_b = base64.b64decode(salt, validate=True), base64.b64decode(expected, validate=True)
    except (ValueError, TypeError):
        return False
    data = password.encode("utf-8", "surrogatepass")
    if len(data) > MAX_PASSWORD_BYTES or not expected_b:
        return False
    try:
        digest = hashlib.scrypt(data, salt=salt_b, n=n_, r=r_, p=p_, dklen=len(expected_b), maxmem=SCRYPT_MAXMEM)
    except (ValueError, MemoryError):  # parameters nobody here wrote
        return False
    return hmac.compare_digest(digest, expected_b)


@dataclass
class Session:
    token: str
    csrf: str
    expires: float
    client: str


class Sessions:
    """Server-side sessions: token → Session, each expiring `ttl_s` after login.

    Thread-safe (the console's handlers and its preview thread may both ask)."""

    def __init__(self, ttl_s: float, *, clock: Callable[[], float] = time.monotonic, max_sessions: int = 64) -> None:
        self.ttl_s = float(ttl_s)
        self.clock = clock
        self.max_sessions = max_sessions
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, client: str) -> Session:
        now = self.clock()
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), now + self.ttl_s, client)
        with self._lock:
            self._drop_expired(now)
            while len(self._sessions) >= self.max_sessions:  # the oldest login goes first
                oldest = min(self._sessions.values(), key=lambda s: s.expires)
                del self._sessions[oldest.token]
            self._sessions[session.token] = session
        return session

    def get(self, token: str | None) -> Session | None:
        """The live session of this cookie value, or None (unknown, expired: removed)."""
        if not token or len(token) > 128:
            return None
        now = self.clock()
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                return None
            if session.expires <= now:
                del self._sessions[token]
                return None
            return session

    def end(self, token: str | None) -> None:
        with self._lock:
            self._sessions.pop(token or "", None)

    def end_all(self) -> None:
        """Log everybody out (the password changed)."""
        with self._lock:
            self._sessions.clear()

    def __len__(self) -> int:
        with self._lock:
            self._drop_expired(self.clock())
            return len(self._sessions)

    def _drop_expired(self, now: float) -> None:
        for token in [t for t, s in self._sessions.items() if s.expires <= now]:
            del self._sessions[token]


def csrf_ok(session: Session | None, given: str | None) -> bool:
    """The request repeats its session's CSRF token (constant-time comparison)."""
    if session is None or not given:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), session.csrf.encode())


@dataclass
class LoginLimiter:
    """At most `per_client` failed logins a `window_s` from one address, `overall` from all.

    `retry_after(client)` > 0 means: refuse now (429) and say when to try again; checked
    before the password, so guesses beyond the limit are not even tried."""

    per_client: int = 5
    overall: int = 20
    window_s: float = 60.0
    clock: Callable[[], float] = time.monotonic
    max_clients: int = 10_000
    _by_client: dict[str, deque] = field(default_factory=dict)
    _all: deque = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def retry_after(self, client: str) -> int:
        now = self.clock()
        with self._lock:
            self._expire(now)
            waits = []
            mine = self._by_client.get(client)
            if mine is not None and len(mine) >= self.per_client:
                waits.append(mine[0] + self.window_s - now)
            if len(self._all) >= self.overall:
                waits.append(self._all[0] + self.window_s - now)
        return max(1, int(max(waits) + 0.999)) if waits else 0

    def failed(self, client: str) -> None:
        now = self.clock()
        with self._lock:
            self._expire(now)
            self._all.append(now)
            if client not in self._by_client and len(self._by_client) >= self.max_clients:
                return  # a flood of addresses: the overall limit still counts them
            self._by_client.setdefault(client, deque()).append(now)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._by_client.pop(client, None)

    def _expire(self, now: float) -> None:
        edge = now - self.window_s
        while self._all and self._all[0] <= edge:
            self._all.popleft()
        for client in [c for c, q in self._by_client.items() if q and q[-1] <= edge]:
            del self._by_client[client]
        for q in self._by_client.values():
            while q and q[0] <= edge:
                q.popleft()
