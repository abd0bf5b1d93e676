"""The ``serve`` command: the HTTP API and the web UI over one engine."""

from __future__ import annotations

import argparse
import sys
from typing import Any

COMMANDS = ("serve",)


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "serve",
        parents=[common],
        help="run the HTTP API and web UI",
        description="Serve the HTTP API (its OpenAPI document at /openapi.json) and the web UI. "
        "Authentication is on unless FACESEARCH_API__AUTH=false.",
    )
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 8000)")


def run(args: argparse.Namespace, settings: Any) -> int:
    import uvicorn

    from facesearch.api.server import server_config
    from facesearch.app import create_app
    from facesearch.engine import FaceSearch

    host = args.host or settings.api.host
    port = args.port or settings.api.port
    with FaceSearch(settings) as engine:
        app = create_app(engine)
        docs = "API docs at /docs" if settings.api.docs else "OpenAPI document at /openapi.json"
        print(f"facesearch: serving http://{host}:{port}/ ({docs})", file=sys.stderr)
        uvicorn.Server(server_config(app, settings.api, host, port, log_level="info")).run()
    return 0
