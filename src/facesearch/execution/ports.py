"""The executor port: run one function over many jobs, results as they finish.

Ingest hands an executor a lazy stream of jobs and writes each result as it comes back;
the executor decides where the function runs (this process, forked worker processes, a
cluster) and how many jobs are out at once. Jobs are pulled from the stream only as
there is room, so the caller's own work per job (reading the file, checking the catalog)
keeps pace with the workers instead of running ahead of them.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
from typing import Any, Protocol, TypeVar

K = TypeVar("K")  # the caller's tag for a job; it stays with the caller
R = TypeVar("R")


class Executor(Protocol):
    @property
    def in_process(self) -> bool:
        """True when jobs run in the caller's process (its loaded models can be used)."""
        ...

    @property
    def copies_by_pickle(self) -> bool:
        """True when the function's setup reaches the workers pickled (not inherited by
        fork): the caller then checks that it pickles, for a clear error."""
        ...

    def map_unordered(
        self,
        fn: Callable[..., R],
        jobs: Iterable[tuple[K, tuple[Any, ...]]],
        *,
        initializer: Callable[..., None] | None = None,
        initargs: tuple[Any, ...] = (),
    ) -> Generator[tuple[K, R], None, None]:
        """``(tag, fn(*args))`` for every ``(tag, args)`` of ``jobs``, in the order they
        finish. ``initializer(*initargs)`` runs once in every worker before its first job.
        Stopping the iteration early (an exception, Ctrl-C) cancels what is left."""
        ...
