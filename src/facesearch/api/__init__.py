"""The HTTP API (FastAPI): ``create_app(engine)`` serves the API and the web UI."""

from facesearch.api.app import create_app

__all__ = ["create_app"]
