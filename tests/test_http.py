"""The HTTP API (edge.http, docs/http.md): real photos through the real engine, in process
(Starlette's TestClient) and over a socket against `edge serve` run as a subprocess."""

from __future__ import annotations

import base64
import logging
import os
import subprocess
import sys
import threading
import time
from dataclasses import replace

import cv2
import numpy as np
import pytest
from http_helpers import REPO, BlockingEngine, edge_serve, encode, raw_request  # noqa: E402

pytest.importorskip("starlette", reason="the http extra (starlette, uvicorn, python-multipart)")
pytest.importorskip("httpx", reason="Starlette's TestClient needs httpx (test extra)")

from image_bombs import cut_with_eoi  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from edge.config import HttpConfig  # noqa: E402
from edge.http import create_app  # noqa: E402

VERIFY = "/identity/image_verification/stateless"
COMPARE = "/identity/face_compare/stateless"


@pytest.fixture(scope="module")
def engine():
    from edge import Engine

    return Engine()


@pytest.fixture(scope="module")
def photos():
    data = pytest.importorskip("skimage.data", reason="scikit-image (test extra) ships the photos")
    astronaut = np.ascontiguousarray(data.astronaut()[..., :3])
    coffee = np.ascontiguousarray(data.coffee()[..., :3])  # a real photo of a cup: no face
    return {
        "astronaut": encode(astronaut),
        "mirrored": encode(np.ascontiguousarray(astronaut[:, ::-1]), ".png"),
        "coffee": encode(coffee),
    }


@pytest.fixture(scope="module")
def client(engine):
    with TestClient(create_app(engine, HttpConfig())) as c:
        yield c


def pair(a: bytes, b: bytes) -> dict:
    return {"first_image_file": ("a.jpg", a, "image/jpeg"), "second_image_file": ("b.jpg", b, "image/jpeg")}


def assert_answer(response, status: int, code: int) -> dict:
    body = response.json()
    assert response.status_code == status, body
    assert body["code"] == code, body
    assert len(body["request_id"]) == 32 and response.headers["x-request-id"] == body["request_id"]
    return body


# --- success -------------------------------------------------------------------------------------


def test_verify_two_photos_of_one_face(client, photos):
    body = assert_answer(client.post(VERIFY, files=pair(photos["astronaut"], photos["mirrored"])), 200, 1000)
    assert body["verification_score"] >= 0.7  # the same person, mirrored: well above the recommended threshold
    assert body["face_count"] == {"first": 1, "second": 1}


def test_verify_flags_are_passed_and_checked(client, photos):
    files = pair(photos["astronaut"], photos["astronaut"])
    ok = client.post(VERIFY, files=files, data={"auto_rotate": "true", "check_quality": "false"})
    assert assert_answer(ok, 200, 1000)["verification_score"] >= 0.9
    bad = client.post(VERIFY, files=files, data={"auto_rotate": "maybe"})
    assert "auto_rotate" in assert_answer(bad, 400, 1200)["message"]


def test_compare_faces(client, photos):
    body = assert_answer(client.post(COMPARE, files=pair(photos["astronaut"], photos["mirrored"])), 200, 1000)
    assert len(body["scores"]) == 1 and len(body["scores"][0]) == 1 and body["scores"][0][0] >= 0.7
    assert len(body["face_rects"]["first"]) == 1 and len(body["face_rects"]["first"][0]) == 4


def test_request_ids_differ(client, photos):
    ids = {client.post(VERIFY, files=pair(photos["astronaut"], photos["astronaut"])).json()["request_id"]}
    ids.add(client.get("/healthz").json()["request_id"])
    ids.add(client.get("/nowhere").json()["request_id"])
    assert len(ids) == 3


# --- the engine's error codes ------------------------------------------------------------------


@pytest.mark.parametrize("path", [VERIFY, COMPARE])
def test_missing_field_is_1200(client, photos, path):
    files = {"first_image_file": ("a.jpg", photos["astronaut"], "image/jpeg")}
    assert "second_image_file" in assert_answer(client.post(path, files=files), 400, 1200)["message"]
    # not multipart at all: no fields
    assert_answer(client.post(path, content=b"{}", headers={"content-type": "application/json"}), 400, 1200)


def test_a_text_field_is_not_an_image_and_never_a_path(client, photos):
    files = {"first_image_file": ("a.jpg", photos["astronaut"], "image/jpeg")}
    response = client.post(VERIFY, files=files, data={"second_image_file": "/etc/passwd"})
    assert "file upload" in assert_answer(response, 400, 1200)["message"]


def test_not_an_image_is_2005(client, photos):
    gif = b"GIF89a" + bytes(200)
    assert_answer(client.post(VERIFY, files=pair(photos["astronaut"], gif)), 400, 2005)
    text = assert_answer(client.post(COMPARE, files=pair(b"hello, this is text " * 20, photos["astronaut"])), 400, 2005)
    assert "hello" not in text["message"]  # never quotes what it read


@pytest.mark.parametrize("path", [VERIFY, COMPARE])
def test_corrupted_image_is_2006(client, photos, path):
    cut = cut_with_eoi(photos["astronaut"], 0.5)
    assert_answer(client.post(path, files=pair(photos["astronaut"], cut)), 400, 2006)


def test_image_too_small_is_2003(client, photos, astronaut_rgb):
    tiny = encode(cv2.resize(astronaut_rgb, (32, 32)), ".png")
    assert_answer(client.post(VERIFY, files=pair(photos["astronaut"], tiny)), 400, 2003)


def test_empty_image_is_2004_with_413(client, photos):
    assert_answer(client.post(VERIFY, files=pair(b"", photos["astronaut"])), 413, 2004)


def test_image_above_the_engine_limit_is_2004(engine, photos):
    small = replace(engine.config, limits=replace(engine.config.limits, max_bytes=len(photos["astronaut"]) - 1))
    limited = engine.bytes_only()
    limited = type(limited).__new__(type(limited))
    limited.__dict__.update(engine.__dict__, config=small, allow_paths=False)
    with TestClient(create_app(limited, HttpConfig())) as c:
        assert_answer(c.post(VERIFY, files=pair(photos["astronaut"], photos["astronaut"])), 413, 2004)


@pytest.mark.parametrize("path", [VERIFY, COMPARE])
def test_no_face_is_4000(client, photos, path):
    body = assert_answer(client.post(path, files=pair(photos["astronaut"], photos["coffee"])), 400, 4000)
    assert "second" in body["message"]


# --- encrypted images ----------------------------------------------------------------------------


def test_encrypted_images_open_with_the_device_key(engine, photos, tmp_path):
    from edge.vault import init_keys, load_private_key, seal_image

    public = init_keys(tmp_path / "vault")
    sealed = base64.b64encode(seal_image(photos["astronaut"], public)).decode()
    app = create_app(engine, HttpConfig(), unseal_key=load_private_key(tmp_path / "vault"))
    with TestClient(app) as c:
        data = {"first_encrypted_image": sealed, "second_encrypted_image": sealed}
        assert assert_answer(c.post(VERIFY, data=data), 200, 1000)["verification_score"] >= 0.9
        # sealed to another key: does not open
        other = init_keys(tmp_path / "other")
        foreign = base64.b64encode(seal_image(photos["astronaut"], other)).decode()
        response = c.post(VERIFY, data={"first_encrypted_image": sealed, "second_encrypted_image": foreign})
        assert_answer(response, 400, 1200)


def test_encrypted_images_refused_without_a_device_key(client, photos):
    data = {"first_encrypted_image": "AAAA", "second_encrypted_image": "AAAA"}
    assert "no key" in assert_answer(client.post(VERIFY, data=data), 400, 1200)["message"]


# --- HTTP semantics ------------------------------------------------------------------------------


def test_unknown_path_and_method(client):
    assert "no such endpoint" in assert_answer(client.get("/identity/nothing"), 404, 1200)["message"]
    assert_answer(client.get(VERIFY), 405, 1200)


def test_body_above_the_limit_is_413(engine, photos):
    with TestClient(create_app(engine, HttpConfig(max_body_bytes=1024))) as c:
        body = assert_answer(c.post(VERIFY, files=pair(photos["astronaut"], photos["astronaut"])), 413, 2004)
        assert "1024" in body["message"]


def test_api_keys(engine, photos):
    key = "k" * 24
    with TestClient(create_app(engine, HttpConfig(api_keys=(key,)))) as c:
        files = pair(photos["astronaut"], photos["astronaut"])
        assert_answer(c.post(VERIFY, files=files), 401, 1200)
        assert_answer(c.post(VERIFY, files=files, headers={"x-api-key": "x" * 24}), 403, 1200)
        assert_answer(c.post(VERIFY, files=files, headers={"x-api-key": key}), 200, 1000)
        doc = c.get("/openapi.json").json()
        assert doc["paths"][VERIFY]["post"]["security"] == [{"apiKey": []}]


def test_healthz_and_openapi(client):
    health = client.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.") and {VERIFY, COMPARE, "/healthz"} <= set(doc["paths"])
    assert "503" in doc["paths"][VERIFY]["post"]["responses"]


def test_full_queue_is_503_with_retry_after(engine, photos):
    blocking = BlockingEngine(engine)
    files = pair(photos["astronaut"], photos["astronaut"])
    with TestClient(create_app(blocking, HttpConfig(max_queue=0, retry_after_s=3))) as c:
        first = {}
        worker = threading.Thread(target=lambda: first.update(r=c.post(VERIFY, files=files)))
        worker.start()
        try:
            assert blocking.entered.wait(30)
            busy = c.post(VERIFY, files=files)
            assert_answer(busy, 503, 5000)
            assert busy.headers["retry-after"] == "3"
            assert c.get("/healthz").json()["queue"] == {"taken": 1, "capacity": 1}
        finally:
            blocking.release.set()
            worker.join(60)
        assert_answer(first["r"], 200, 1000)
        assert_answer(c.post(VERIFY, files=files), 200, 1000)  # the place is given back


# --- `edge serve` over a socket -------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    config = '[vault]\npath = ""\n[http]\nmax_body_bytes = 2000000\n'
    with edge_serve(tmp_path_factory.mktemp("serve"), config) as port:
        yield port


@pytest.mark.slow
def test_edge_serve_over_a_socket(served, photos):
    import httpx

    port = served
    base = f"http://127.0.0.1:{port}"
    ok = httpx.post(base + VERIFY, files=pair(photos["astronaut"], photos["mirrored"]), timeout=60)
    assert assert_answer(ok, 200, 1000)["verification_score"] >= 0.7
    assert "server" not in ok.headers
    assert_answer(httpx.post(base + COMPARE, files=pair(photos["astronaut"], photos["coffee"]), timeout=60), 400, 4000)
    assert_answer(httpx.get(base + "/missing", timeout=10), 404, 1200)

    # 413 from the Content-Length header alone: the server answers without waiting for the
    # gigabyte it was promised (none of it is ever sent).
    started = time.monotonic()
    reply = raw_request(
        port,
        f"POST {VERIFY} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        "Content-Length: 1000000000\r\n\r\n",
        until=b'"request_id"',
    )
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert b'"code":2004' in reply and b'"request_id"' in reply
    assert time.monotonic() - started < 5

    # 411: a chunked upload has no Content-Length
    reply = raw_request(
        port,
        f"POST {VERIFY} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        "Transfer-Encoding: chunked\r\n\r\n",
        b"5\r\nhello\r\n0\r\n\r\n",
        until=b'"request_id"',
    )
    assert reply.startswith(b"HTTP/1.1 411"), reply[:200]
    assert b'"code":2004' in reply and b'"request_id"' in reply


def test_serve_refuses_a_bad_config(tmp_path):
    config = tmp_path / "edge.toml"
    config.write_text('[http]\ntls_cert = "/nonexistent.pem"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "edge.cli", "serve", "--config", str(config)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "http.tls_key" in proc.stderr


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ({"host": " "}, "http.host"),
        ({"tls_key": "/k.pem"}, "http.tls_cert"),
        ({"api_keys": ["short"]}, "http.api_keys[0]"),
        ({"port": 0}, "http.port"),
        ({"max_queue": -1}, "http.max_queue"),
    ],
)
def test_http_config_errors_name_the_key(section, key):
    from edge.config import ConfigError, config_from_dict

    with pytest.raises(ConfigError) as err:
        config_from_dict({"http": section})
    assert err.value.key == key


def test_a_client_that_leaves_mid_upload_is_no_fault_and_gives_its_place_back(engine, caplog):
    """A client sends part of a multipart body, then disconnects: the device logs no error, answers
    no 500 (there is nobody to answer), and the engine queue's place is free again."""
    import asyncio

    app = create_app(engine, HttpConfig(max_queue=0))
    head = b'--b\r\nContent-Disposition: form-data; name="first_image_file"; filename="a.jpg"\r\n\r\n\xff\xd8'
    messages = iter([{"type": "http.request", "body": head, "more_body": True}, {"type": "http.disconnect"}])
    sent = []

    async def receive():
        return next(messages, {"type": "http.disconnect"})

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/identity/image_verification/stateless", "raw_path": b"/identity/image_verification/stateless",
        "query_string": b"", "root_path": "", "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8080),
        "headers": [(b"content-type", b"multipart/form-data; boundary=b"), (b"content-length", b"100000")],
    }  # fmt: skip
    with caplog.at_level(logging.INFO, logger="edge.http"):
        asyncio.run(app(scope, receive, send))
    (start,) = [m for m in sent if m["type"] == "http.response.start"]
    assert start["status"] == 400, start
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "the client left" in caplog.text and app.state.api.queue.taken == 0
