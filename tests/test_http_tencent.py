"""Tencent Cloud CompareFace served by the device (edge.http.tencent, docs/http.md): the official
`tencentcloud-sdk-python-iai` client against a real server on a socket, and signed requests made
here (TC3-HMAC-SHA256 with the SDK's own signing function) through Starlette's TestClient.
Real photos, the real engine, real HMAC."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import datetime, timezone

import cv2
import numpy as np
import pytest
from http_helpers import REPO, b64, edge_serve, encode, free_port  # noqa: E402

pytest.importorskip("starlette", reason="the http extra (starlette, uvicorn, python-multipart)")
pytest.importorskip("httpx", reason="Starlette's TestClient needs httpx (test extra)")
pytest.importorskip("tencentcloud.iai", reason="tencentcloud-sdk-python-iai (test extra)")

from image_bombs import cut_with_eoi  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402
from tencentcloud.common import credential  # noqa: E402
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException  # noqa: E402
from tencentcloud.common.profile.client_profile import ClientProfile  # noqa: E402
from tencentcloud.common.profile.http_profile import HttpProfile  # noqa: E402
from tencentcloud.common.sign import Sign  # noqa: E402
from tencentcloud.iai.v20180301 import iai_client as iai_client_2018  # noqa: E402
from tencentcloud.iai.v20180301 import models as models_2018  # noqa: E402
from tencentcloud.iai.v20200303 import iai_client, models  # noqa: E402

from edge.config import ConfigError, HttpConfig  # noqa: E402
from edge.http import create_app  # noqa: E402
from edge.http.tc3 import SeenSignatures, TencentError, parse_secrets  # noqa: E402
from edge.http.tencent import _ERROR_CODES  # noqa: E402

SECRET_ID, SECRET_KEY = "AKIDedgeTestSecretId0000000000000000", "k3y-of-the-device-0123456789abcd"
SECRETS = (f"{SECRET_ID}:{SECRET_KEY}",)
HOST = "device.local:8080"
_SIGNED: set = set()


@pytest.fixture(scope="module")
def engine():
    from edge import Engine

    return Engine()


@pytest.fixture(scope="module")
def photos():
    data = pytest.importorskip("skimage.data", reason="scikit-image (test extra) ships the photos")
    astronaut = np.ascontiguousarray(data.astronaut()[..., :3])
    camera = np.ascontiguousarray(np.repeat(data.camera()[..., None], 3, axis=2))  # the cameraman: another person
    blurred = cv2.GaussianBlur(astronaut, (0, 0), 4.0)
    return {
        "astronaut": encode(astronaut),
        "mirrored": encode(np.ascontiguousarray(astronaut[:, ::-1]), ".png"),
        "camera": encode(camera),
        "coffee": encode(np.ascontiguousarray(data.coffee()[..., :3])),  # a cup: no face
        "blurred": encode(blurred),
        "upside_down": encode(np.ascontiguousarray(np.rot90(astronaut, 2))),  # no EXIF to say so
        "tiny": encode(cv2.resize(astronaut, (32, 32)), ".png"),
    }


# --- signing as Tencent documents it (the SDK's own HMAC chain) -------------------------------------


def signed_headers(
    body: bytes,
    *,
    secret_id: str = SECRET_ID,
    secret_key: str = SECRET_KEY,
    host: str = HOST,
    timestamp: int | None = None,
    service: str = "iai",
    date: str | None = None,
    content_type: str = "application/json",
    action: str = "CompareFace",
    version: str = "2020-03-03",
) -> dict[str, str]:
    if timestamp is None:
        # A request sent twice in one second is signed alike and refused as a replay: a body
        # signed here again is dated a second earlier than any time before (within the window).
        key = (hashlib.sha256(body).digest(), secret_id, secret_key, host, service, content_type, date)
        timestamp = int(time.time())
        while (key, timestamp) in _SIGNED:
            timestamp -= 1
        _SIGNED.add((key, timestamp))
    date = date or datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d")
    canonical = (
        f"POST\n/\n\ncontent-type:{content_type}\nhost:{host}\n\ncontent-type;host\n{hashlib.sha256(body).hexdigest()}"
    )
    to_sign = (
        f"TC3-HMAC-SHA256\n{timestamp}\n{date}/{service}/tc3_request\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    )
    signature = Sign.sign_tc3(secret_key, date, service, to_sign)
    return {
        "Authorization": f"TC3-HMAC-SHA256 Credential={secret_id}/{date}/{service}/tc3_request, "
        f"SignedHeaders=content-type;host, Signature={signature}",
        "Content-Type": content_type,
        "Host": host,
        "X-TC-Action": action,
        "X-TC-Version": version,
        "X-TC-Timestamp": str(timestamp),
        "X-TC-Region": "ap-guangzhou",
    }


def body_of(photos, a: str = "astronaut", b: str = "mirrored", **params) -> bytes:
    return json.dumps({"ImageA": b64(photos[a]), "ImageB": b64(photos[b]), **params}).encode()


class CountingEngine:
    """The real engine, counting `verify` calls: shows a refusal came before the engine."""

    def __init__(self, engine) -> None:
        self.engine = engine.bytes_only()
        self.config, self.model_version = self.engine.config, self.engine.model_version
        self.calls = 0
        self.entered, self.release = threading.Event(), threading.Event()
        self.release.set()

    def bytes_only(self):
        return self

    def verify(self, *args, **kwargs):
        self.calls += 1
        self.entered.set()
        assert self.release.wait(30)
        return self.engine.verify(*args, **kwargs)


@pytest.fixture(scope="module")
def counting(engine):
    return CountingEngine(engine)


@pytest.fixture(scope="module")
def client(counting):
    with TestClient(create_app(counting, HttpConfig(tencent_secrets=SECRETS)), base_url=f"http://{HOST}") as c:
        yield c


def post(client, body: bytes, headers: dict[str, str]):
    return client.post("/", content=body, headers=headers)


def error_of(response) -> str:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    answer = response.json()["Response"]
    assert len(answer["RequestId"]) == 36 and response.headers["x-request-id"] == answer["RequestId"]
    assert "Error" in answer, answer
    assert answer["Error"]["Message"]
    assert answer["Error"]["Code"] in _ERROR_CODES  # as /openapi.json lists them
    return answer["Error"]["Code"]


def score_of(response) -> float:
    assert response.status_code == 200, response.text
    answer = response.json()["Response"]
    assert "Error" not in answer, answer
    return answer["Score"]


# --- the official SDK against a real server ---------------------------------------------------------


@contextlib.contextmanager
def serving(app):
    """uvicorn on a free loopback port, in a thread, until the block ends."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture(scope="module")
def server(engine):
    with serving(create_app(engine, HttpConfig(tencent_secrets=SECRETS))) as port:
        yield port


def sdk(port: int, secret_id: str = SECRET_ID, secret_key: str = SECRET_KEY, module=iai_client):
    profile = ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=f"127.0.0.1:{port}", reqTimeout=120))
    return module.IaiClient(credential.Credential(secret_id, secret_key), "ap-guangzhou", profile)


def sdk_compare(client, a: bytes, b: bytes, request_type=models.CompareFaceRequest, **params):
    request = request_type()
    request.from_json_string(json.dumps({"ImageA": b64(a), "ImageB": b64(b), **params}))
    return client.CompareFace(request)


def sdk_error(client, a: bytes, b: bytes, **params) -> TencentCloudSDKException:
    with pytest.raises(TencentCloudSDKException) as info:
        sdk_compare(client, a, b, **params)
    assert len(info.value.get_request_id() or "") == 36, info.value  # our answer, not a network error
    assert info.value.get_code() in _ERROR_CODES
    return info.value


@pytest.mark.slow
def test_the_official_sdk_scores_same_person_and_strangers(server, engine, photos):
    client = sdk(server)
    same = sdk_compare(client, photos["astronaut"], photos["mirrored"])
    other = sdk_compare(client, photos["astronaut"], photos["camera"])
    assert same.FaceModelVersion == other.FaceModelVersion == "3.0" and len(same.RequestId) == 36
    # Tencent's v3 scale: 50 ↔ FAR 1e-4 ("above 50: the same person"); 40 ↔ FAR 1e-3
    assert same.Score >= 50 and other.Score < 40, (same.Score, other.Score)
    s = engine.verify(photos["astronaut"], photos["mirrored"])["verification_score"]
    assert same.Score == pytest.approx(min(100, max(0, 100 * s - 20)), abs=0.01)
    s = engine.verify(photos["astronaut"], photos["camera"])["verification_score"]
    assert other.Score == pytest.approx(min(100, max(0, 100 * s - 20)), abs=0.01)


@pytest.mark.slow
def test_the_official_sdk_sees_tencents_error_codes(server, photos):
    client = sdk(server)
    assert sdk_error(sdk(server, secret_key="x" * 32), photos["astronaut"], photos["mirrored"]).get_code() == (
        "AuthFailure.SignatureFailure"
    )
    assert sdk_error(sdk(server, secret_id="AKIDnobody"), photos["astronaut"], photos["mirrored"]).get_code() == (
        "AuthFailure.SecretIdNotFound"
    )
    no_face = sdk_error(client, photos["astronaut"], photos["coffee"])
    assert no_face.get_code() == "FailedOperation.ImageFacedetectFailed" and "second" in no_face.get_message()
    garbage = bytes(range(256)) * 40
    assert sdk_error(client, garbage, photos["astronaut"]).get_code() == "FailedOperation.ImageDecodeFailed"
    assert sdk_error(client, photos["astronaut"], photos["tiny"]).get_code() == (
        "FailedOperation.ImageResolutionTooSmall"
    )
    assert sdk_error(client, photos["astronaut"], photos["astronaut"], FaceModelVersion="4.0").get_code() == (
        "InvalidParameterValue.FaceModelVersionIllegal"
    )
    big = np.random.default_rng(0).integers(0, 256, 6 * 1024 * 1024, dtype=np.uint8).tobytes()  # > 5 MiB
    assert sdk_error(client, big, photos["astronaut"]).get_code() == "FailedOperation.ImageSizeExceed"


@pytest.mark.slow
def test_the_official_sdk_of_api_2018_03_01_and_model_2_0(server, engine, photos):
    client = sdk(server, module=iai_client_2018)
    for other in ("mirrored", "camera"):  # the same person (clamped at 100) and a stranger (mid-scale)
        answer = sdk_compare(
            client, photos["astronaut"], photos[other], models_2018.CompareFaceRequest, FaceModelVersion="2.0"
        )
        s = engine.verify(photos["astronaut"], photos[other])["verification_score"]
        assert answer.FaceModelVersion == "2.0"  # Tencent's 2.0 scale: 70/80/90 ↔ FAR 1e-3/1e-4/1e-5
        assert answer.Score == pytest.approx(min(100, max(0, 100 * s + 10)), abs=0.01)
        assert 0 < answer.Score < 100 or other == "mirrored"


@pytest.mark.slow
def test_an_oversized_request_is_refused_from_its_header_in_tencents_words(engine, photos):
    with serving(create_app(engine, HttpConfig(tencent_secrets=SECRETS, max_body_bytes=4096))) as port:
        error = sdk_error(sdk(port), photos["astronaut"], photos["mirrored"])
        assert error.get_code() == "RequestSizeLimitExceeded" and "4096" in error.get_message()

        # Without a valid signature, and with a body it never sends: answered at once
        import socket

        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-TC-Action: CompareFace\r\n"
                b"Content-Length: 1000000000\r\n\r\n"
            )
            reply = b""
            while b"RequestId" not in reply and (chunk := s.recv(65536)):
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 200") and b"AuthFailure.InvalidAuthorization" in reply


@pytest.mark.slow
def test_the_official_sdk_against_edge_serve(tmp_path, photos):
    """`edge serve` as deployed, its secrets from the TOML configuration."""
    with edge_serve(tmp_path, f'[vault]\npath = ""\n[http]\ntencent_secrets = ["{SECRETS[0]}"]\n') as port:
        assert sdk_compare(sdk(port), photos["astronaut"], photos["mirrored"]).Score >= 50
        wrong = sdk_error(sdk(port, secret_key="y" * 32), photos["astronaut"], photos["mirrored"])
        assert wrong.get_code() == "AuthFailure.SignatureFailure"


def test_edge_serve_refuses_a_bad_tencent_secret(tmp_path):
    config = tmp_path / "edge.toml"
    config.write_text('[vault]\npath = ""\n[http]\ntencent_secrets = ["AKIDnokey"]\n')
    proc = subprocess.run(
        [sys.executable, "-m", "edge.cli", "serve", "--config", str(config)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "http.tencent_secrets[0]" in proc.stderr, proc.stderr[-2000:]


# --- authentication, from the headers and over the body ----------------------------------------------


def test_the_signature_is_checked_before_the_engine(client, counting, photos):
    body = body_of(photos)
    before = counting.calls
    assert error_of(post(client, body, signed_headers(body, secret_key="wrong-key-0123456789"))) == (
        "AuthFailure.SignatureFailure"
    )
    tampered = body_of(photos, b="camera")  # the signature of another body
    assert error_of(post(client, tampered, signed_headers(body))) == "AuthFailure.SignatureFailure"
    elsewhere = signed_headers(body, host="other.device:8080")  # signed for another host
    assert error_of(post(client, body, {**elsewhere, "Host": HOST})) == "AuthFailure.SignatureFailure"
    assert counting.calls == before
    assert score_of(post(client, body, signed_headers(body))) >= 50
    assert counting.calls == before + 1


def test_authorization_header_faults(client, photos):
    body = body_of(photos)
    good = signed_headers(body)
    no_auth = {k: v for k, v in good.items() if k != "Authorization"}
    assert error_of(post(client, body, no_auth)) == "AuthFailure.InvalidAuthorization"
    for bad in (
        "Bearer abc",
        "TC3-HMAC-SHA256 Credential=x",
        good["Authorization"].replace("SignedHeaders=content-type;host", "SignedHeaders=content-type"),
        good["Authorization"].replace("/tc3_request", "/tc4_request"),
        good["Authorization"][:-1],  # a signature one hex digit short
        good["Authorization"].replace(f"Credential={SECRET_ID}", "Credential=" + "A" * 200),  # no SecretId's form
    ):
        assert error_of(post(client, body, {**good, "Authorization": bad})) == "AuthFailure.InvalidAuthorization", bad
    # a signature made for another Tencent service is not one for iai
    other = signed_headers(body, service="cvm")
    assert error_of(post(client, body, other)) == "AuthFailure.InvalidAuthorization"
    unknown = signed_headers(body, secret_id="AKIDsomeoneelse")
    assert error_of(post(client, body, unknown)) == "AuthFailure.SecretIdNotFound"
    unsigned = {**good, "X-TC-Content-SHA256": "UNSIGNED-PAYLOAD"}
    assert error_of(post(client, body, unsigned)) == "AuthFailure.InvalidAuthorization"


def test_the_timestamp_window(client, photos):
    body = body_of(photos)
    now = int(time.time())
    assert error_of(post(client, body, signed_headers(body, timestamp=now - 301))) == "AuthFailure.SignatureExpire"
    assert error_of(post(client, body, signed_headers(body, timestamp=now + 400))) == "AuthFailure.SignatureExpire"
    day = datetime.fromtimestamp(now - 2 * 86400, timezone.utc).strftime("%Y-%m-%d")
    assert error_of(post(client, body, signed_headers(body, date=day))) == "AuthFailure.SignatureFailure"
    no_time = {k: v for k, v in signed_headers(body).items() if k != "X-TC-Timestamp"}
    assert error_of(post(client, body, no_time)) == "MissingParameter"
    assert error_of(post(client, body, {**signed_headers(body), "X-TC-Timestamp": "12e9"})) == "InvalidParameter"
    assert score_of(post(client, body, signed_headers(body, timestamp=now - 250))) >= 50


def test_a_replayed_request_is_refused(client, counting, photos):
    body = body_of(photos, QualityControl=0)
    headers = signed_headers(body)
    assert score_of(post(client, body, headers)) >= 50
    calls = counting.calls
    replayed = post(client, body, headers)
    assert (
        error_of(replayed) == "AuthFailure.SignatureFailure"
        and "already used" in replayed.json()["Response"]["Error"]["Message"]
    )
    assert counting.calls == calls


def test_the_replay_memory_is_bounded_and_forgets_expired_signatures():
    seen = SeenSignatures(capacity=2)
    now = 1_800_000_000
    seen.remember("a" * 64, now, now)
    seen.remember("b" * 64, now + 10, now)
    with pytest.raises(TencentError) as full:
        seen.remember("c" * 64, now, now)
    assert full.value.tencent_code == "RequestLimitExceeded"
    with pytest.raises(TencentError) as again:
        seen.remember("a" * 64, now, now)
    assert again.value.tencent_code == "AuthFailure.SignatureFailure"
    seen.remember("c" * 64, now + 301, now + 301)  # "a" has left its window: forgotten, room made
    assert "a" * 64 not in seen and "b" * 64 in seen and len(seen) == 2


def test_action_and_version(client, photos):
    body = body_of(photos)
    assert error_of(post(client, body, signed_headers(body, action="DetectFace"))) == "InvalidAction"
    assert error_of(post(client, body, signed_headers(body, version="2017-01-01"))) == "NoSuchVersion"
    no_action = {k: v for k, v in signed_headers(body).items() if k != "X-TC-Action"}
    assert error_of(post(client, body, no_action)) == "MissingParameter"
    assert score_of(post(client, body, signed_headers(body, version="2018-03-01"))) >= 50


def test_no_secrets_configured_refuses_everything(engine, photos):
    with TestClient(create_app(engine, HttpConfig()), base_url=f"http://{HOST}") as c:
        body = body_of(photos)
        response = post(c, body, signed_headers(body))
        assert error_of(response) == "AuthFailure.SecretIdNotFound"
        assert "http.tencent_secrets" in response.json()["Response"]["Error"]["Message"]


@pytest.mark.parametrize(
    ("entries", "index"),
    [
        (("no-colon",), 0),
        ((f"{SECRET_ID}:short",), 0),
        ((SECRETS[0], "bad id/x:" + "k" * 20), 1),
        ((SECRETS[0], SECRETS[0]), 1),
        ((f"{SECRET_ID}:has a space in it 0123",), 0),
    ],
)
def test_secrets_are_checked_when_the_app_is_built(engine, entries, index):
    with pytest.raises(ConfigError) as err:
        create_app(engine, HttpConfig(tencent_secrets=entries))
    assert err.value.key == f"http.tencent_secrets[{index}]"
    assert parse_secrets(SECRETS) == {SECRET_ID: SECRET_KEY.encode()}


# --- the body: parameters and images --------------------------------------------------------------


def signed_post(client, body: bytes, **kwargs):
    return post(client, body, signed_headers(body, **kwargs))


ILLEGAL = "InvalidParameterValue"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"not json", "InvalidParameter"),
        (b"[1, 2]", "InvalidParameter"),
        (b"[" * 100_000 + b"]" * 100_000, "InvalidParameter"),  # deep nesting
        (b'{"ImageB": "AAAA"}', "InvalidParameterValue.ImageEmpty"),
        (b'{"ImageA": "", "ImageB": "AAAA"}', "InvalidParameterValue.ImageEmpty"),
        (b'{"ImageA": 5, "ImageB": "AAAA"}', "InvalidParameterValue"),
        (b'{"ImageA": "AAAA", "ImageB": "AAAA", "Extra": 1}', "UnknownParameter"),
        (b'{"ImageA": "AAAA", "ImageB": "AAAA", "QualityControl": 5}', "InvalidParameterValue.QualityControlIllegal"),
        (b'{"ImageA": "AAAA", "ImageB": "AAAA", "QualityControl": "1"}', "InvalidParameterValue.QualityControlIllegal"),
        (b'{"ImageA": "AAAA", "ImageB": "AAAA", "NeedRotateDetection": true}', "InvalidParameterValue"),
        (b'{"ImageA": "AAAA", "ImageB": "AAAA", "FaceMatchingStrategy": 2}', "InvalidParameterValue"),
        (b'{"ImageA": "AAAA", "ImageB": "AAAA", "FaceModelVersion": 3}', f"{ILLEGAL}.FaceModelVersionIllegal"),
        (b'{"ImageA": "AAAA", "ImageB": "AAAA", "FaceModelVersion": "1.0"}', f"{ILLEGAL}.FaceModelVersionIllegal"),
        (b'{"ImageA": "AAAA", "ImageB": "AAAA", "FaceModelVersion": {}}', f"{ILLEGAL}.FaceModelVersionIllegal"),
        (b'{"ImageA": "AAAA", "ImageB": "AAAA", "FaceModelVersion": ["3.0"]}', f"{ILLEGAL}.FaceModelVersionIllegal"),
        (b'{"ImageA": "@@@@", "ImageB": "AAAA"}', "FailedOperation.ImageDecodeFailed"),
        (b'{"ImageA": "/etc/passwd", "ImageB": "AAAA"}', "FailedOperation.ImageDecodeFailed"),
    ],
)  # fmt: skip
def test_crafted_bodies(client, counting, body, code):
    calls = counting.calls
    assert error_of(signed_post(client, body)) == code
    assert counting.calls == calls  # never reached the engine


def test_a_body_that_is_not_json_by_content_type(client, photos):
    body = body_of(photos)
    assert error_of(signed_post(client, body, content_type="text/plain")) == "InvalidParameter"


def test_urls_are_refused_unless_their_host_is_allowed(client, photos):
    image = b64(photos["astronaut"])
    for url in ("http://elsewhere.example/a.jpg", "file:///etc/passwd", "ftp://device.local/a.jpg", 7):
        body = json.dumps({"UrlA": url, "ImageA": image, "ImageB": image}).encode()
        response = signed_post(client, body)
        assert error_of(response) == "InvalidParameterValue.UrlIllegal", url
        assert "offline" in response.json()["Response"]["Error"]["Message"]


@contextlib.contextmanager
def photo_server(photos):
    """A web server on loopback with a photo, a redirect, a slow answer and an endless one."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            if self.path == "/a.jpg":
                self.send_response(200)
                self.send_header("Content-Length", str(len(photos["mirrored"])))
                self.end_headers()
                self.wfile.write(photos["mirrored"])
            elif self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "http://elsewhere.example/a.jpg")
                self.end_headers()
            elif self.path == "/slow":
                time.sleep(3)
                self.send_response(200)
                self.end_headers()
            elif self.path == "/endless":  # no Content-Length: the reader must count
                self.send_response(200)
                self.end_headers()
                with contextlib.suppress(OSError):
                    for _ in range(1000):
                        self.wfile.write(bytes(64 * 1024))
            else:
                self.send_error(404)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_urls_from_an_allowed_host_are_downloaded_within_bounds(engine, photos):
    config = HttpConfig(tencent_secrets=SECRETS, url_allow_hosts=("127.0.0.1",))
    app = create_app(engine, config)
    (dialect,) = [d for d in app.state.api.dialects if hasattr(d, "url_timeout_s")]
    dialect.url_timeout_s = 1.0
    with TestClient(app, base_url=f"http://{HOST}") as c, photo_server(photos) as base:
        image = b64(photos["astronaut"])

        def with_url(path: str) -> dict:
            return {"UrlB": base + path, "ImageA": image, "ImageB": b64(photos["camera"])}  # UrlB wins over ImageB

        assert score_of(signed_post(c, json.dumps(with_url("/a.jpg")).encode())) >= 50
        for path, code in [
            ("/redirect", "FailedOperation.ImageDownloadError"),
            ("/missing", "FailedOperation.ImageDownloadError"),
            ("/slow", "FailedOperation.ImageDownloadError"),
            ("/endless", "FailedOperation.ImageSizeExceed"),
        ]:
            started = time.monotonic()
            response = signed_post(c, json.dumps(with_url(path)).encode())
            assert error_of(response) == code, (path, response.json())
            assert "UrlB" in response.json()["Response"]["Error"]["Message"]
            assert time.monotonic() - started < 10


def test_quality_control_refuses_a_blurred_face(client, photos):
    body = body_of(photos, "astronaut", "blurred")
    assert score_of(signed_post(client, body)) > 0  # QualityControl 0 (the default): no check
    for level in (1, 4):
        body = body_of(photos, "astronaut", "blurred", QualityControl=level)
        assert error_of(signed_post(client, body)) == "FailedOperation.FaceQualityNotQualified", level
    assert score_of(signed_post(client, body_of(photos, QualityControl=4))) >= 50  # a good photo passes


def test_need_rotate_detection_turns_an_upside_down_face(client, photos):
    # Unturned, the upside-down face is embedded as it is and scores like a stranger's.
    assert score_of(signed_post(client, body_of(photos, "astronaut", "upside_down"))) < 40
    turned = signed_post(client, body_of(photos, "astronaut", "upside_down", NeedRotateDetection=1))
    assert score_of(turned) >= 50


def test_corrupted_and_not_an_image(client, photos):
    cut = cut_with_eoi(photos["astronaut"], 0.5)
    body = json.dumps({"ImageA": b64(photos["astronaut"]), "ImageB": b64(cut)}).encode()
    assert error_of(signed_post(client, body)) == "FailedOperation.ImageDecodeFailed"
    gif = json.dumps({"ImageA": b64(b"GIF89a" + bytes(200)), "ImageB": b64(photos["astronaut"])}).encode()
    assert error_of(signed_post(client, gif)) == "FailedOperation.ImageDecodeFailed"


def test_busy_is_request_limit_exceeded_with_retry_after(engine, photos):
    blocking = CountingEngine(engine)
    blocking.release.clear()
    config = HttpConfig(tencent_secrets=SECRETS, max_queue=0, retry_after_s=2)
    with TestClient(create_app(blocking, config), base_url=f"http://{HOST}") as c:
        first: dict = {}
        body = body_of(photos)
        headers = signed_headers(body)
        worker = threading.Thread(target=lambda: first.update(r=post(c, body, headers)))
        worker.start()
        try:
            assert blocking.entered.wait(30)
            other = body_of(photos, QualityControl=1)
            busy = signed_post(c, other)
            assert error_of(busy) == "RequestLimitExceeded" and busy.headers["retry-after"] == "2"
        finally:
            blocking.release.set()
            worker.join(60)
        assert score_of(first["r"]) >= 50


def test_openapi_describes_compare_face(client):
    doc = client.get("/openapi.json").json()
    operation = doc["paths"]["/"]["post"]
    assert {p["name"] for p in operation["parameters"]} >= {"X-TC-Action", "X-TC-Version", "X-TC-Timestamp"}
    assert operation["security"] == [{"tc3": []}]
    assert doc["components"]["securitySchemes"]["tc3"]["name"] == "Authorization"
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert {"ImageA", "ImageB", "QualityControl", "NeedRotateDetection", "FaceModelVersion"} <= set(
        schema["properties"]
    )
    assert "/identity/image_verification/stateless" in doc["paths"]  # the other dialects are still there


def test_the_engines_config_limits_apply(engine, photos):
    """A photo above the engine's byte limit (images.max_bytes) is Tencent's ImageSizeExceed."""
    from edge import Engine

    small = Engine(replace(engine.config, limits=replace(engine.config.limits, max_bytes=50_000)))
    with TestClient(create_app(small, HttpConfig(tencent_secrets=SECRETS)), base_url=f"http://{HOST}") as c:
        assert error_of(signed_post(c, body_of(photos, "astronaut", "camera"))) == "FailedOperation.ImageSizeExceed"
