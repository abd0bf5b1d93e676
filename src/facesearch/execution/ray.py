"""The Ray executor: analysis jobs on the workers of a Ray cluster, or of a local Ray.

One Ray actor per worker: it runs the initializer once (the models are built there, from
the picklable spec) and then the jobs it is given, so the models load once per worker,
not once per image. The caller keeps every job's tag; only the job's arguments (the
file's bytes) travel to the cluster and only the result (faces and embeddings) comes
back, so the caller alone writes the catalog and the index, whatever backend they are.

A worker that dies (killed, out of memory, its machine gone) is restarted by Ray, which
runs the initializer again and sends the jobs it held once more; a job whose worker dies
``JOB_RETRIES`` more times stops the map with BackendUnavailable (what was already
returned stays returned, and the caller may run the map again).

Addresses: ``auto`` is the Ray of this machine (``RAY_ADDRESS``, or a cluster started here
with ``ray start``, or else a Ray instance started for this map and stopped after it);
``ray://HOST:PORT`` is a cluster's Ray Client server (port 10001 by default). When the
calling process has already connected to Ray (``ray.init``), that connection is used
(a ray:// address must still answer).
The cluster's nodes need facesearch installed, with the same Python and Ray versions.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Generator, Iterable
from typing import Any, TypeVar

from facesearch.errors import BackendUnavailable, ConfigError
from facesearch.execution.local import IN_FLIGHT_PER_WORKER

K = TypeVar("K")
R = TypeVar("R")

AUTO = "auto"
SCHEME = "ray://"
# Times a job is sent again after its worker died under it (Ray restarts the worker).
JOB_RETRIES = 3
# How long a ray:// address may take to answer before it counts as unreachable (Ray's
# own client would retry for half a minute before saying so).
CONNECT_TIMEOUT_SECONDS = 5.0


def check_address(address: str) -> str:
    """``address`` if it names a Ray cluster (``auto`` or ``ray://HOST:PORT``), else ConfigError."""
    if address == AUTO:
        return address
    if address.startswith(SCHEME):
        host, sep, port = address[len(SCHEME) :].rpartition(":")
        if sep and host and port.isdigit() and 0 < int(port) < 65536:
            return address
    raise ConfigError(
        f"cluster: {address!r} is not a Ray address; use auto (the Ray of this machine) "
        "or ray://HOST:PORT (a cluster's Ray Client server, port 10001 by default)"
    )


class _Worker:
    """One worker's state: the function, after the initializer ran in this process."""

    def __init__(
        self,
        fn: Callable[..., Any],
        initializer: Callable[..., None] | None,
        initargs: tuple[Any, ...],
    ) -> None:
        if initializer is not None:
            initializer(*initargs)
        self.fn = fn

    def run(self, *args: Any) -> Any:
        return self.fn(*args)


class RayExecutor:
    """Jobs on ``workers`` Ray actors of the cluster at ``address`` (see the module's doc),
    or on as many as the cluster has CPUs, if that is fewer."""

    in_process = False
    copies_by_pickle = True  # the function and its setup reach the cluster pickled

    def __init__(self, address: str, workers: int) -> None:
        self.address = check_address(address)
        self.workers = max(1, workers)

    def map_unordered(
        self,
        fn: Callable[..., R],
        jobs: Iterable[tuple[K, tuple[Any, ...]]],
        *,
        initializer: Callable[..., None] | None = None,
        initargs: tuple[Any, ...] = (),
    ) -> Generator[tuple[K, R], None, None]:
        # Connected here, before the first job is pulled: an unreachable cluster is an
        # error at once, not after the caller has read its first file.
        started = connect(self.address)
        try:
            import ray

            # An actor that no CPU of the cluster can take would hold its jobs forever.
            resources: Callable[[], dict[str, float]] = ray.cluster_resources
            cpus = int(resources().get("CPU", 0))
            if cpus < 1:
                raise BackendUnavailable(f"the Ray cluster at {self.address} has no CPU")
            worker = ray.remote(_Worker).options(
                num_cpus=1, max_restarts=-1, max_task_retries=JOB_RETRIES
            )
            count = min(self.workers, cpus)
            actors = [worker.remote(fn, initializer, initargs) for _ in range(count)]
        except BaseException:
            disconnect(started)
            raise
        return _bounded(actors, jobs, started)


def prepare_environment() -> None:
    """Settings for Ray that must be in the environment before it is imported (its own
    processes inherit them); a value the operator set is kept.

    Both spare Ray a look through /proc that fails in sandboxes whose /proc shows another
    PID namespace: how this driver was launched (for ``uv run``, whose environment Ray
    would ship to workers that share ours already), and whether a Ray agent's parent
    still runs (a pipe tells it as well)."""
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    os.environ.setdefault("RAY_enable_pipe_based_agent_to_parent_health_check", "1")


def connect(address: str) -> bool:
    """Connect this process to Ray; True when that started a Ray instance (or a client
    session) that ``disconnect`` must stop."""
    prepare_environment()
    import ray

    if address != AUTO:
        probe(address)
    elif os.environ.get("RAY_ADDRESS"):  # where auto goes first: Ray would wait a minute
        probe(os.environ["RAY_ADDRESS"], " (RAY_ADDRESS)")
    _notices_to_stderr()
    if ray.is_initialized():  # the caller's own connection (a test's local Ray)
        return False
    quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}
    # Ray raises bare Exceptions too (a local node that did not start in time).
    try:
        if address == AUTO:
            ray.init(**quiet)
        else:
            ray.init(address=address, **quiet)
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if address == AUTO:
            raise BackendUnavailable(f"cannot start or reach the local Ray: {first}") from None
        raise BackendUnavailable(f"the Ray cluster at {address} refused us: {first}") from None
    return True


def _notices_to_stderr() -> None:
    """Send Ray's notices to the driver (a worker died, a task is retried) to stderr.

    Ray prints them on stdout from a thread of its own, where they would break the
    output of ``--json``; they are for the operator, as our warnings are. Ray has no
    setting for it: this wraps the private function that thread calls (Ray is pinned in
    the ``cluster`` extra; if the function moves, the notices stay where Ray puts them).
    """
    try:
        from ray._private import worker as ray_worker
    except ImportError:  # pragma: no cover - another Ray layout
        return
    printer = getattr(ray_worker, "print_to_stdstream", None)
    if printer is None or getattr(printer, "to_stderr", False):
        return

    def to_stderr(data: dict[str, Any], ignore_prefix: bool) -> None:
        printer({**data, "is_err": True}, ignore_prefix)

    to_stderr.to_stderr = True  # type: ignore[attr-defined]
    ray_worker.print_to_stdstream = to_stderr


def probe(address: str, via: str = "") -> None:
    """BackendUnavailable at once when nothing answers at a ray:// (or a Ray head's
    HOST:PORT) address; ``via`` says where the address came from."""
    host, sep, port = address.removeprefix(SCHEME).rpartition(":")
    if not (sep and host and port.isdigit()):
        return  # not an address to knock at (RAY_ADDRESS=auto, local): Ray decides
    try:
        socket.create_connection((host.strip("[]"), int(port)), CONNECT_TIMEOUT_SECONDS).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        what = "the Ray Client server" if address.startswith(SCHEME) else "its head"
        raise BackendUnavailable(
            f"the Ray cluster at {address}{via} cannot be reached ({reason}); is {what} "
            "running (ray start --head)?"
        ) from None


def disconnect(started: bool) -> None:
    if started:
        import ray

        ray.shutdown()


def _bounded(
    actors: list[Any], jobs: Iterable[tuple[K, tuple[Any, ...]]], started: bool
) -> Generator[tuple[K, Any], None, None]:
    """Results as they finish, at most IN_FLIGHT_PER_WORKER jobs per actor out at once,
    each job given to the actor with the fewest; closing the generator stops the actors."""
    import ray
    from ray.exceptions import RayActorError, RayTaskError

    in_flight: dict[Any, tuple[K, int]] = {}  # result ref -> (tag, actor)
    load = [0] * len(actors)
    todo = iter(jobs)
    try:
        exhausted = False
        while True:
            while not exhausted and len(in_flight) < IN_FLIGHT_PER_WORKER * len(actors):
                job = next(todo, None)
                if job is None:
                    exhausted = True
                    break
                tag, args = job
                i = load.index(min(load))
                in_flight[actors[i].run.remote(*args)] = (tag, i)
                load[i] += 1
            if not in_flight:
                break
            finished, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in finished:
                tag, i = in_flight.pop(ref)
                load[i] -= 1
                try:
                    result = ray.get(ref)
                except RayActorError as exc:
                    raise BackendUnavailable(
                        f"a Ray worker died {JOB_RETRIES + 1} times on one job; "
                        f"stopping (what was done is kept): {str(exc).splitlines()[0]}"
                    ) from None
                except RayTaskError as exc:  # the function's own error, as it raised it
                    error: Any = exc
                    raise error.as_instanceof_cause() from None
                yield tag, result
    finally:
        # Jobs still out (Ctrl-C, an error) are cancelled first: killed with the actor,
        # Ray would announce each as failed and about to be retried.
        for ref in in_flight:
            ray.cancel(ref)
        for actor in actors:
            ray.kill(actor, no_restart=True)
        disconnect(started)


def ray_executor(address: str | None, workers: int) -> RayExecutor:
    """``workers`` Ray workers of the cluster at ``address`` (default: ``auto``)."""
    return RayExecutor(address or AUTO, workers)
