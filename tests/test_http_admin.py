"""/v1/ (edge.http.admin, docs/http.md): enrolment and identification over HTTP with the real
engine, a real vault (PyNaCl) and real photos; the admin key kept apart from the compare keys."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from http_helpers import encode  # noqa: E402

pytest.importorskip("starlette", reason="the http extra (starlette, uvicorn, python-multipart)")
pytest.importorskip("httpx", reason="Starlette's TestClient needs httpx (test extra)")

from starlette.testclient import TestClient  # noqa: E402

from edge.app import http_app_from_config  # noqa: E402
from edge.config import config_from_dict  # noqa: E402
from edge.errors import INVALID_ARGUMENT, NO_FACE_DETECTED, SUCCESS  # noqa: E402
from edge.matching import DEFAULT_THRESHOLD  # noqa: E402

ADMIN, COMPARE_KEY = "admin-7f3a-0c51-4e2b", "compare-91bc-77d0-aa13"
VERIFY = "/identity/image_verification/stateless"
ASTRONAUT = "Eileen Collins"


@pytest.fixture(scope="module")
def engine():
    from edge import Engine

    return Engine()


@pytest.fixture(scope="module")
def photos(_skimage_photos):
    astronaut = _skimage_photos["astronaut"]
    skdata = pytest.importorskip("skimage.data")
    return {
        "astronaut": encode(astronaut),
        "mirrored": encode(np.ascontiguousarray(astronaut[:, ::-1]), ".png"),
        "smaller": encode(cv2.resize(astronaut, (440, 440), interpolation=cv2.INTER_AREA)),
        "cropped": encode(np.ascontiguousarray(cv2.resize(astronaut[10:400, 60:450], (300, 300)))),  # not enrolled
        "coffee": encode(np.ascontiguousarray(skdata.coffee()[..., :3])),  # a real photo with no face
    }


def make_client(engine, tmp_path, **http):
    from edge.vault import Vault

    Vault.init(tmp_path / "vault")
    settings = {"admin_keys": [ADMIN], "api_keys": [COMPARE_KEY], **http}
    config = config_from_dict({"vault": {"path": str(tmp_path / "vault")}, "http": settings})
    return TestClient(http_app_from_config(config, engine))


@pytest.fixture
def client(engine, tmp_path):
    with make_client(engine, tmp_path) as c:
        yield c


def admin(key: str = ADMIN) -> dict:
    return {"X-API-Key": key}


def files(*photos: bytes) -> list:
    return [("file", (f"p{i}.jpg", data, "image/jpeg")) for i, data in enumerate(photos)]


def assert_answer(response, status: int, code: int) -> dict:
    body = response.json()
    assert response.status_code == status, body
    assert body["code"] == code, body
    assert len(body["request_id"]) == 32 and response.headers["x-request-id"] == body["request_id"]
    return body


def enrol(client, name: str, *photos: bytes, **data):
    return client.post(f"/v1/people/{name}/photos", files=files(*photos), data=data, headers=admin())


def identify(client, photo: bytes, **data):
    return client.post("/v1/identify", files=files(photo), data=data, headers=admin())


# --- the round trip ----------------------------------------------------------------------------


def test_enrol_list_identify_revoke_round_trip(client, photos, tmp_path):
    assert assert_answer(client.get("/v1/people", headers=admin()), 200, SUCCESS)["people"] == []
    body = assert_answer(enrol(client, ASTRONAUT, photos["astronaut"], photos["smaller"]), 201, SUCCESS)
    assert body["name"] == ASTRONAUT and body["photos"] == 2 and body["enrolled"].endswith("Z")
    # written to the vault, encrypted: the photo's bytes are nowhere in it as they were sent
    stored = [p.read_bytes() for p in (tmp_path / "vault").rglob("*") if p.is_file()]
    assert stored and not any(photos["astronaut"][100:200] in data for data in stored)

    (person,) = assert_answer(client.get("/v1/people", headers=admin()), 200, SUCCESS)["people"]
    assert person["name"] == ASTRONAUT and person["photos"] == 2 and person["templates"] == 2
    status = assert_answer(client.get("/v1/vault", headers=admin()), 200, SUCCESS)
    assert status["people"] == 1 and status["templates"] == 2 and status["gallery_people"] == 1
    assert len(status["model_version"]) == 16 and status["public_key"]

    # the gallery identify uses saw the enrolment at once: a photo never enrolled
    found = assert_answer(identify(client, photos["cropped"]), 200, SUCCESS)
    assert found["name"] == found["candidate"] == ASTRONAUT
    assert found["score"] >= DEFAULT_THRESHOLD and found["verification_score"] >= DEFAULT_THRESHOLD
    assert {"margin", "fpir", "far"} <= set(found)
    gone = assert_answer(client.delete(f"/v1/people/{ASTRONAUT}", headers=admin()), 200, SUCCESS)
    assert gone["name"] == ASTRONAUT and gone["photos"] == 2
    assert assert_answer(client.get("/v1/people", headers=admin()), 200, SUCCESS)["people"] == []
    after = assert_answer(identify(client, photos["mirrored"]), 400, INVALID_ARGUMENT)
    assert "nobody is enrolled" in after["message"] and ASTRONAUT not in str(after)
    missing = assert_answer(client.delete(f"/v1/people/{ASTRONAUT}", headers=admin()), 404, INVALID_ARGUMENT)
    assert "no one named" in missing["message"]


def test_identify_after_revoke_names_nobody_revoked(engine, tmp_path, shared_dir):
    """Two people enrolled from lfw-dev; after one is revoked their new photo is not given their name."""
    lfw = shared_dir / "lfw-dev" / "images"

    def photo(name: str, i: int) -> bytes:
        return (lfw / name / f"{name}_{i:04d}.jpg").read_bytes()

    with make_client(engine, tmp_path) as client:
        assert_answer(enrol(client, "Tony Blair", photo("Tony_Blair", 2), photo("Tony_Blair", 7)), 201, SUCCESS)
        assert_answer(enrol(client, "Colin Powell", photo("Colin_Powell", 1), photo("Colin_Powell", 2)), 201, SUCCESS)
        visit = photo("Tony_Blair", 3)
        assert assert_answer(identify(client, visit), 200, SUCCESS)["name"] == "Tony Blair"
        assert_answer(client.delete("/v1/people/Tony Blair", headers=admin()), 200, SUCCESS)
        after = assert_answer(identify(client, visit), 200, SUCCESS)
        assert after["candidate"] == "Colin Powell" and after["name"] is None


def test_the_duplicate_check_of_enrolment_holds_over_http(client, photos):
    assert_answer(enrol(client, ASTRONAUT, photos["astronaut"]), 201, SUCCESS)
    twin = assert_answer(enrol(client, "Someone Else", photos["mirrored"]), 400, INVALID_ARGUMENT)
    assert "already enrolled as" in twin["message"] and ASTRONAUT in twin["message"]
    more = assert_answer(enrol(client, ASTRONAUT, photos["smaller"]), 201, SUCCESS)  # the same name: adds photos
    assert more["photos"] == 1
    assert_answer(enrol(client, "Someone Else", photos["mirrored"], allow_duplicate="true"), 201, SUCCESS)
    listed = {p["name"]: p for p in client.get("/v1/people", headers=admin()).json()["people"]}
    assert listed[ASTRONAUT]["photos"] == 2 and listed[ASTRONAUT]["entries"] == 2 and "Someone Else" in listed


# --- keys ----------------------------------------------------------------------------------------


def test_the_compare_key_does_not_open_v1_and_the_admin_key_does_not_compare(client, photos):
    paths = [
        ("get", "/v1/people", {}),
        ("get", "/v1/vault", {}),
        ("delete", f"/v1/people/{ASTRONAUT}", {}),
        ("post", "/v1/identify", {"files": files(photos["astronaut"])}),
        ("post", f"/v1/people/{ASTRONAUT}/photos", {"files": files(photos["astronaut"])}),
    ]
    for method, path, kwargs in paths:
        assert_answer(getattr(client, method)(path, headers=admin(COMPARE_KEY), **kwargs), 403, INVALID_ARGUMENT)
        assert_answer(getattr(client, method)(path, **kwargs), 401, INVALID_ARGUMENT)
        assert_answer(getattr(client, method)(path, headers=admin(ADMIN + "x"), **kwargs), 403, INVALID_ARGUMENT)
    pair = {"first_image_file": ("a.jpg", photos["astronaut"]), "second_image_file": ("b.jpg", photos["mirrored"])}
    assert_answer(client.post(VERIFY, files=pair, headers=admin(ADMIN)), 403, INVALID_ARGUMENT)
    assert_answer(client.post(VERIFY, files=pair, headers=admin(COMPARE_KEY)), 200, SUCCESS)
    assert client.get("/v1/people", headers=admin()).json()["people"] == []  # nothing was enrolled by the refused


def test_without_admin_keys_v1_refuses_everything(engine, tmp_path, photos):
    with make_client(engine, tmp_path, admin_keys=[]) as client:
        for key in (None, "", COMPARE_KEY, "anything"):
            headers = {} if key is None else admin(key)
            refused = assert_answer(client.get("/v1/people", headers=headers), 403, INVALID_ARGUMENT)
            assert "admin_keys" in refused["message"]
            upload = client.post(f"/v1/people/{ASTRONAUT}/photos", files=files(photos["astronaut"]), headers=headers)
            assert_answer(upload, 403, INVALID_ARGUMENT)
        assert not list((tmp_path / "vault" / "people").glob("*/*"))


def test_refusals_come_before_the_body_and_the_engine(client, photos):
    """No key → 401 even with no Content-Length and an oversize one; 411/413 with the key; a
    body on a GET is refused."""
    url = client.base_url.join(f"/v1/people/{ASTRONAUT}/photos")
    no_length = client.build_request("POST", url, content=iter([b"x"]), headers={"content-type": "multipart/form-data"})
    assert_answer(client.send(no_length), 401, INVALID_ARGUMENT)
    no_length.headers.update(admin())
    assert_answer(client.send(no_length), 411, 2004)
    huge = client.post(
        f"/v1/people/{ASTRONAUT}/photos", content=b"x" * 1024, headers={**admin(), "content-length": str(1 << 30)}
    )
    assert_answer(huge, 413, 2004)
    assert_answer(client.request("GET", "/v1/people", content=b"{}", headers=admin()), 413, 2004)


# --- attacks on the input ------------------------------------------------------------------------


def test_a_photo_without_a_face_or_garbage_enrols_nothing(client, photos, tmp_path):
    no_face = assert_answer(enrol(client, ASTRONAUT, photos["coffee"]), 400, NO_FACE_DETECTED)
    assert "photo 1" in no_face["message"]
    for junk in (b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\0" * 64, photos["astronaut"][:2000]):
        refused = enrol(client, ASTRONAUT, junk)
        assert refused.status_code == 400 and refused.json()["code"] in (2005, 2006, 4000), refused.json()
    one_bad = assert_answer(enrol(client, ASTRONAUT, photos["astronaut"], photos["coffee"]), 400, NO_FACE_DETECTED)
    assert "photo 2" in one_bad["message"]  # one bad photo: nothing of the enrolment is written
    assert client.get("/v1/people", headers=admin()).json()["people"] == []
    assert not list((tmp_path / "vault" / "people").glob("*/*"))


def test_names_with_path_tricks_are_refused(client, photos, tmp_path):
    for name in ("..", ".hidden", "a%00b", "%2e%2e", "-rf", "x" * 65, "a\\b", "bob%0A"):
        response = enrol(client, name, photos["astronaut"])
        assert response.status_code in (400, 404), (name, response.json())
        assert response.json()["code"] == INVALID_ARGUMENT and response.json()["request_id"]
    for path in ("/v1/people/../../etc/photos", "/v1/people/a%2F..%2F..%2Fb/photos", "/v1/people//photos"):
        response = client.post(path, files=files(photos["astronaut"]), headers=admin())
        assert response.status_code in (400, 404) and response.json()["code"] == INVALID_ARGUMENT, path
    assert_answer(client.delete("/v1/people/..", headers=admin()), 404, INVALID_ARGUMENT)  # no route: not a name
    assert_answer(client.delete("/v1/people/.secret", headers=admin()), 400, INVALID_ARGUMENT)
    assert client.get("/v1/people", headers=admin()).json()["people"] == []
    assert not list((tmp_path / "vault" / "people").glob("*/*"))
    assert not list(tmp_path.glob("etc*")) and not (tmp_path / "b").exists()


def test_crafted_forms_are_refused_with_a_clear_error(client, photos):
    as_text = client.post(f"/v1/people/{ASTRONAUT}/photos", data={"file": "/etc/passwd"}, headers=admin())
    assert "must be a file upload" in assert_answer(as_text, 400, INVALID_ARGUMENT)["message"]
    as_path = enrol(client, ASTRONAUT, b"/etc/passwd")  # a path as the file's content: just bad bytes
    assert as_path.status_code == 400 and as_path.json()["code"] in (2005, 2006)
    extra = client.post(
        f"/v1/people/{ASTRONAUT}/photos", files=files(photos["astronaut"]), data={"path": "x"}, headers=admin()
    )
    assert "unexpected field" in assert_answer(extra, 400, INVALID_ARGUMENT)["message"]
    empty = client.post(f"/v1/people/{ASTRONAUT}/photos", data={"allow_duplicate": "true"}, headers=admin())
    assert "missing field file" in assert_answer(empty, 400, INVALID_ARGUMENT)["message"]
    two = client.post("/v1/identify", files=files(photos["astronaut"], photos["mirrored"]), headers=admin())
    assert_answer(two, 400, INVALID_ARGUMENT)
    for bad in ("2", "-1", "nan", "high"):
        assert_answer(identify(client, photos["astronaut"], threshold=bad), 400, INVALID_ARGUMENT)
    assert_answer(identify(client, photos["astronaut"], auto_rotate="maybe"), 400, INVALID_ARGUMENT)
    broken = client.post(
        "/v1/identify",
        content=b'--zz\r\nContent-Disposition: form-data; name="file"\r\n\r\nno end',
        headers={**admin(), "content-type": "multipart/form-data; boundary=zz"},
    )
    assert broken.status_code == 400 and broken.json()["request_id"]
    json_body = client.post("/v1/identify", json={"file": "x"}, headers=admin())
    assert_answer(json_body, 400, INVALID_ARGUMENT)
    assert_answer(client.put("/v1/people", headers=admin()), 405, INVALID_ARGUMENT)
    assert_answer(client.get("/v1/nothing", headers=admin()), 404, INVALID_ARGUMENT)


def test_identify_refuses_a_photo_without_a_face(client, photos):
    assert_answer(enrol(client, ASTRONAUT, photos["astronaut"]), 201, SUCCESS)
    assert_answer(identify(client, photos["coffee"]), 400, NO_FACE_DETECTED)
    assert identify(client, b"garbage").json()["code"] in (2005, 2006)


@pytest.mark.parametrize("vault", ["", "missing"])
def test_without_a_vault_v1_says_so_and_compare_is_still_served(engine, photos, tmp_path, vault):
    """No vault.path, or one that is not there (the default /var/lib/edge/vault on a laptop)."""
    path = str(tmp_path / vault) if vault else ""
    config = config_from_dict({"vault": {"path": path}, "http": {"admin_keys": [ADMIN]}})
    with TestClient(http_app_from_config(config, engine)) as client:
        for response in (client.get("/v1/people", headers=admin()), client.get("/v1/vault", headers=admin())):
            assert "no vault" in assert_answer(response, 400, INVALID_ARGUMENT)["message"]
        assert (
            "no vault" in assert_answer(enrol(client, ASTRONAUT, photos["astronaut"]), 400, INVALID_ARGUMENT)["message"]
        )
        pair = {"first_image_file": ("a.jpg", photos["astronaut"]), "second_image_file": ("b", photos["mirrored"])}
        assert_answer(client.post(VERIFY, files=pair), 200, SUCCESS)


def test_openapi_describes_v1_with_its_own_key(client):
    document = client.get("/openapi.json").json()
    for path in ("/v1/people", "/v1/people/{name}/photos", "/v1/people/{name}", "/v1/identify", "/v1/vault"):
        assert path in document["paths"], path
    assert document["components"]["securitySchemes"]["adminKey"]["name"] == "X-API-Key"
    assert document["paths"]["/v1/identify"]["post"]["security"] == [{"adminKey": []}]
