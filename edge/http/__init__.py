"""The HTTP API (docs/http.md): a transport at the edge, handed its engine by the composition root.

Needs the `http` extra (`pip install 'edge-face-verify[http]'`): Starlette, uvicorn and
python-multipart. Importing `edge.http` alone imports none of them.
"""

from __future__ import annotations

from typing import Any


def create_app(engine: Any, config: Any, **options: Any) -> Any:
    """The Starlette app answering the API with `engine` (made bytes-only) under `config` (`HttpConfig`).

    Options: `unseal_key` (the device key for sealed images); `enrolments`
    (edge.http.admin.Enrolments): the vault and gallery the /v1/ endpoints use
    (None: /v1/ has no enrolments to work on). `runner(fn)`: where engine jobs run (None: the
    HTTP worker thread; `edge run` passes the camera loop's `call_in_loop`); `extra_routes`
    served beside the API (the console's) and `on_close` callables run when the server stops."""
    from edge.http.api import create_app as _create_app

    return _create_app(engine, config, **options)


__all__ = ["create_app"]
