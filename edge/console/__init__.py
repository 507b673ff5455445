"""The local web console (docs/console.md): live view, enrolment, people, verdicts, status and a
door display, served from the device beside the HTTP API; no build step, nothing from the internet.

    from edge.console import ConsoleContext, console_routes
    routes = console_routes(ConsoleContext(appliance, config, enrol=..., revoke=..., people=...))
"""

from edge.console.app import ConsoleContext, console_app, console_routes

__all__ = ["ConsoleContext", "console_app", "console_routes"]
