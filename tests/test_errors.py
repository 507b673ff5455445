from __future__ import annotations

import pytest

from edge import errors
from edge.errors import EdgeError


def test_codes_are_the_apis():
    assert (errors.SUCCESS, errors.INVALID_ARGUMENT) == (1000, 1200)
    assert (errors.INVALID_IMAGE_SIZE, errors.INVALID_CONTENT_LENGTH) == (2003, 2004)
    assert (errors.INVALID_IMAGE_TYPE, errors.CORRUPTED_IMAGE) == (2005, 2006)
    assert (errors.NO_FACE_DETECTED, errors.FACE_OCCLUDED) == (4000, 4004)


@pytest.mark.parametrize(
    "code,status",
    [
        (1000, 200),
        (1200, 400),
        (2003, 400),
        (2004, 413),
        (2005, 400),
        (2006, 400),
        (4000, 400),
        (4004, 400),
        (9999, 500),
    ],
)
def test_http_status(code, status):
    assert errors.http_status(code) == status


def test_edge_error_carries_code_message_and_status():
    err = EdgeError(errors.INVALID_CONTENT_LENGTH, "image is 12 MB; the limit is 5 MB")
    assert err.code == 2004 and err.http_status == 413
    assert "2004" in str(err) and "12 MB" in str(err)
    assert err.to_dict() == {"code": 2004, "message": "image is 12 MB; the limit is 5 MB"}
    assert EdgeError(errors.NO_FACE_DETECTED).message == "no face detected"
    assert isinstance(err, Exception)
    with pytest.raises(ValueError):
        EdgeError(errors.SUCCESS)
