"""lfw-dev as the calibration and the evaluations read it: LFW's labelled face, LFW's identities.

LFW labels the face at the centre of each 250×250 photo; some photos show a bigger second
person, whose face is not the labelled one. And LFW files a few people under two names (or the
same photo in two folders). Calibration impostors and identification strangers must be
different people, so both are read here the same way: the centre face, and `SAME_PERSON`
merged. (`edge evaluate` keeps the largest face: it measures what `verify` does.)
"""

from __future__ import annotations

import csv
from pathlib import Path

# One person under two names in lfw-dev (checked by eye: the same face, often the same photo).
SAME_PERSON = {
    "Cristina_Kirchner": "Cristina_Fernandez",
    "Hasan_Wirayuda": "Hassan_Wirajuda",
    "Gabrielle_Rose": "Martha_Bowen",  # the same photo in both folders
    "Chyung_Dai-chul": "Dai_Chul_Chyung",
    "Yingfan_Wang": "Wang_Yingfan",
}


# Photos whose labelled (centre) face is somebody else.
MISLABELLED = {"images/Carlos_Ruckauf/Carlos_Ruckauf_0001.jpg": "Eduardo_Duhalde"}


def identities(lfw: Path) -> dict[str, str]:
    """Every photo's identity (relative path → name), with `SAME_PERSON` and `MISLABELLED` applied."""
    with open(lfw / "labels.csv") as fh:
        return {
            r["image"]: MISLABELLED.get(r["image"], SAME_PERSON.get(r["identity"], r["identity"]))
            for r in csv.DictReader(fh)
        }


def pairs_photos(lfw: Path) -> set[str]:
    with open(lfw / "pairs.csv") as fh:
        return {r[k] for r in csv.DictReader(fh) for k in ("img_a", "img_b")}


def centre_face(faces, width: int, height: int):
    """The face whose box centre is nearest the image centre (LFW's labelled face); None if no face."""
    if not faces:
        return None
    cx, cy = width / 2, height / 2
    return min(faces, key=lambda f: (f.rect[0] + f.rect[2] / 2 - cx) ** 2 + (f.rect[1] + f.rect[3] / 2 - cy) ** 2)


def labelled_face(engine, path: Path):
    """The labelled face of one LFW photo (every face is found, the centre one kept), or None."""
    image = engine.load(str(path))
    return centre_face(engine.faces(image, quality=False), image.rgb.shape[1], image.rgb.shape[0])
