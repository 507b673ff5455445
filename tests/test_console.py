"""The web console without a browser: the password hash, sessions, CSRF, the login limit, the
config and `edge console set-password`, then the console's routes through Starlette's test
client against a real appliance (real engine, real vault; the loop driven frame by frame).
The browser itself: tests/test_console_browser.py."""

from __future__ import annotations

import io
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.config import ConfigError, config_from_dict, load_config
from edge.console.auth import (
    LoginLimiter,
    PasswordError,
    Sessions,
    csrf_ok,
    hash_password,
    verify_password,
)
from edge.console.password import set_password, with_password_hash

PASSWORD = "a-long-console-password"

# --- the password hash ---------------------------------------------------------------------------


def test_a_hash_verifies_its_password_and_nothing_else():
    stored = hash_password(PASSWORD)
    assert stored.startswith("scrypt$16384$8$1$")
    assert verify_password(PASSWORD, stored)
    assert not verify_password(PASSWORD + " ", stored)
    assert not verify_password(PASSWORD.upper(), stored)
    assert not verify_password("", stored)


def test_every_hash_has_its_own_salt():
    a, b = hash_password(PASSWORD), hash_password(PASSWORD)
    assert a != b and a.split("$")[4] != b.split("$")[4]
    assert verify_password(PASSWORD, a) and verify_password(PASSWORD, b)


def test_the_parameters_in_the_stored_string_are_the_ones_used():
    cheap = hash_password(PASSWORD, n=1 << 4, r=1, p=1)
    assert cheap.startswith("scrypt$16$1$1$")
    assert verify_password(PASSWORD, cheap)
    # The same salt and hash claimed under other parameters do not verify.
    assert not verify_password(PASSWORD, cheap.replace("scrypt$16$1$1$", "scrypt$32$1$1$"))


@pytest.mark.parametrize(
    "damaged",
    [
        "",
        "scrypt",
        "bcrypt$16384$8$1$c2FsdA==$aGFzaA==",
        "scrypt$x$8$1$c2FsdA==$aGFzaA==",
        "scrypt$16384$8$1$not base64!$aGFzaA==",
        "scrypt$16384$8$1$c2FsdA==$",
        "scrypt$3$8$1$c2FsdA==$aGFzaA==",  # n not a power of two: scrypt refuses
        "scrypt$1073741824$8$1$c2FsdA==$aGFzaA==",  # would need 1 TiB: refused, not attempted
    ],
)
def test_a_damaged_hash_verifies_nothing(damaged):
    assert not verify_password(PASSWORD, damaged)


def test_a_flipped_bit_in_the_hash_fails():
    stored = hash_password(PASSWORD)
    head, digest = stored.rsplit("$", 1)
    import base64

    raw = bytearray(base64.b64decode(digest))
    raw[0] ^= 1
    assert not verify_password(PASSWORD, f"{head}${base64.b64encode(bytes(raw)).decode()}")


def test_passwords_too_short_or_too_long_are_refused():
    with pytest.raises(PasswordError):
        hash_password("short")
    with pytest.raises(PasswordError):
        hash_password("x" * 2000)
    assert not verify_password("x" * 2000, hash_password(PASSWORD))


# --- sessions, CSRF, the login limit ---------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_sessions_expire_and_end():
    clock = Clock()
    sessions = Sessions(60, clock=clock)
    s = sessions.create("10.0.0.1")
    assert len(s.token) >= 40 and len(s.csrf) >= 40 and s.token != s.csrf
    assert sessions.get(s.token) is s
    clock.t += 59.9
    assert sessions.get(s.token) is s
    clock.t += 0.2
    assert sessions.get(s.token) is None and len(sessions) == 0
    t = sessions.create("10.0.0.1")
    sessions.end(t.token)
    assert sessions.get(t.token) is None
    assert sessions.get(None) is None and sessions.get("") is None and sessions.get("x" * 500) is None


def test_the_oldest_session_makes_way_when_the_store_is_full():
    clock = Clock()
    sessions = Sessions(60, clock=clock, max_sessions=3)
    made = []
    for _ in range(4):
        made.append(sessions.create("c"))
        clock.t += 1
    assert sessions.get(made[0].token) is None
    assert all(sessions.get(s.token) is s for s in made[1:])


def test_csrf_needs_this_sessions_token():
    sessions = Sessions(60)
    a, b = sessions.create("a"), sessions.create("b")
    assert csrf_ok(a, a.csrf)
    assert not csrf_ok(a, b.csrf)
    assert not csrf_ok(a, "")
    assert not csrf_ok(a, None)
    assert not csrf_ok(None, a.csrf)
    assert not csrf_ok(a, a.csrf[:-1])
    assert not csrf_ok(a, a.csrf + "\udcff")  # a lone surrogate from a crafted header: refused, no crash


def test_five_failures_a_minute_lock_one_address_out():
    clock = Clock()
    limit = LoginLimiter(per_client=5, overall=20, clock=clock)
    for _ in range(5):
        assert limit.retry_after("a") == 0
        limit.failed("a")
    wait = limit.retry_after("a")
    assert 1 <= wait <= 60
    assert limit.retry_after("b") == 0  # another address is not locked out by a's failures
    clock.t += 60.1
    assert limit.retry_after("a") == 0


def test_failures_from_many_addresses_lock_everybody_out():
    clock = Clock()
    limit = LoginLimiter(per_client=5, overall=20, clock=clock)
    for i in range(20):
        limit.failed(f"10.0.0.{i}")
    assert limit.retry_after("10.9.9.9") > 0
    clock.t += 61
    assert limit.retry_after("10.9.9.9") == 0


def test_a_successful_login_clears_the_address_but_not_the_overall_count():
    clock = Clock()
    limit = LoginLimiter(per_client=3, overall=4, clock=clock)
    for _ in range(3):
        limit.failed("a")
    limit.succeeded("a")
    assert limit.retry_after("a") == 0
    limit.failed("b")
    assert limit.retry_after("c") > 0  # 4 failures in the minute overall


# --- the config and `edge console set-password` ---------------------------------------------------


def test_console_config_defaults_and_errors_name_the_key():
    c = config_from_dict({}).console
    assert c.password_hash == "" and not c.keep_unknown_crops and not c.door_display_names and c.preview_fps == 5.0
    for section, key in [
        ({"password_hash": "plain text"}, "console.password_hash"),
        ({"password_hash": "scrypt$1$2"}, "console.password_hash"),
        ({"preview_fps": 100}, "console.preview_fps"),
        ({"session_ttl_s": 1}, "console.session_ttl_s"),
        ({"keep_unknown_crops": "yes"}, "console.keep_unknown_crops"),
        ({"colour": "red"}, "console.colour"),
    ]:
        with pytest.raises(ConfigError) as err:
            config_from_dict({"console": section})
        assert err.value.key == key


def test_set_password_keeps_the_file_and_its_comments(repo_root, tmp_path):
    path = tmp_path / "edge.toml"
    original = (repo_root / "firmware_config" / "edge.toml").read_text()
    path.write_text(original)
    path.chmod(0o640)
    stored = set_password(path, PASSWORD)
    text = path.read_text()
    assert f'password_hash = "{stored}"' in text
    assert text.count("password_hash =") == 1
    assert len(text.splitlines()) == len(original.splitlines())  # one line replaced, nothing else
    assert "# The admin password's hash" in text
    assert path.stat().st_mode & 0o777 == 0o640
    assert verify_password(PASSWORD, load_config(path).console.password_hash)


def test_set_password_adds_the_table_when_there_is_none():
    text = '[http]\nhost = "0.0.0.0"\n'
    out = with_password_hash(text, "scrypt$16$1$1$c2FsdA==$aGFzaA==")
    assert out == text + '\n[console]\npassword_hash = "scrypt$16$1$1$c2FsdA==$aGFzaA=="\n'
    out = with_password_hash("[console]\npreview_fps = 2.0\n[log]\n", "scrypt$h")
    assert out == '[console]\npassword_hash = "scrypt$h"\npreview_fps = 2.0\n[log]\n'


def test_edge_console_set_password_from_stdin(tmp_path, monkeypatch, capsys):
    from edge.cli import main

    path = tmp_path / "edge.toml"
    path.write_text("# mine\n[http]\nport = 8081\n")
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["console", "set-password", "--config", str(path)]) == 0
    assert verify_password(PASSWORD, load_config(path).console.password_hash)
    assert path.read_text().startswith("# mine\n[http]\nport = 8081\n")
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    before = path.read_text()
    assert main(["console", "set-password", "--config", str(path)]) == 1
    assert path.read_text() == before  # nothing changed
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["console", "set-password", "--print"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith('password_hash = "scrypt$') and verify_password(PASSWORD, line.split('"')[1])


def test_set_password_never_writes_a_file_that_would_not_load(tmp_path, monkeypatch):
    from edge.cli import main

    path = tmp_path / "edge.toml"
    path.write_text("[http]\nport = 99999999\n")  # already broken: stays as it is
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["console", "set-password", "--config", str(path)]) == 2
    assert path.read_text() == "[http]\nport = 99999999\n"


# --- the routes, against a real appliance ---------------------------------------------------------


def _jpeg(rgb: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()


@pytest.fixture(scope="module")
def engine():
    from edge.app import engine_from_config
    from edge.config import Config

    return engine_from_config(Config())


@pytest.fixture
def console(engine, tmp_path, _skimage_photos):
    """(TestClient, Console, Appliance) with an empty vault; the loop is not running (call_in_loop runs at once)."""
    from console_helpers import LoopingVideo, visitor_photos, write_visits
    from starlette.testclient import TestClient

    from edge.app import appliance_from_config
    from edge.console import ConsoleContext, console_app
    from edge.console.actions import VaultActions
    from edge.vault import Vault

    Vault.init(tmp_path / "vault")
    photos, scale, _ = visitor_photos()
    clip = write_visits(tmp_path / "v.avi", photos, scale, cycles=1)
    config = config_from_dict(
        {
            "vault": {"path": str(tmp_path / "vault")},
            "audit": {"path": ""},
            "sinks": {"stdout": False},
            "console": {"password_hash": hash_password(PASSWORD, n=1 << 10)},
        }
    )
    appliance = appliance_from_config(config, engine=engine, source=LoopingVideo(clip))
    actions = VaultActions(appliance, str(tmp_path / "vault"))
    ctx = ConsoleContext(appliance, config, actions.enrol, actions.revoke, actions.people, actions.check_photo)
    app = console_app(ctx)
    client = TestClient(app, base_url="http://testserver")
    yield client, app.state.console, appliance
    app.state.console.close()
    client.close()


def _login(client) -> str:
    r = client.post("/console/api/login", json={"password": PASSWORD})
    assert r.status_code == 200, r.text
    return client.get("/console/api/session").json()["csrf"]


GETS = [
    "/console/live",
    "/console/enrol",
    "/console/people",
    "/console/verdicts",
    "/console/status",
]
API_GETS = [
    "/console/api/session",
    "/console/api/frame.jpg",
    "/console/api/stream.mjpeg",
    "/console/api/live",
    "/console/api/people",
    "/console/api/verdicts",
    "/console/api/verdicts/stream",
    "/console/api/status",
    "/console/api/crop/1.jpg",
    "/console/api/capture/0.jpg",
]
POSTS = [
    "/console/api/logout",
    "/console/api/capture",
    "/console/api/capture/clear",
    "/console/api/enrol",
    "/console/api/enrol/verdict",
    "/console/api/revoke",
]


def test_nothing_but_the_login_and_the_door_answers_without_a_session(console):
    client, _, appliance = console
    for path in GETS:
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/console/login", path
    for path in API_GETS:
        assert client.get(path).status_code == 401, path
    for path in POSTS:
        assert client.post(path, json={"name": "x", "confirm": "x", "seq": 1}).status_code == 401, path
    assert client.get("/console/login").status_code == 200
    assert client.get("/console/door").status_code == 200
    assert not appliance._frame_observers  # nobody was shown a frame: the loop pays nothing


def test_a_forged_token_a_stolen_cookie_elsewhere_or_none_at_all_is_refused(console):
    client, c, _ = console
    csrf = _login(client)
    for path in POSTS:
        assert client.post(path, json={"name": "x"}).status_code == 403, path
        assert client.post(path, json={"name": "x"}, headers={"X-CSRF-Token": "forged"}).status_code == 403, path
        r = client.post(path, data={"name": "x", "csrf": "forged"})
        assert r.status_code == 403, path
    other = c.sessions.create("elsewhere")  # a token of another session is not this session's
    assert client.post("/console/api/capture/clear", headers={"X-CSRF-Token": other.csrf}).status_code == 403
    r = client.post("/console/api/capture/clear", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200
    r = client.post("/console/api/capture/clear", data={"csrf": csrf})  # the form field works too
    assert r.status_code == 200


def test_the_cookie_is_httponly_samesite_strict_and_a_logout_ends_the_session(console):
    client, c, _ = console
    r = client.post("/console/api/login", json={"password": PASSWORD})
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/console" in cookie
    assert "secure" not in cookie  # plain HTTP here; with [http] tls_cert it is Secure
    csrf = client.get("/console/api/session").json()["csrf"]
    token = client.cookies.get("edge_console")
    assert client.post("/console/api/logout", headers={"X-CSRF-Token": csrf}).status_code == 200
    assert c.sessions.get(token) is None
    client.cookies.set("edge_console", token, path="/console")  # replaying the old cookie
    assert client.get("/console/api/live").status_code == 401


def test_the_cookie_is_secure_when_the_console_is_served_over_tls(console):
    client, c, _ = console
    c.tls = True  # what [http] tls_cert/tls_key set
    r = client.post("/console/api/login", json={"password": PASSWORD})
    assert "secure" in r.headers["set-cookie"].lower()


def test_an_expired_session_is_refused(console):
    client, c, _ = console
    _login(client)
    c.sessions.ttl_s = 0.0
    for s in list(c.sessions._sessions.values()):
        s.expires = c.sessions.clock() - 1
    assert client.get("/console/api/live").status_code == 401


def test_login_refusals(console):
    client, _, _ = console
    assert client.post("/console/api/login", json={"password": "wrong-password"}).status_code == 401
    assert (
        client.post("/console/api/login", content=b"{", headers={"content-type": "application/json"}).status_code == 400
    )
    assert client.post("/console/api/login", json=["password"]).status_code == 400
    assert client.post("/console/api/login", json={"password": 12345678}).status_code == 400
    assert (
        client.post("/console/api/login", content=b"password=x", headers={"content-type": "text/plain"}).status_code
        == 415
    )
    big = b'{"password": "' + b"x" * 20000 + b'"}'
    assert (
        client.post("/console/api/login", content=big, headers={"content-type": "application/json"}).status_code == 413
    )
    r = client.post("/console/api/login", json={"password": PASSWORD}, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403


def test_the_login_limit_answers_429_with_retry_after_even_for_the_right_password(console):
    client, _, _ = console
    for _ in range(5):
        assert client.post("/console/api/login", json={"password": "guess-guess"}).status_code == 401
    r = client.post("/console/api/login", json={"password": PASSWORD})
    assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 60
    assert "edge_console" not in client.cookies


def test_no_password_set_refuses_every_login(engine, tmp_path):
    from starlette.testclient import TestClient

    from edge.appliance.loop import Appliance
    from edge.camera import DirectorySource
    from edge.console import ConsoleContext, console_app
    from edge.matching import Gallery

    (tmp_path / "f").mkdir()
    config = config_from_dict({"vault": {"path": ""}, "audit": {"path": ""}})
    appliance = Appliance(
        engine,
        Gallery.from_embeddings([], np.zeros((0, 128), np.float32)),
        DirectorySource(tmp_path / "f"),
        config=config,
    )
    none = lambda *a: {}  # noqa: E731
    client = TestClient(console_app(ConsoleContext(appliance, config, none, none, none)))
    for guess in ("", "password", PASSWORD):
        r = client.post("/console/api/login", json={"password": guess})
        assert r.status_code == 401 and "set-password" in r.json()["error"]


def test_pages_carry_a_strict_policy_and_assets_are_a_fixed_list(console):
    client, _, _ = console
    r = client.get("/console/login")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY" and r.headers["cache-control"] == "no-store"
    assert "<script>" not in r.text  # no inline script: the policy forbids it
    assert client.get("/console/static/console.js").status_code == 200
    for bad in ("..%2F..%2Fpyproject.toml", "../app.py", "app.py", "login.html", "%2e%2e"):
        assert client.get(f"/console/static/{bad}").status_code == 404, bad
    assert "x-frame-options" not in client.get("/console/door").headers


def test_upload_enrolment_gate_duplicate_and_revoke(console, _skimage_photos):
    client, _, appliance = console
    csrf = _login(client)
    h = {"X-CSRF-Token": csrf}
    astronaut = _jpeg(_skimage_photos["astronaut"])
    coffee = _jpeg(np.full((300, 300, 3), 128, np.uint8))
    # A photo without a face: refused, and the page is told why.
    r = client.post("/console/api/enrol", data={"name": "Eileen"}, files=[("photos", ("c.jpg", coffee))], headers=h)
    assert r.status_code == 422 and "no face" in r.json()["error"]
    r = client.post("/console/api/enrol", data={"name": "Eileen"}, files=[("photos", ("a.jpg", astronaut))], headers=h)
    assert r.status_code == 200 and r.json()["photos"] == 1, r.text
    assert "Eileen" in appliance.gallery.people  # the loop knows her before the answer
    people = client.get("/console/api/people").json()
    assert [p["name"] for p in people["people"]] == ["Eileen"] and people["problems"] == []
    # The same face under another name: the duplicate check refuses it.
    r = client.post("/console/api/enrol", data={"name": "Other"}, files=[("photos", ("a.jpg", astronaut))], headers=h)
    assert r.status_code == 422 and "already enrolled as 'Eileen'" in r.json()["error"]
    # Revoke needs the name twice.
    assert client.post("/console/api/revoke", json={"name": "Eileen"}, headers=h).status_code == 400
    assert (
        client.post("/console/api/revoke", json={"name": "Eileen", "confirm": "eileen"}, headers=h).status_code == 400
    )
    r = client.post("/console/api/revoke", json={"name": "Eileen", "confirm": "Eileen"}, headers=h)
    assert r.status_code == 200 and r.json()["files"] >= 2
    assert client.get("/console/api/people").json()["people"] == []
    # the loop's gallery was re-read before the answer: its next frame no longer knows her
    assert "Eileen" not in appliance.gallery.people
    # Crafted input: no name, a bad name, no photos.
    assert client.post("/console/api/enrol", json={}, headers=h).status_code == 400
    r = client.post(
        "/console/api/enrol", data={"name": "../../etc"}, files=[("photos", ("a.jpg", astronaut))], headers=h
    )
    assert r.status_code == 422
    assert client.post("/console/api/enrol", json={"name": "Nobody"}, headers=h).status_code == 400  # no captures


def test_capture_runs_the_quality_gate_on_the_face_in_view(console, engine):
    client, c, appliance = console
    csrf = _login(client)
    h = {"X-CSRF-Token": csrf}
    assert client.post("/console/api/capture", headers=h).status_code == 409  # no frame seen yet
    assert appliance._frame_observers  # asking for a capture starts the viewer
    from edge.camera import Frame

    source = appliance.source
    source.open()
    empty = source.read()
    appliance.process(Frame(empty, 0, 0.0, time.monotonic()))
    r = client.post("/console/api/capture", headers=h)
    assert r.status_code == 422 and r.json()["error"] == "no face in view"
    # on to the visitor's first photo (without lfw-dev the second is the astronaut brightened,
    # which the enrolment gate refuses as clipped)
    for i in range(1, 30):
        appliance.process(Frame(source.read(), i, i / 15, time.monotonic()))
    source.close()
    r = client.post("/console/api/capture", headers=h)
    assert r.status_code == 200 and r.json()["staged"] == 1, r.text
    staged = client.get("/console/api/capture/0.jpg")
    assert staged.headers["content-type"] == "image/jpeg" and len(engine.faces(staged.content)) == 1
    # A face that fails the gate: the frame made dark and blurred; the reason is given.
    rgb, faces = c.preview.current_frame()
    dark = cv2.GaussianBlur((rgb * 0.08).astype(np.uint8), (0, 0), 6)
    c.preview._pending = (Frame(dark, 99, 99.0, time.monotonic()), faces, time.monotonic())
    r = client.post("/console/api/capture", headers=h)
    assert r.status_code == 422 and r.json()["error"].startswith("capture refused: "), r.text
    r = client.post("/console/api/enrol", json={"name": "Visitor"}, headers=h)
    assert r.status_code == 200 and r.json()["photos"] == 1


def test_the_preview_encodes_only_while_watched_and_detaches(console):
    client, c, appliance = console
    _login(client)
    c.preview.idle_s = 0.5
    from edge.camera import Frame

    assert not appliance._frame_observers
    client.get("/console/api/live")
    assert appliance._frame_observers
    frame = np.full((480, 640, 3), 90, np.uint8)
    for i in range(5):
        appliance.process(Frame(frame, i, i / 15, time.monotonic()))
        time.sleep(0.25)
    assert 1 <= c.preview.encoded <= 5  # at most preview_fps (5/s) over ~1.25 s
    r = client.get("/console/api/frame.jpg")
    assert r.status_code == 200 and r.content[:2] == b"\xff\xd8"
    deadline = time.monotonic() + 5
    while appliance._frame_observers and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not appliance._frame_observers  # nobody watching: detached


def test_the_door_shows_decisions_and_prompts_but_names_only_when_configured(console):
    _, c, _ = console
    granted = {"id": 1, "kind": "granted", "name": "Eileen"}
    assert c._door_view(granted) == {"id": 1, "kind": "granted"}
    assert c._door_view({"id": 2, "kind": "liveness_challenge", "prompt": "left"})["prompt"] == "left"
    from dataclasses import replace

    c.settings = replace(c.settings, door_display_names=True)
    assert c._door_view(granted)["name"] == "Eileen"


def test_unknown_crops_are_not_kept_unless_configured(console):
    client, c, _ = console
    csrf = _login(client)
    assert not c.feed.wants_face
    r = client.post("/console/api/enrol/verdict", json={"seq": 1, "name": "X"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 403 and "keep_unknown_crops" in r.json()["error"]


def test_the_feed_reads_the_recent_trail_from_the_audit_log(tmp_path):
    from edge.console.feed import VerdictFeed

    audit = tmp_path / "audit.jsonl"
    audit.write_text(
        '{"type":"event","event":"started"}\n'
        '{"type":"verdict","seq":7,"decision":"granted","name":"A"}\n'
        "not json\n"
        '{"type":"event","event":"tailgate","granted_name":"A"}\n'
    )
    feed = VerdictFeed(audit_path=str(audit))
    assert [(r["kind"], r.get("seq")) for r in feed.since(0)] == [("granted", 7), ("tailgate", None)]
    assert [r["kind"] for r in feed.since(0, {"tailgate"})] == ["tailgate"]
    assert VerdictFeed(audit_path=str(tmp_path / "none")).since(0) == []


def test_the_console_package_ships_its_assets():
    from importlib import resources

    static = resources.files("edge.console") / "static"
    names = {p.name for p in static.iterdir()}
    assert {
        "login.html",
        "live.html",
        "enrol.html",
        "people.html",
        "verdicts.html",
        "status.html",
        "door.html",
    } <= names
    assert {"console.js", "login.js", "door.js", "console.css"} <= names
    text = "".join((static / n).read_text() for n in names)
    assert (
        "http://" not in text.replace("http://www.w3.org", "") and "https://" not in text
    )  # nothing from the internet
    pyproject = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
    assert '"edge.console" = ["static/*.html", "static/*.js", "static/*.css"]' in pyproject


def test_with_keep_unknown_crops_an_unknown_visit_becomes_an_enrolment(console, engine):
    client, c, appliance = console
    from dataclasses import replace

    from edge.camera import Frame

    c.settings = replace(c.settings, keep_unknown_crops=True)
    c.feed.keep_unknown_crops = c.feed.wants_face = True
    appliance.remove_sink(c.feed)
    appliance.add_sink(c.feed)  # re-attached: the loop now cuts faces for it
    csrf = _login(client)
    source = appliance.source
    source.open()
    for i in range(60):
        appliance.process(Frame(source.read(), i, i / 15, time.monotonic()))
    source.close()
    records = client.get("/console/api/verdicts", params={"kind": "unknown"}).json()["records"]
    assert records and records[0]["crop"] is True
    seq = records[0]["seq"]
    crop = client.get(f"/console/api/crop/{seq}.jpg")
    assert crop.status_code == 200 and crop.content[:2] == b"\xff\xd8"
    assert client.get("/console/api/crop/999.jpg").status_code == 404
    assert client.get("/console/api/crop/x.jpg").status_code == 404
    r = client.post(
        "/console/api/enrol/verdict", json={"seq": seq, "name": "Met At The Door"}, headers={"X-CSRF-Token": csrf}
    )
    assert r.status_code == 200, r.text
    assert [p["name"] for p in client.get("/console/api/people").json()["people"]] == ["Met At The Door"]
    r = client.post("/console/api/enrol/verdict", json={"seq": "x", "name": "A"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 400


def test_a_failing_frame_observer_never_stops_the_loop(console):
    _, _, appliance = console
    from edge.camera import Frame

    seen = []

    def broken(frame, faces, verdicts):
        seen.append(frame.index)
        raise RuntimeError("viewer bug")

    appliance.add_frame_observer(broken)
    for i in range(3):
        appliance.process(Frame(np.full((480, 640, 3), 90, np.uint8), i, i / 15, time.monotonic()))
    appliance.remove_frame_observer(broken)
    appliance.process(Frame(np.full((480, 640, 3), 90, np.uint8), 3, 3 / 15, time.monotonic()))
    assert seen == [0, 1, 2] and appliance.counts["observer_errors"] == 3 and appliance.counts["frames"] == 4


def test_door_streams_need_no_login_but_are_bounded(console):
    client, c, _ = console
    from edge.console.app import MAX_DOOR_STREAMS

    c.door_streams = MAX_DOOR_STREAMS
    r = client.get("/console/api/door/stream")
    assert r.status_code == 503 and r.headers["retry-after"] == "10"
