"""The aigen Face Compare dialect (edge/http/aigen.py, docs/http.md): real photos through the real
engine, in process and over a socket, where the vendor's own Python sample (requests + json,
tests/fixtures/aigen_sample.py) is run against `edge serve`."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from http_helpers import REPO, BlockingEngine, b64, edge_serve, encode, raw_request  # noqa: E402

pytest.importorskip("starlette", reason="the http extra (starlette, uvicorn, python-multipart)")
pytest.importorskip("httpx", reason="Starlette's TestClient needs httpx (test extra)")

from image_bombs import cut_with_eoi  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from edge.config import HttpConfig  # noqa: E402
from edge.http import create_app  # noqa: E402
from edge.matching import threshold_of_far  # noqa: E402

PATH = "/aiface/face-compare/v1"
KEY = "aigen-test-key-0123456789"
HEADERS = {"x-aigen-key": KEY}
SAMPLE = REPO / "tests" / "fixtures" / "aigen_sample.py"


@pytest.fixture(scope="module")
def engine():
    from edge import Engine

    return Engine()


@pytest.fixture(scope="module")
def photos():
    data = pytest.importorskip("skimage.data", reason="scikit-image (test extra) ships the photos")
    astronaut = np.ascontiguousarray(data.astronaut()[..., :3])
    cameraman = np.ascontiguousarray(np.repeat(data.camera()[..., None], 3, axis=2))  # another person
    coffee = np.ascontiguousarray(data.coffee()[..., :3])  # a real photo of a cup: no face
    return {
        "astronaut": encode(astronaut),
        "mirrored": encode(np.ascontiguousarray(astronaut[:, ::-1]), ".png"),
        "cameraman": encode(cameraman),
        "coffee": encode(coffee),
        "blurred": encode(cv2.GaussianBlur(astronaut, (0, 0), 6)),  # σ 6 px: the face is still found
        "tiny": encode(cv2.resize(astronaut, (32, 32)), ".png"),
    }


@pytest.fixture(scope="module")
def client(engine):
    with TestClient(create_app(engine, HttpConfig(aigen_keys=(KEY,)))) as c:
        yield c


def post(client, body, headers=HEADERS, **kwargs):
    if isinstance(body, dict):
        kwargs["json"] = body
    else:
        kwargs["content"] = body
    return client.post(PATH, headers=headers, **kwargs)


def assert_answer(response, status: int, error: str | None = None) -> dict:
    body = response.json()
    assert response.status_code == status, body
    assert len(body["request_id"]) == 32 and response.headers["x-request-id"] == body["request_id"]
    assert isinstance(body["time_used"], float) and 0 <= body["time_used"] < 60
    if error is None:
        assert "error_message" not in body
        assert set(body) == {"request_id", "confidence", "thresholds", "time_used"}, body
    else:
        assert body["error_message"] == error, body
        assert "confidence" not in body and "thresholds" not in body, body
    return body


def images(a: bytes, b: bytes, **flags) -> dict:
    return {"image1": b64(a), "image2": b64(b), **flags}


# --- the score ----------------------------------------------------------------------------------


def test_thresholds_are_the_calibrated_scores_at_the_vendor_error_rates():
    from edge.http.aigen import thresholds

    expected = {"err_01": 1e-3, "err_001": 1e-4, "err_0001": 1e-5}
    assert thresholds() == {k: round(100 * threshold_of_far(far), 2) for k, far in expected.items()}
    assert thresholds() == {"err_01": 60.0, "err_001": 70.0, "err_0001": 80.0}


def test_same_person_is_confident_and_the_confidence_is_100_s(client, engine, photos):
    body = assert_answer(post(client, images(photos["astronaut"], photos["mirrored"])), 200)
    assert body["thresholds"] == {"err_01": 60.0, "err_001": 70.0, "err_0001": 80.0}
    assert body["confidence"] > body["thresholds"]["err_0001"]
    s = engine.verify(photos["astronaut"], photos["mirrored"])["verification_score"]
    assert body["confidence"] == round(100 * s, 2)


def test_another_person_is_below_err_01(client, engine, photos):
    body = assert_answer(post(client, images(photos["astronaut"], photos["cameraman"])), 200)
    assert body["confidence"] < body["thresholds"]["err_01"]
    s = engine.verify(photos["astronaut"], photos["cameraman"])["verification_score"]
    assert body["confidence"] == round(100 * s, 2) and body["confidence"] == round(body["confidence"], 2)


# --- the vendor's error messages -------------------------------------------------------------------


def test_no_face_is_200_can_not_detect_face_naming_the_photo(client, photos):
    assert_answer(post(client, images(photos["astronaut"], photos["coffee"])), 200, "CAN_NOT_DETECT_FACE: image2")
    assert_answer(post(client, images(photos["coffee"], photos["astronaut"])), 200, "CAN_NOT_DETECT_FACE: image1")


def test_blur_detection_answers_image_blured(client, photos):
    blurred = images(photos["astronaut"], photos["blurred"], blur_detection=True)
    assert_answer(post(client, blurred), 200, "IMAGE_BLURED: image2")
    first = images(photos["blurred"], photos["astronaut"], blur_detection=True)
    assert_answer(post(client, first), 200, "IMAGE_BLURED: image1")
    # without the option the same pair is compared; a sharp pair passes the option
    assert_answer(post(client, images(photos["astronaut"], photos["blurred"])), 200)
    assert_answer(post(client, images(photos["astronaut"], photos["mirrored"], blur_detection=True)), 200)
    # no face with blur_detection: still CAN_NOT_DETECT_FACE
    no_face = images(photos["astronaut"], photos["coffee"], blur_detection=True)
    assert_answer(post(client, no_face), 200, "CAN_NOT_DETECT_FACE: image2")


def test_not_an_image_is_400_unsupported_format(client, photos):
    text = b"hello, this is text " * 20
    response = post(client, images(text, photos["astronaut"]))
    assert "hello" not in response.text  # never quotes what it read
    assert_answer(response, 400, "IMAGE_ERROR_UNSUPPORTED_FORMAT: image1")
    gif = b"GIF89a" + bytes(200)
    assert_answer(post(client, images(photos["astronaut"], gif)), 400, "IMAGE_ERROR_UNSUPPORTED_FORMAT: image2")
    cut = cut_with_eoi(photos["astronaut"], 0.5)  # a JPEG that does not decode (2006)
    assert_answer(post(client, images(photos["astronaut"], cut)), 400, "IMAGE_ERROR_UNSUPPORTED_FORMAT: image2")
    not_base64 = {"image1": "this is not base64!", "image2": b64(photos["astronaut"])}
    assert_answer(post(client, not_base64), 400, "IMAGE_ERROR_UNSUPPORTED_FORMAT: image1")
    not_ascii = {"image1": b64(photos["astronaut"]), "image2": "QUJD\u00e9RA=="}
    assert_answer(post(client, not_ascii), 400, "IMAGE_ERROR_UNSUPPORTED_FORMAT: image2")


def test_image_too_small_is_invalid_image_size(client, photos):
    assert_answer(post(client, images(photos["astronaut"], photos["tiny"])), 400, "INVALID_IMAGE_SIZE: image2")


def test_image_above_the_engine_limit_is_413_before_it_is_decoded(engine, photos):
    small = replace(engine.config, limits=replace(engine.config.limits, max_bytes=len(photos["astronaut"]) - 1))
    limited = engine.bytes_only()
    limited = type(limited).__new__(type(limited))
    limited.__dict__.update(engine.__dict__, config=small, allow_paths=False)
    with TestClient(create_app(limited, HttpConfig(aigen_keys=(KEY,)))) as c:
        body = images(photos["astronaut"], photos["astronaut"])
        assert_answer(post(c, body), 413, "IMAGE_FILE_TOO_LARGE: image1")
        # one byte under the limit passes the length check and reaches the engine
        body["image1"] = b64(photos["astronaut"][:-2])
        assert post(c, body).status_code in (200, 400)


def test_base64_as_clients_send_it(client, photos):
    """Line-broken base64 (base64.encodebytes) and a data URL prefix are the same photo."""
    lines = base64.encodebytes(photos["astronaut"]).decode()
    data_url = "data:image/png;base64," + b64(photos["mirrored"])
    assert_answer(post(client, {"image1": lines, "image2": data_url}), 200)


# --- the request's shape ---------------------------------------------------------------------------


@pytest.mark.parametrize("missing", [{}, {"image2": None}, {"image2": ""}, {"image2": " \n "}])
def test_missing_image_is_missing_arguments(client, photos, missing):
    body = {**images(photos["astronaut"], photos["astronaut"]), **missing}
    if not missing:
        del body["image2"]
    assert_answer(post(client, body), 400, "MISSING_ARGUMENTS: image2")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"image1": 12345}, "image1"),
        ({"image1": ["a", "b"]}, "image1"),
        ({"blur_detection": "true"}, "blur_detection"),
        ({"blur_detection": 1}, "blur_detection"),
        ({"threshold": 80}, "threshold"),  # the v3 API's field: not this one's
        ({"blur_detecton": True}, "blur_detecton"),  # a misspelt option is not silently ignored
    ],
)
def test_wrong_types_and_unknown_fields_are_bad_arguments(client, photos, change, field):
    body = {**images(photos["astronaut"], photos["astronaut"]), **change}
    message = post(client, body).json()["error_message"]
    assert message.startswith(f"BAD_ARGUMENTS: {field} ("), message
    assert_answer(post(client, body), 400, message)


@pytest.mark.parametrize("option", ["verified_document", "image1_is_document", "image2_is_document"])
def test_the_id_card_options_are_refused_when_true(client, photos, option):
    body = images(photos["astronaut"], photos["mirrored"], **{option: True})
    message = post(client, body).json()["error_message"]
    assert message.startswith(f"BAD_ARGUMENTS: {option} (") and "ID-card" in message
    assert_answer(post(client, body), 400, message)
    assert_answer(post(client, {**body, option: False}), 200)  # false is the default: compared as usual


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"\xff\xfe{}",
        b'["image1", "image2"]',
        b"null",
        b'{"image1": {"nested": {"deep": 1}}, "image2": "x"}',
        b"[" * 200_000 + b"]" * 200_000,
        b'{"a": ' * 50_000 + b"1" + b"}" * 50_000,
    ],
)
def test_a_body_that_is_not_a_flat_json_object_is_refused(client, raw):
    response = post(client, raw, headers={**HEADERS, "content-type": "application/json"})
    assert response.json()["error_message"].startswith("BAD_ARGUMENTS: "), response.text
    assert_answer(response, 400, response.json()["error_message"])


# --- keys and the shared gate ------------------------------------------------------------------------


def test_keys(engine, photos):
    body = images(photos["astronaut"], photos["mirrored"])
    with TestClient(create_app(engine, HttpConfig(aigen_keys=(KEY,)))) as c:
        assert_answer(post(c, body, headers={}), 401, "MISSING_API_KEY")
        assert_answer(post(c, body, headers={"x-aigen-key": KEY[:-1] + "x"}), 403, "INVALID_API_KEY")
        assert_answer(post(c, body, headers={"x-aigen-key": ""}), 403, "INVALID_API_KEY")
        assert_answer(post(c, body, headers={"X-AIGEN-KEY": KEY}), 200)  # header names are case-blind
        # the other dialects' keys are not this one's
        with TestClient(create_app(engine, HttpConfig(api_keys=(KEY,), admin_keys=(KEY,)))) as other:
            assert_answer(post(other, body), 403, "INVALID_API_KEY")  # no aigen_keys: every key refused


def test_a_wrong_key_is_refused_before_the_body_is_read(engine):
    """The ASGI app is asked for no body byte when the key is wrong (or missing): 401/403 from the
    headers alone, and the engine queue is untouched."""
    app = create_app(engine, HttpConfig(aigen_keys=(KEY,)))

    def call(headers: list[tuple[bytes, bytes]]) -> int:
        sent, reads = [], []

        async def receive():
            reads.append(1)
            return {"type": "http.request", "body": b"{}", "more_body": False}

        async def send(message):
            sent.append(message)

        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
            "path": PATH, "raw_path": PATH.encode(), "query_string": b"", "root_path": "",
            "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8080),
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"999999"), *headers],
        }  # fmt: skip
        asyncio.run(app(scope, receive, send))
        assert not reads, "the body was read"
        (start,) = [m for m in sent if m["type"] == "http.response.start"]
        return start["status"]

    assert call([]) == 401
    assert call([(b"x-aigen-key", b"wrong-key-0123456789")]) == 403
    assert app.state.api.queue.taken == 0


def test_body_above_the_limit_is_413(engine, photos):
    with TestClient(create_app(engine, HttpConfig(aigen_keys=(KEY,), max_body_bytes=1024))) as c:
        assert_answer(post(c, images(photos["astronaut"], photos["astronaut"])), 413, "REQUEST_ENTITY_TOO_LARGE")


def test_full_queue_is_503_concurrency_limit_exceeded(engine, photos):
    blocking = BlockingEngine(engine)
    body = images(photos["astronaut"], photos["mirrored"])
    with TestClient(create_app(blocking, HttpConfig(aigen_keys=(KEY,), max_queue=0, retry_after_s=2))) as c:
        first = {}
        worker = threading.Thread(target=lambda: first.update(r=post(c, body)))
        worker.start()
        try:
            assert blocking.entered.wait(30)
            busy = post(c, body)
            assert_answer(busy, 503, "CONCURRENCY_LIMIT_EXCEEDED")
            assert busy.headers["retry-after"] == "2"
        finally:
            blocking.release.set()
            worker.join(60)
        assert_answer(first["r"], 200)
        assert_answer(post(c, body), 200)  # the place is given back


class FaultyEngine(BlockingEngine):
    """The real engine, whose `verify` fails as a damaged model file would."""

    def verify(self, *args, **kwargs):
        raise RuntimeError("tensor arena exhausted")


def test_a_fault_of_the_device_is_500_internal_error_in_this_dialect(engine, photos, caplog):
    with TestClient(create_app(FaultyEngine(engine), HttpConfig(aigen_keys=(KEY,)))) as c:
        response = post(c, images(photos["astronaut"], photos["mirrored"]))
    assert_answer(response, 500, "INTERNAL_ERROR")
    assert "tensor arena" not in response.text  # the cause is logged, not told
    assert "tensor arena exhausted" in caplog.text


def test_openapi_describes_the_endpoint(client):
    doc = client.get("/openapi.json").json()
    operation = doc["paths"][PATH]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["image1", "image2"] and "blur_detection" in schema["properties"]
    assert {"200", "400", "401", "403", "411", "413", "500", "503"} <= set(operation["responses"])
    assert doc["components"]["securitySchemes"]["aigenKey"] == {"type": "apiKey", "in": "header", "name": "x-aigen-key"}
    assert operation["security"] == [{"aigenKey": []}]
    answer = doc["components"]["schemas"]["AigenAnswer"]
    assert set(answer["properties"]) == {"request_id", "confidence", "thresholds", "time_used", "error_message"}


# --- `edge serve` over a socket, and the vendor's own sample -------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    config = f'[vault]\npath = ""\n[http]\nmax_body_bytes = 4000000\naigen_keys = ["{KEY}"]\n'
    with edge_serve(tmp_path_factory.mktemp("serve"), config) as port:
        yield port


def run_sample(folder: Path, port: int, image1: bytes, image2: bytes) -> dict:
    """The vendor's sample as an integrator runs it: its URL pointed at the device, the device's key,
    two photo files beside it; its output (`print(response.text)`) is the answer."""
    folder.mkdir()
    source = SAMPLE.read_text()
    assert source.count("http://127.0.0.1:8080/") == 1 and source.count('"YOUR_AIGEN_KEY"') == 1
    source = source.replace("127.0.0.1:8080", f"127.0.0.1:{port}").replace("YOUR_AIGEN_KEY", KEY)
    (folder / "sample.py").write_text(source)
    (folder / "image1.jpg").write_bytes(image1)
    (folder / "image2.jpg").write_bytes(image2)
    done = subprocess.run(
        [sys.executable, "sample.py"], cwd=folder, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


@pytest.mark.slow
def test_the_vendor_sample_works_against_the_device(served, photos, tmp_path):
    pytest.importorskip("requests", reason="the vendor's sample uses requests (test extra)")
    same = run_sample(tmp_path / "same", served, photos["astronaut"], photos["mirrored"])
    assert same["confidence"] >= same["thresholds"]["err_0001"], same
    assert same["thresholds"] == {"err_01": 60.0, "err_001": 70.0, "err_0001": 80.0}
    assert "error_message" not in same and isinstance(same["time_used"], float) and len(same["request_id"]) == 32
    other = run_sample(tmp_path / "other", served, photos["astronaut"], photos["cameraman"])
    assert other["confidence"] < other["thresholds"]["err_01"], other
    no_face = run_sample(tmp_path / "no_face", served, photos["astronaut"], photos["coffee"])
    assert no_face["error_message"] == "CAN_NOT_DETECT_FACE: image2" and "confidence" not in no_face


@pytest.mark.slow
def test_the_gate_over_a_socket(served, photos):
    import httpx

    url = f"http://127.0.0.1:{served}{PATH}"
    # requests.post(json=…) with the header spelt as on the vendor's key page
    requests = pytest.importorskip("requests")
    reply = requests.post(url, json=images(photos["astronaut"], photos["mirrored"]), headers={"X-AIGEN-KEY": KEY})
    assert reply.status_code == 200 and reply.json()["confidence"] >= 80
    assert_answer(
        httpx.post(url, json=images(photos["astronaut"], photos["mirrored"]), timeout=30), 401, "MISSING_API_KEY"
    )

    started = time.monotonic()  # 413 from the header alone: the promised gigabyte is never sent
    reply = raw_request(
        served,
        f"POST {PATH} HTTP/1.1\r\nHost: x\r\nx-aigen-key: {KEY}\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000000000\r\n\r\n",
        until=b'"time_used"',
    )
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert b'"error_message":"REQUEST_ENTITY_TOO_LARGE"' in reply and time.monotonic() - started < 5
    reply = raw_request(  # 411: chunked, no Content-Length
        served,
        f"POST {PATH} HTTP/1.1\r\nHost: x\r\nx-aigen-key: {KEY}\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n",
        b"2\r\n{}\r\n0\r\n\r\n",
        until=b'"time_used"',
    )
    assert reply.startswith(b"HTTP/1.1 411"), reply[:200]
    assert b'"error_message":"LENGTH_REQUIRED"' in reply and b'"request_id"' in reply


def test_the_sample_file_is_the_vendor_shape():
    """The fixture stays what an integrator would copy: requests + json, a JSON string body with
    image1/image2, the x-aigen-key header, response.text printed."""
    source = SAMPLE.read_text()
    for needle in ("import requests", "import json", "json.dumps(", '"x-aigen-key"', "print(response.text)"):
        assert needle in source


@pytest.mark.parametrize("key", ["short", "sixteen chars ok", "tab\tin-the-key-0123"])
def test_weak_aigen_keys_are_refused_by_the_config(key):
    from edge.config import ConfigError, config_from_dict

    with pytest.raises(ConfigError) as err:
        config_from_dict({"http": {"aigen_keys": [KEY, key]}})
    assert err.value.key == "http.aigen_keys[1]"
    assert config_from_dict({"http": {"aigen_keys": [KEY]}}).http.aigen_keys == (KEY,)
