"""Package list for setuptools; all other metadata is in pyproject.toml.

`edge*` packages (folders with an __init__.py) are discovered automatically, so new
subpackages (edge.vision, ...) ship without editing this file. The top-level `models/`
folder is shipped inside the package as `edge.models` (edge/runtime.py finds the model files
through `edge.models.__path__`); pyproject.toml lists its package data.
"""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["edge", "edge.*"]) + ["edge.models"],
    package_dir={"edge.models": "models"},
)
