"""Local executors: jobs in this process, in threads, or in worker processes on this machine."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import (
    FIRST_COMPLETED,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from concurrent.futures import (
    Executor as Pool,
)
from typing import Any, TypeVar

from facesearch.execution.ports import Executor

K = TypeVar("K")
R = TypeVar("R")

# Jobs out at once per worker: one running, one ready to start as soon as it ends.
IN_FLIGHT_PER_WORKER = 2


class InlineExecutor:
    """Every job in the caller's process, one after the other."""

    in_process = True
    copies_by_pickle = False

    def map_unordered(
        self,
        fn: Callable[..., R],
        jobs: Iterable[tuple[K, tuple[Any, ...]]],
        *,
        initializer: Callable[..., None] | None = None,
        initargs: tuple[Any, ...] = (),
    ) -> Generator[tuple[K, R], None, None]:
        if initializer is not None:
            initializer(*initargs)
        for tag, args in jobs:
            yield tag, fn(*args)


class ProcessExecutor:
    """Jobs in ``workers`` processes of this machine (a new pool per map)."""

    in_process = False

    def __init__(self, workers: int) -> None:
        self.workers = workers
        # fork starts a worker in milliseconds (spawn re-imports numpy and the model
        # runtime: ~2 s a worker); the children inherit the initializer's arguments.
        methods = multiprocessing.get_all_start_methods()
        self.context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")

    @property
    def copies_by_pickle(self) -> bool:
        return self.context.get_start_method() != "fork"

    def map_unordered(
        self,
        fn: Callable[..., R],
        jobs: Iterable[tuple[K, tuple[Any, ...]]],
        *,
        initializer: Callable[..., None] | None = None,
        initargs: tuple[Any, ...] = (),
    ) -> Generator[tuple[K, R], None, None]:
        pool = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=self.context,
            initializer=initializer,
            initargs=initargs,
        )
        return _bounded(pool, self.workers, fn, jobs)


class ThreadExecutor:
    """Jobs in ``workers`` threads of this process, each set up by the initializer (its
    own models: per-thread state, see ingest.analyse). Useful where the work releases
    the GIL, or where processes cannot be forked."""

    in_process = False  # the caller's loaded models are not shared between threads
    copies_by_pickle = False

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)

    def map_unordered(
        self,
        fn: Callable[..., R],
        jobs: Iterable[tuple[K, tuple[Any, ...]]],
        *,
        initializer: Callable[..., None] | None = None,
        initargs: tuple[Any, ...] = (),
    ) -> Generator[tuple[K, R], None, None]:
        pool = ThreadPoolExecutor(self.workers, initializer=initializer, initargs=initargs)
        return _bounded(pool, self.workers, fn, jobs)


def _bounded(
    pool: Pool, workers: int, fn: Callable[..., R], jobs: Iterable[tuple[K, tuple[Any, ...]]]
) -> Generator[tuple[K, R], None, None]:
    """Results as they finish, with at most IN_FLIGHT_PER_WORKER jobs a worker out at once;
    closing the generator cancels the rest and shuts the pool down."""
    in_flight: dict[Future[R], K] = {}
    todo = iter(jobs)
    try:
        exhausted = False
        while True:
            while not exhausted and len(in_flight) < IN_FLIGHT_PER_WORKER * workers:
                job = next(todo, None)
                if job is None:
                    exhausted = True
                    break
                tag, args = job
                in_flight[pool.submit(fn, *args)] = tag
            if not in_flight:
                break
            finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in finished:
                yield in_flight.pop(future), future.result()
    finally:
        for future in in_flight:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


def local_executor(workers: int) -> Executor:
    """One worker: this process; more: that many worker processes."""
    return InlineExecutor() if workers <= 1 else ProcessExecutor(workers)


def thread_executor(workers: int) -> Executor:
    """That many threads of this process (one included)."""
    return ThreadExecutor(workers)
