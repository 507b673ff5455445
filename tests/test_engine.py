"""The compare engine end to end, on real photos, with the shipped models and calibration."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import zlib

import cv2
import numpy as np
import pytest

from edge.engine import Engine, EngineConfig
from edge.matching import far_of_threshold


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine()


def _png(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return buf.tobytes()


def _jpeg(rgb: np.ndarray, quality: int = 92) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def _png_bomb(side: int = 30000) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    ihdr = side.to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    idat = zlib.compress(b"\0" * 4096, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _other_view(rgb: np.ndarray) -> np.ndarray:
    """The same person, another picture: rescaled, shifted, a little brighter, re-encoded."""
    h, w = rgb.shape[:2]
    moved = cv2.warpAffine(rgb, np.float32([[0.8, 0, 40], [0, 0.8, 30]]), (w, h), borderMode=cv2.BORDER_REFLECT)
    moved = cv2.convertScaleAbs(moved, alpha=1.1, beta=8)
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(_jpeg(moved, 80), np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def test_faces_returns_rect_landmarks_score_quality_embedding(engine, astronaut_rgb):
    faces = engine.faces(astronaut_rgb)
    assert len(faces) == 1
    f = faces[0]
    x, y, w, h = f.rect
    assert 150 <= x <= 200 and 50 <= y <= 100 and 80 <= w <= 130 and 80 <= h <= 130
    assert f.landmarks.shape == (5, 2)
    left_eye, right_eye, nose, mouth_left, mouth_right = f.landmarks
    assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])
    assert x <= nose[0] <= x + w and y <= nose[1] <= y + h
    assert 0.5 < f.score <= 1.0
    assert f.embedding.dtype == np.float32 and f.embedding.shape == (engine.dim,)
    assert abs(float(np.linalg.norm(f.embedding)) - 1.0) < 1e-4


def test_faces_accepts_bytes_path_and_base64(engine, astronaut_rgb, tmp_path):
    data = _png(astronaut_rgb)
    path = tmp_path / "a.png"
    path.write_bytes(data)
    ref = engine.faces(astronaut_rgb)[0].embedding
    for source in (data, path, str(path), base64.b64encode(data).decode()):
        got = engine.faces(source)[0].embedding
        assert float(ref @ got) > 0.999


def test_similarity_is_calibrated_and_vectorised(engine, astronaut_rgb, camera_rgb):
    a = engine.faces(astronaut_rgb)[0].embedding
    b = engine.faces(_other_view(astronaut_rgb))[0].embedding
    s = engine.similarity(a, b)
    assert isinstance(s, float) and 0.7 < s <= 1.0
    rows = np.stack([a, a, b])
    out = engine.similarity(rows, np.stack([b, a, b]))
    assert out.shape == (3,) and np.all((out >= 0) & (out <= 1))
    assert out[1] == pytest.approx(engine.similarity(a, a))
    # The map is monotone in raw similarity and the threshold table holds on its knots.
    raw = np.linspace(-1, 1, 201)
    scores = engine.score(raw)
    assert np.all(np.diff(scores) >= 0) and scores[0] == 0.0 and scores[-1] <= 1.0
    assert far_of_threshold(0.7) == pytest.approx(1e-4)


def test_similarity_refuses_wrong_shapes(engine):
    from edge.errors import EdgeError

    with pytest.raises(EdgeError) as err:
        engine.similarity(np.zeros(3, np.float32), np.zeros(3, np.float32))
    assert err.value.code == 1200


def test_verify_same_person_and_strangers(engine, astronaut_rgb, camera_rgb):
    same = engine.verify(astronaut_rgb, _other_view(astronaut_rgb))
    assert same["code"] == 1000 and same["verification_score"] >= 0.7, same
    assert same["request_id"] and same["face_count"] == {"first": 1, "second": 1}
    if engine.faces(camera_rgb):
        other = engine.verify(astronaut_rgb, camera_rgb)
        assert other["code"] == 1000 and other["verification_score"] < 0.5, other
    assert same["request_id"] != engine.verify(astronaut_rgb, astronaut_rgb)["request_id"]


def test_verify_uses_the_largest_face_and_counts_them(engine, astronaut_rgb, camera_rgb):
    # Two prominent faces side by side: the astronaut, and a smaller stranger (the cameraman).
    head = astronaut_rgb[0:300, 100:350]
    stranger = cv2.resize(camera_rgb[40:240, 160:360], (180, 180), interpolation=cv2.INTER_AREA)
    canvas = np.full((300, 470, 3), 90, np.uint8)
    canvas[:, :250] = head
    canvas[60:240, 270:450] = stranger
    assert len(engine.faces(canvas)) == 2
    result = engine.verify(canvas, astronaut_rgb)
    assert result["code"] == 1000 and result["face_count"]["first"] == 2, result
    assert result["verification_score"] > 0.9  # the largest face, the astronaut, was used


def _motion_blur(rgb: np.ndarray, length: int = 11) -> np.ndarray:
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1 / length  # horizontal
    return cv2.filter2D(rgb, -1, kernel)


def test_two_photos_blurred_alike_pay_the_degradation_penalty_and_one_sharp_photo_pays_none(
    engine, astronaut_rgb, camera_rgb
):
    """Two photos smeared the same way look alike whoever is in them: verify and compare_faces
    take the calibration's penalty off the score; with one side sharp there is none."""
    blurred = [_motion_blur(rgb) for rgb in (astronaut_rgb, camera_rgb)]
    faces = [engine.faces(rgb)[0] for rgb in (*blurred, astronaut_rgb)]
    penalty = engine.pair_penalty(faces[:1], faces[1:])
    assert penalty.shape == (1, 2) and penalty[0, 0] > 0.02, penalty
    assert engine.pair_penalty(faces[2:], faces[:2]).tolist() == [[0.0, 0.0]]
    plain = float(engine.similarity(faces[0].embedding, faces[1].embedding))  # the full fusion
    matrix = engine.compare_faces(*blurred)["scores"]
    assert matrix[0][0] == pytest.approx(max(0.0, plain - penalty[0, 0]), abs=1e-4)
    first = [
        engine._faces(rgb, auto_rotate=False, max_faces=1, quality=False, first_only=True)[0][0] for rgb in blurred
    ]
    cascaded = engine._cascade_score(*first)  # what verify scores before the penalty
    verdict = engine.verify(*blurred)
    expected = max(0.0, cascaded - engine.pair_penalty(first[:1], first[1:])[0, 0])
    assert (
        verdict["verification_score"] == pytest.approx(expected, abs=1e-4) and verdict["verification_score"] < cascaded
    )
    sharp = engine.verify(astronaut_rgb, blurred[0])
    assert sharp["verification_score"] >= 0.9  # the same person, one side sharp: no penalty in the way


def test_compare_faces_matrix_and_rects(engine, astronaut_rgb, camera_rgb):
    canvas = np.full((600, 1100, 3), 90, np.uint8)
    canvas[40:552, 20:532] = astronaut_rgb
    canvas[40:552, 570:1082] = _other_view(astronaut_rgb)
    result = engine.compare_faces(canvas, astronaut_rgb)
    assert result["code"] == 1000 and result["request_id"]
    first, second = result["face_rects"]["first"], result["face_rects"]["second"]
    assert len(first) == 2 and len(second) == 1
    assert np.array(result["scores"]).shape == (2, 1)
    assert all(row[0] >= 0.7 for row in result["scores"])
    for x, y, w, h in first:
        assert 0 <= x and 0 <= y and x + w <= 1100 and y + h <= 600
    # Row i belongs to rect i: the face on the left half is in the left rect.
    assert {r[0] < 550 for r in first} == {True, False}


def test_no_face_is_4000(engine):
    skimage_data = pytest.importorskip("skimage.data")
    result = engine.verify(skimage_data.coffee(), skimage_data.astronaut())
    assert result["code"] == 4000 and "first" in result["message"] and result["request_id"]
    result = engine.compare_faces(skimage_data.astronaut(), skimage_data.coffee())
    assert result["code"] == 4000 and "second" in result["message"]


@pytest.mark.parametrize(
    "make, code",
    [
        (lambda a: b"", 2004),
        (lambda a: _jpeg(a)[: len(_jpeg(a)) // 2], 2006),
        (lambda a: b"this is a text file, not a photo\n" * 20, 2005),
        (
            lambda a: (
                b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x00\x00\x00\x00\x00,"
                b"\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
            ),
            2005,
        ),
        (lambda a: _png(np.zeros((1, 1, 3), np.uint8)), 2003),
        (lambda a: _png_bomb(), 2003),
        (lambda a: _jpeg(a) + b"\0" * (6 * 1024 * 1024), 2004),
        (lambda a: "not base64 at all!!", 1200),
    ],
    ids=["empty", "truncated-jpeg", "text", "gif", "1x1-png", "png-bomb", "6MB", "bad-base64"],
)
def test_bad_input_gets_its_code(engine, astronaut_rgb, make, code):
    for result in (
        engine.verify(make(astronaut_rgb), astronaut_rgb),
        engine.compare_faces(astronaut_rgb, make(astronaut_rgb)),
    ):
        assert result["code"] == code, result
        assert result["message"] and result["request_id"]


@pytest.mark.parametrize("turn", [cv2.ROTATE_90_CLOCKWISE, cv2.ROTATE_180, cv2.ROTATE_90_COUNTERCLOCKWISE])
def test_auto_rotate_finds_turned_faces(engine, astronaut_rgb, turn):
    turned = cv2.rotate(astronaut_rgb, turn)
    upright = engine.faces(astronaut_rgb)[0]
    face = engine.faces(turned, auto_rotate=True)[0]
    assert face.rotation in (90, 180, 270)
    assert float(face.embedding @ upright.embedding) > 0.8
    # The rect is in the turned photo's own pixels: it must cover the turned face's nose.
    nose = np.zeros((upright.landmarks.shape[0], 1, 2), np.float32)
    h, w = astronaut_rgb.shape[:2]
    x, y = upright.landmarks[2]
    nx, ny = {
        cv2.ROTATE_90_CLOCKWISE: (h - 1 - y, x),
        cv2.ROTATE_180: (w - 1 - x, h - 1 - y),
        cv2.ROTATE_90_COUNTERCLOCKWISE: (y, w - 1 - x),
    }[turn]
    rx, ry, rw, rh = face.rect
    assert rx <= nx <= rx + rw and ry <= ny <= ry + rh, (face.rect, (nx, ny))
    del nose
    result = engine.verify(turned, astronaut_rgb, auto_rotate=True)
    assert result["code"] == 1000 and result["verification_score"] >= 0.7


def test_fast_profile_is_calibrated_too(astronaut_rgb):
    fast = Engine(EngineConfig.profile("fast"))
    assert fast.config.embedders == ("mobilefacenet",)
    assert fast.verify(astronaut_rgb, _other_view(astronaut_rgb))["verification_score"] >= 0.7


def test_the_default_is_the_accurate_profile_mobilefacenet_and_sface_cascaded():
    """Chosen by measurement (docs/accuracy.md); the previous default stays available by name."""
    assert EngineConfig() == EngineConfig.profile("accurate") == EngineConfig.profile("sface")
    assert EngineConfig().embedders == ("mobilefacenet", "sface") and EngineConfig().cascade_margin == 0.3
    before = EngineConfig.profile("fr_feature")
    assert before.embedders == ("mobilefacenet", "fr_feature") and before.cascade_margin is None
    assert before.model_version() != EngineConfig().model_version()  # its templates are not reused silently
    assert EngineConfig.profile("fast").embedders == ("mobilefacenet",)


def test_every_profile_is_calibrated_and_the_configuration_names_them():
    from edge.config import ConfigError, config_from_dict
    from edge.profiles import PROFILE_NAMES

    for name in PROFILE_NAMES:
        Engine(EngineConfig.profile(name))  # refuses to load without a calibration for its recipe
        assert config_from_dict({"engine": {"profile": name}}).engine.profile == name
    with pytest.raises(ConfigError, match=r"engine\.profile"):
        config_from_dict({"engine": {"profile": "best"}})


def test_uncalibrated_configuration_is_refused():
    from edge.runtime import ModelError

    with pytest.raises(ModelError, match="calibrat"):
        Engine(EngineConfig.profile("accurate", flip=True, embedders=("fr_feature",)))


def test_sface_in_an_embedders_override_runs_end_to_end(engine, astronaut_rgb, camera_rgb):
    """SFace is not in a shipped profile (nor calibrated) but can be tried: any embedder set is an
    override of a profile, and an uncalibrated engine still finds, aligns and embeds faces."""
    from edge.vision.embedder import Embedder

    config = EngineConfig.profile("accurate", embedders=("mobilefacenet", "fr_feature", "sface"))
    assert config.embedders == ("mobilefacenet", "fr_feature", "sface") and config.flip is False
    trial = Engine(config, require_calibration=False)
    assert trial.calibration is None and trial.dim == 192 + 512 + 128
    assert trial.model_version != engine.model_version  # templates of the two never match
    (face,) = trial.faces(astronaut_rgb)
    assert face.embedding.shape == (trial.dim,) and abs(float(np.linalg.norm(face.embedding)) - 1.0) < 1e-4
    # The fused vector is the engine's: the unit SFace embedding of the same crop, scaled by 1/sqrt(3).
    crop = trial.align_face(astronaut_rgb, face.detection, quality=False).crop
    sface = Embedder.open("sface").infer(crop)[0]
    np.testing.assert_allclose(face.embedding[-128:] * np.sqrt(3), sface, atol=1e-5)
    # Raw similarity (no calibration): the same person in another view is far closer than a stranger.
    other = trial.faces(_other_view(astronaut_rgb), max_faces=1)[0].embedding
    stranger = trial.faces(camera_rgb, max_faces=1)
    assert float(face.embedding @ other) > 0.6
    if stranger:
        assert float(face.embedding @ stranger[0].embedding) < float(face.embedding @ other) - 0.3
    # Scores need a calibration: an uncalibrated engine says so instead of inventing one.
    from edge.runtime import ModelError

    with pytest.raises(ModelError, match="calibration"):
        trial.similarity(face.embedding, other)


def _edge(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge.cli", *args], capture_output=True, text=True, timeout=120)


def test_cli_compare_prints_one_json_line(tmp_path, astronaut_rgb):
    a, b, empty = tmp_path / "a.png", tmp_path / "b.jpg", tmp_path / "empty.jpg"
    a.write_bytes(_png(astronaut_rgb))
    b.write_bytes(_jpeg(_other_view(astronaut_rgb)))
    empty.write_bytes(b"")
    ok = _edge("compare", str(a), str(b))
    assert ok.returncode == 0, ok.stderr
    lines = ok.stdout.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["code"] == 1000 and result["verification_score"] >= 0.7 and result["request_id"]
    bad = _edge("compare", str(a), str(empty))
    assert bad.returncode != 0 and json.loads(bad.stdout)["code"] == 2004
    faces = _edge("compare-faces", str(a), str(b), "--auto-rotate")
    assert faces.returncode == 0 and len(json.loads(faces.stdout)["face_rects"]["first"]) == 1


def test_check_quality_refuses_occluded_and_poor_faces(engine, astronaut_rgb):
    good = engine.verify(astronaut_rgb, np.ascontiguousarray(astronaut_rgb[:, ::-1]), check_quality=True)
    assert good["code"] == 1000, good
    # Dark sunglasses drawn over both eyes: 4004, naming the image.
    face = engine.faces(astronaut_rgb)[0]
    left, right = face.landmarks[0], face.landmarks[1]
    iod = float(np.linalg.norm(right - left))
    barred = astronaut_rgb.copy()
    for eye in (left, right):
        axes = (int(0.42 * iod), int(0.3 * iod))
        cv2.ellipse(barred, (int(eye[0]), int(eye[1] + 0.05 * iod)), axes, 0, 0, 360, (25, 22, 20), -1)
    occluded = engine.verify(astronaut_rgb, barred, check_quality=True)
    assert occluded["code"] == 4004 and "second" in occluded["message"], occluded
    # The same photo is still compared when quality is not checked.
    assert engine.verify(astronaut_rgb, barred)["code"] == 1000
    # Heavy blur: 1200, saying what failed.
    blurred = cv2.GaussianBlur(astronaut_rgb, (0, 0), 4)
    poor = engine.verify(blurred, astronaut_rgb, check_quality=True)
    assert poor["code"] == 1200 and "blur" in poor["message"] and "first" in poor["message"], poor
    assert engine.faces(astronaut_rgb)[0].quality["ok"] is True
    assert engine.faces(astronaut_rgb, quality=False)[0].quality is None


# --- 1:N ---------------------------------------------------------------------------------------


def test_identify_names_an_enrolled_face_from_a_photo_or_an_embedding(engine, astronaut_rgb):
    from edge import Gallery

    enrolled = engine.faces(astronaut_rgb, max_faces=1)[0].embedding
    rng = np.random.default_rng(1)
    others = rng.standard_normal((20, engine.dim)).astype(np.float32)
    others /= np.linalg.norm(others, axis=1, keepdims=True)
    gallery = Gallery.from_embeddings(["Eileen"] + [f"s{i}" for i in range(20)], np.vstack([enrolled, others]))
    by_photo = engine.identify(_other_view(astronaut_rgb), gallery)
    assert by_photo["code"] == 1000 and by_photo["name"] == by_photo["candidate"] == "Eileen"
    by_embedding = engine.identify(engine.faces(_other_view(astronaut_rgb), max_faces=1)[0].embedding, gallery)
    assert by_embedding["name"] == "Eileen" and by_embedding["score"] == by_photo["score"]


def test_identify_refuses_what_could_forge_a_match(engine, astronaut_rgb):
    from edge import Gallery

    enrolled = engine.faces(astronaut_rgb, max_faces=1)[0].embedding
    gallery = Gallery.from_embeddings(["Eileen"], enrolled[None])
    stranger = np.random.default_rng(2).standard_normal(engine.dim).astype(np.float32)
    stranger /= np.linalg.norm(stranger)
    unknown = engine.identify(stranger, gallery)
    assert unknown["name"] is None and unknown["candidate"] == "Eileen" and unknown["score"] < 0.4  # below: no name
    leaning = stranger + 0.2 * enrolled  # pointed a little towards the enrolled face, then scaled up
    assert engine.identify(leaning * 50, gallery)["code"] == 1200  # not normalised into a match
    broken = stranger.copy()
    broken[0] = np.nan
    assert engine.identify(broken, gallery)["code"] == 1200
    assert engine.identify(stranger[:10], gallery)["code"] == 1200
    assert engine.identify(stranger, gallery, threshold=1.5)["code"] == 1200
    assert engine.identify(b"not an image", gallery)["code"] == 2005
    other_model = Gallery.from_embeddings(["x"], np.eye(1, 128, dtype=np.float32))
    assert engine.identify(stranger, other_model)["code"] == 1200
    empty = engine.identify(stranger, Gallery.from_embeddings([], np.zeros((0, engine.dim), np.float32)))
    assert empty["code"] == 1000 and empty["name"] is None and empty["candidate"] is None


# --- the 1:N cascade (profile sface) ----------------------------------------------------------


@pytest.fixture(scope="module")
def sface_engine() -> Engine:
    return Engine(profile="sface")


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def test_the_cascade_settles_strangers_on_the_first_embedder_and_confirms_matches(
    sface_engine, astronaut_rgb, camera_rgb
):
    from edge import Gallery

    e = sface_engine
    assert e.config.cascade_margin == 0.3 and e.first_calibration is not None
    enrolled = e.faces(astronaut_rgb, max_faces=1)[0].embedding
    gallery = Gallery.from_embeddings(["Eileen"], enrolled[None])
    crops = [
        e.align_face(img, e.detect(img)[0], quality=False).crop for img in (_other_view(astronaut_rgb), camera_rgb)
    ]
    matches, completed = e.identify_crops(crops, gallery, threshold=0.7)
    full = e.match(e.embed_many(crops), gallery)
    assert completed == 1  # only the enrolled face needed SFace
    assert matches[0] == full[0] and matches[0].name(0.7) == "Eileen"  # a match is the full fusion's answer
    assert matches[1].name(0.7) is None and matches[1].score < 0.7 - 0.3  # the stranger stopped at stage 1


def test_the_cascade_never_names_anyone_on_the_first_embedder_alone(sface_engine):
    """A face the first embedder finds close but the full fusion does not: the full fusion decides."""
    from edge import Gallery

    e = sface_engine
    rng = np.random.default_rng(4)
    d1, d2 = e.first_dim, e.dim - e.first_dim
    a1, a2 = _unit(rng.standard_normal(d1)), _unit(rng.standard_normal(d2))
    b2 = _unit(-a2 + 0.3 * rng.standard_normal(d2))  # the second embedder: far from A
    template = np.concatenate([a1, a2]) / np.sqrt(2)
    gallery = Gallery.from_embeddings(["A"], template[None])
    probe_first = a1[None]  # the first embedder sees A exactly ...
    probe_full = (np.concatenate([a1, b2]) / np.sqrt(2))[None].astype(np.float32)  # ... the second sees someone else
    asked = []

    def complete(rows):
        asked.append(list(rows))
        return probe_full[rows]

    (m,), completed = e.cascade_match(probe_first, gallery, complete, threshold=0.7)
    assert asked == [[0]] and completed == 1
    assert m == e.match(probe_full, gallery)[0] and m.name(0.7) is None


def test_a_block_search_is_the_search_of_that_embedders_part():
    from edge import Gallery

    rng = np.random.default_rng(5)
    first, second = _unit(rng.standard_normal((30, 16))), _unit(rng.standard_normal((30, 8)))
    fused = np.hstack([first, second]) / np.sqrt(2)
    names = [f"p{i % 10}" for i in range(30)]
    probes = _unit(rng.standard_normal((4, 16)))
    by_block = Gallery.from_embeddings(names, fused).search(probes, (0, 16, float(np.sqrt(2))))
    alone = Gallery.from_embeddings(names, first).search(probes)
    assert by_block.person.tolist() == alone.person.tolist()
    np.testing.assert_allclose(by_block.raw, alone.raw, atol=1e-5)


def test_verify_with_the_cascade_answers_like_the_full_fusion_where_it_matters(sface_engine, astronaut_rgb, camera_rgb):
    e = sface_engine
    full = Engine(EngineConfig.profile("sface", cascade_margin=None))
    same_a, same_b = astronaut_rgb, _other_view(astronaut_rgb)
    cascaded, plain = e.verify(same_a, same_b), full.verify(same_a, same_b)
    assert cascaded["verification_score"] == plain["verification_score"] >= 0.7  # a match: the full fusion's score
    different = e.verify(astronaut_rgb, camera_rgb)
    assert different["code"] == 1000 and different["verification_score"] < 0.4  # settled by MobileFaceNet
    assert full.verify(astronaut_rgb, camera_rgb)["verification_score"] < 0.7  # and the full fusion agrees
    assert e.verify(b"not an image", camera_rgb)["code"] == 2005


def test_far_faces_are_aligned_better_after_a_tight_re_detection(engine, astronaut_rgb):
    """A 40 px face in a noisy 640×480 frame: its final five points (FaceMesh) are nearer the
    truth — the same photo's points at full size, scaled — when the detector located it again on
    a tight crop (on 400 lfw-dev photos at 80 px: mean error 3.9 → 2.6 % of the eye distance)."""
    import cv2

    (big,) = engine.faces(astronaut_rgb, quality=False)
    scale = 40 / 94.0  # her face box is ~94 px wide in the photo
    small = cv2.resize(astronaut_rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    errors = {0.0: [], 100.0: []}
    default = engine.detector.refine_below
    for seed in range(2):
        rng = np.random.default_rng(seed)
        frame = np.clip(rng.normal(110, 6, (480, 640, 3)), 0, 255).astype(np.uint8)
        x0, y0 = 400 - 50 * seed, 200
        frame[y0 : y0 + small.shape[0], x0 : x0 + small.shape[1]] = small
        truth = big.landmarks * scale + np.float32([x0, y0])
        for refine in errors:
            engine.detector.refine_below = refine
            try:
                (face,) = engine.faces(frame, quality=False)
            finally:
                engine.detector.refine_below = default
            errors[refine].append(float(np.linalg.norm(face.landmarks - truth, axis=1).mean()))
    assert np.mean(errors[100.0]) < 0.8 * np.mean(errors[0.0]), errors
