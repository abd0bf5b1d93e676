"""The local executors: every job done once, tagged; setup run in each worker; jobs
pulled only as there is room (the caller's reading keeps pace with the workers)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import pytest

from facesearch.errors import ConfigError
from facesearch.execution.local import (
    IN_FLIGHT_PER_WORKER,
    InlineExecutor,
    ProcessExecutor,
    ThreadExecutor,
    local_executor,
)
from facesearch.execution.ray import check_address

_SETUP: dict[str, Any] = {}


def setup(factor: int) -> None:
    _SETUP["factor"] = factor


def work(x: int) -> tuple[int, int]:
    return x * _SETUP["factor"], os.getpid()


def jobs(n: int, pulled: list[int]) -> Iterator[tuple[str, tuple[Any, ...]]]:
    for i in range(n):
        pulled.append(i)
        yield f"job{i}", (i,)


@pytest.mark.parametrize("workers", [1, 2])
def test_every_job_once_with_its_tag(workers: int) -> None:
    executor = local_executor(workers)
    assert executor.in_process == (workers == 1)
    pulled: list[int] = []
    results = executor.map_unordered(work, jobs(20, pulled), initializer=setup, initargs=(3,))
    with closing(results):
        done = {tag: value for tag, (value, _) in results}
    assert done == {f"job{i}": 3 * i for i in range(20)}


def test_worker_processes_run_the_jobs_and_their_setup() -> None:
    pulled: list[int] = []
    results = ProcessExecutor(2).map_unordered(
        work, jobs(8, pulled), initializer=setup, initargs=(5,)
    )
    with closing(results):
        pids = {pid for _, (_, pid) in results}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    assert "factor" not in _SETUP or _SETUP["factor"] != 5  # set in the workers only


def test_jobs_are_pulled_only_as_there_is_room() -> None:
    pulled: list[int] = []
    results = ProcessExecutor(2).map_unordered(
        work, jobs(100, pulled), initializer=setup, initargs=(1,)
    )
    with closing(results):
        next(results)
        assert len(pulled) <= IN_FLIGHT_PER_WORKER * 2 + 1
    # Closed early: the rest was never pulled, nor run.
    assert len(pulled) < 100


def test_inline_runs_here() -> None:
    pulled: list[int] = []
    executor = InlineExecutor()
    results = executor.map_unordered(work, jobs(3, pulled), initializer=setup, initargs=(2,))
    assert [(tag, value, pid) for tag, (value, pid) in results] == [
        ("job0", 0, os.getpid()),
        ("job1", 2, os.getpid()),
        ("job2", 4, os.getpid()),
    ]


def test_threads_run_every_job_each_with_its_own_setup() -> None:
    """Each thread runs the initializer before its jobs, in thread-local state, and the
    jobs run in this process (the models of one thread are never another's)."""
    import threading

    seen = threading.local()
    setups: list[int] = []

    def setup_thread(factor: int) -> None:
        seen.factor = factor
        setups.append(threading.get_ident())

    def work_in_thread(x: int) -> tuple[int, int]:
        return x * seen.factor, threading.get_ident()

    pulled: list[int] = []
    executor = ThreadExecutor(3)
    assert not executor.in_process and not executor.copies_by_pickle
    results = executor.map_unordered(
        work_in_thread, jobs(30, pulled), initializer=setup_thread, initargs=(5,)
    )
    with closing(results):
        done = {tag: value for tag, value in results}
    assert {tag: v for tag, (v, _) in done.items()} == {f"job{i}": 5 * i for i in range(30)}
    assert {ident for _, ident in done.values()} <= set(setups)
    assert len(set(setups)) == len(setups) <= 3  # once per thread


@pytest.mark.parametrize(
    "address", ["auto", "ray://head:10001", "ray://10.0.0.7:10001", "ray://[::1]:10001"]
)
def test_a_ray_address_is_auto_or_ray_url(address: str) -> None:
    assert check_address(address) == address


@pytest.mark.parametrize(
    "address", ["", "head:10001", "ray://head", "ray://:10001", "ray://head:0", "local"]
)
def test_anything_else_is_refused_saying_what_a_ray_address_is(address: str) -> None:
    with pytest.raises(ConfigError, match=r"not a Ray address; use auto .* ray://HOST:PORT"):
        check_address(address)
