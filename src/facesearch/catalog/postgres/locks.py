"""AdvisoryLocks: the ``Locks`` of a PostgreSQL catalog, session advisory locks on the
catalog's database, shared by every process of a deployment on any machine.

Each hold takes a connection of its own and tries ``pg_try_advisory_lock`` on it until
the wait runs out: the lock is released when the block ends, or by the server when the
connection goes (a process that dies holding it does not block the others).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from facesearch.catalog.postgres.catalog import lock_key
from facesearch.catalog.postgres.connections import Pool
from facesearch.errors import BackendUnavailable

POLL_SECONDS = 0.1


class AdvisoryLocks:
    def __init__(self, url: str) -> None:
        self.url = url

    @contextmanager
    def exclusive(self, name: str, wait: float | None) -> Iterator[None]:
        key = lock_key(f"lock:{name}")
        deadline = None if wait is None else time.monotonic() + wait
        # A connection of the hold's own: session locks are re-entrant within a session,
        # so two threads sharing one would both get it.
        pool = Pool(self.url, f"{name} lock", size=1)
        try:
            with pool.connection() as conn:
                while True:
                    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
                    if row is not None and row[0]:
                        break
                    if deadline is not None and time.monotonic() >= deadline:
                        raise BackendUnavailable(
                            f"another process is running {name} on this catalog: try again "
                            "when it has finished"
                        )
                    time.sleep(POLL_SECONDS)
                try:
                    yield
                finally:
                    if not conn.broken:
                        conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
        finally:
            pool.close()
