"""The HTTP API (FastAPI): ``create_app(engine)`` serves the API alone;
``facesearch.app.create_app`` serves it with the web UI."""

from facesearch.api.app import create_app

__all__ = ["create_app"]
