"""Connections to the catalog's PostgreSQL server, shared by the threads of a process.

Each use takes a connection of its own from a small pool (a thread's transaction never
carries another thread's statements), and gives it back afterwards; one the server
dropped is thrown away, and the next use connects again. A server that is down or goes
away is a ``BackendUnavailable``: the CLI prints one line, the API answers 503.
"""

from __future__ import annotations

import logging
import select
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from facesearch.errors import BackendUnavailable

CONNECT_TIMEOUT_S = 10
POOL_SIZE = 8  # connections a process keeps at most (threads beyond that wait)


def _not_a_second_error(record: logging.LogRecord) -> bool:
    """psycopg logs, as a warning, an error met while it ends a pipeline or a copy that
    failed (the server went away): the first error is raised, and said once, as
    BackendUnavailable. With no logging set up, Python would print the warning too, a
    second and third line after the command line's one."""
    return not str(record.msg).startswith("error ignored terminating")


_PSYCOPG_LOG = logging.getLogger("psycopg")
if _not_a_second_error not in _PSYCOPG_LOG.filters:
    _PSYCOPG_LOG.addFilter(_not_a_second_error)


def redacted(url: str) -> str:
    """``url`` without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


Connection = psycopg.Connection[tuple[Any, ...]]


def alive(conn: Connection) -> bool:
    """Whether an idle connection is still open at the server's end. A server that
    restarted or ended the session (an administrator, an idle timeout) has left its
    goodbye or an end of file on the socket: anything to read on an idle connection (no
    LISTEN here) means it is gone, found without a round trip."""
    if conn.closed or conn.broken:
        return False
    try:
        readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
    except (OSError, ValueError, psycopg.Error):
        return False
    return not readable


class Pool:
    """Up to ``size`` autocommit connections to ``url``; ``what`` names the store."""

    def __init__(self, url: str, what: str, size: int = POOL_SIZE) -> None:
        self.url = url
        self.what = what
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def _connect(self) -> Connection:
        try:
            return psycopg.connect(
                self.url,
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT_S,
                application_name="facesearch",
            )
        except psycopg.Error as exc:
            raise BackendUnavailable(
                f"cannot reach PostgreSQL for the {self.what} at {redacted(self.url)}: "
                f"{first_line(exc)}"
            ) from exc

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A connection for the block; psycopg's errors of a server gone away raise
        BackendUnavailable (the transaction open in the block is rolled back)."""
        self._slots.acquire()
        conn: Connection | None = None
        try:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is not None and not alive(conn):
                conn.close()
            if conn is None or conn.closed:
                conn = self._connect()
            try:
                yield conn
            except psycopg.errors.TransactionRollback:
                raise  # a deadlock or serialization failure: the caller may try again
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                if not isinstance(exc, psycopg.errors.QueryCanceled):
                    conn.close()
                raise BackendUnavailable(
                    f"PostgreSQL ({self.what} at {redacted(self.url)}) failed: {first_line(exc)}"
                ) from exc
        finally:
            if conn is not None:
                with self._lock:
                    idle = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
                    if self._closed or conn.closed or conn.broken or not idle:
                        conn.close()
                    else:
                        self._idle.append(conn)
            self._slots.release()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
