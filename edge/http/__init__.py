"""The HTTP API (docs/http.md): a transport at the edge, handed its engine by the composition root.

Needs the `http` extra (`pip install 'edge-face-verify[http]'`): Starlette, uvicorn and
python-multipart. Importing `edge.http` alone imports none of them.
"""

from __future__ import annotations

from typing import Any


def create_app(engine: Any, config: Any, *, unseal_key: Any = None, enrolments: Any = None, runner: Any = None) -> Any:
    """The Starlette app answering the API with `engine` (made bytes-only) under `config` (`HttpConfig`).

    `enrolments` (edge.http.admin.Enrolments): the vault and gallery the /v1/ endpoints use
    (None: /v1/ has no enrolments to work on). `runner(fn)`: where engine jobs run (None: the
    HTTP worker thread; `edge run` passes the camera loop's `call_in_loop`)."""
    from edge.http.api import create_app as _create_app

    return _create_app(engine, config, unseal_key=unseal_key, enrolments=enrolments, runner=runner)


__all__ = ["create_app"]
