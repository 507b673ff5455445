"""edge: offline face verification for Raspberry Pi and Jetson.

    from edge import Engine, Gallery

    engine = Engine()                                  # loads the models once; reuse it
    engine.verify("a.jpg", "b.jpg")                    # 1:1 → {"code": 1000, "verification_score": …}
    engine.compare_faces("group.jpg", "b.jpg")         # N×M → {"code": 1000, "scores": […], "face_rects": …}
    faces = engine.faces("ada.jpg")                    # every face: rect, landmarks, quality, embedding
    gallery = Gallery.from_embeddings(["Ada"], [faces[0].embedding])
    engine.identify("door.jpg", gallery)               # 1:N → {"code": 1000, "name": "Ada", "score": …}

The names below are loaded on first use, so `import edge.config` (say) loads no model runtime.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name → the module that defines it
_PUBLIC = {
    "Engine": "edge.engine",
    "EngineConfig": "edge.engine",
    "Face": "edge.engine",
    "Gallery": "edge.matching",
    "Match": "edge.matching",
    "DEFAULT_THRESHOLD": "edge.matching",
    "EdgeError": "edge.errors",
    "Config": "edge.config",
    "ConfigError": "edge.config",
    "load_config": "edge.config",
}

__all__ = [
    "DEFAULT_THRESHOLD",
    "Config",
    "ConfigError",
    "EdgeError",
    "Engine",
    "EngineConfig",
    "Face",
    "Gallery",
    "Match",
    "__version__",
    "load_config",
]

if TYPE_CHECKING:
    from edge.config import Config, ConfigError, load_config
    from edge.engine import Engine, EngineConfig, Face
    from edge.errors import EdgeError
    from edge.matching import DEFAULT_THRESHOLD, Gallery, Match


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'edge' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
