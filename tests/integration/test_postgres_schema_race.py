"""Several processes opening one empty PostgreSQL database at the same moment (servers and
ingest workers started together on a new deployment): one makes the catalog's tables,
the others wait for it and use them; none fails with a table that "already exists"."""

from __future__ import annotations

import multiprocessing
from typing import Any

import psycopg
import pytest

from facesearch.catalog.postgres.catalog import PostgresCatalog
from facesearch.catalog.postgres.schema import SCHEMA_VERSION

pytestmark = pytest.mark.postgres
PROCESSES = 6


def open_catalog(url: str, start: Any, results: Any) -> None:
    """In another process: open the catalog at ``url`` when all are ready."""
    start.wait(120)
    try:
        catalog = PostgresCatalog(url)
        try:
            results.put(("ok", catalog.schema_version()))
        finally:
            catalog.close()
    except Exception as exc:  # reported to the test, which names it
        results.put(("error", f"{type(exc).__name__}: {exc}"))


def test_processes_opening_an_empty_database_at_once_make_its_tables_once(
    postgres_url: str,
) -> None:
    context = multiprocessing.get_context("spawn")  # as servers and ingest workers start
    start, results = context.Barrier(PROCESSES), context.Queue()
    processes = [
        context.Process(target=open_catalog, args=(postgres_url, start, results))
        for _ in range(PROCESSES)
    ]
    for p in processes:
        p.start()
    try:
        answers = [results.get(timeout=180) for _ in processes]
        for p in processes:
            p.join(60)
    finally:
        for p in processes:
            p.kill()
    assert answers == [("ok", SCHEMA_VERSION)] * PROCESSES
    with psycopg.connect(postgres_url) as db:
        [(version,)] = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
    assert version == str(SCHEMA_VERSION)
