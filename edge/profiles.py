"""Engine profiles: which embedders run, and the settings that go with them. Data only, so
configuration validation can name the choices without loading a model."""

from __future__ import annotations

from typing import Any, Literal

Profile = Literal["accurate", "fast", "fr_feature", "sface"]
# The embedders of each profile, chosen by measurement on lfw-dev (docs/accuracy.md):
# "accurate" (the default) fuses MobileFaceNet with SFace, cascaded so that SFace runs only
# when MobileFaceNet leaves the decision open; "fast" is MobileFaceNet alone; "fr_feature"
# (MobileFaceNet + fr_feature) was the default until 2026.11.30 and is kept for installations
# whose templates were made with it. "sface" is another name for "accurate".
PROFILES: dict[str, tuple[str, ...]] = {
    "accurate": ("mobilefacenet", "sface"),
    "fast": ("mobilefacenet",),
    "fr_feature": ("mobilefacenet", "fr_feature"),
    "sface": ("mobilefacenet", "sface"),
}
PROFILE_NAMES: tuple[str, ...] = tuple(PROFILES)
# Profile settings beyond the embedders. The 1:N cascade margin was chosen with
# `scripts/eval/identification.py --cascade`: at 0.3 FNIR and FPIR at 0.7 equal the full
# fusion's on lfw-dev, while most strangers' faces skip SFace.
PROFILE_OPTIONS: dict[str, dict[str, Any]] = {"accurate": {"cascade_margin": 0.3}, "sface": {"cascade_margin": 0.3}}
