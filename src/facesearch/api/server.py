"""How ``facesearch serve`` runs the app under uvicorn: bounded connections and headers.

uvicorn closes idle keep-alive connections but waits forever for a request head that
arrives a byte at a time (slowloris). ``HeadTimeoutH11Protocol`` closes a connection whose
request line and headers are not complete within ``api.header_timeout_seconds`` of its
opening (or of the previous response), and ``api.max_connections`` caps how many are
served at once. Forwarded headers are believed only from ``api.trusted_proxies`` (the app
applies them, see create_app); uvicorn's own handling, which trusts 127.0.0.1 by default,
is off.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from facesearch.config import Api


class HeadTimeoutH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request head."""

    head_timeout = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_deadline()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:
            self._disarm_head_deadline()  # the head is in (or the connection is ending)

    def on_response_complete(self) -> None:
        # The next request's head gets the same deadline (pipelined heads already read
        # disarm it again in handle_events).
        if not self.transport.is_closing():
            self._arm_head_deadline()
        super().on_response_complete()

    def _arm_head_deadline(self) -> None:
        self._disarm_head_deadline()
        self._head_deadline = self.loop.call_later(self.head_timeout, self._head_too_slow)

    def _disarm_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.logger.warning("closing a connection whose request head was too slow")
            self.transport.close()


def http_protocol(head_timeout: float) -> type[HeadTimeoutH11Protocol]:
    """The protocol class with this deadline (uvicorn makes one instance per connection)."""
    return type("HeadTimeoutH11", (HeadTimeoutH11Protocol,), {"head_timeout": head_timeout})


def server_config(app: Any, api: Api, host: str, port: int, **extra: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=http_protocol(api.header_timeout_seconds),
        limit_concurrency=api.max_connections,
        proxy_headers=False,
        server_header=False,
        **extra,
    )
