"""A real PostgreSQL server in a folder of its own, for tests, benchmarks and demos.

    python scripts/engines/postgres.py start DIR   # prints the URL of database "postgres"
    python scripts/engines/postgres.py stop DIR

Debian's ``postgresql`` package provides the binaries (``scripts/install-postgres.sh``).
PostgreSQL refuses to run as root, and tests and CI run as root: then the server runs as a
dedicated system user (``facesearch-pg``, created when missing) through ``runuser``, and owns
DIR. It listens on 127.0.0.1 on a free port (and a socket in DIR), trusts local
connections (a throwaway server: never expose it), and keeps its data in DIR/data.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

USER = "facesearch-pg"  # the system user the server runs as when we are root
SUPERUSER = "facesearch"  # the database superuser initdb creates
# Throwaway servers: no fsync (a crash loses the test's data, nothing else), and no
# recycled WAL segments, so that a segment no longer needed is deleted, not kept renamed
# with its old contents (what a stolen copy of the data folder would hold after a scrub).
SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "wal_recycle": "off",
    "max_connections": "60",
    "shared_buffers": "32MB",
}


class Unavailable(RuntimeError):
    """PostgreSQL cannot be found or started here (the message says why)."""


@dataclass(frozen=True)
class Server:
    folder: Path
    port: int

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"


def bindir() -> Path:
    """The folder of ``initdb`` and ``pg_ctl``: Debian's newest, or pg_config's, or PATH's."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1].parent
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if out.returncode == 0 and (Path(out.stdout.strip()) / "pg_ctl").exists():
            return Path(out.stdout.strip())
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        return Path(pg_ctl).parent
    raise Unavailable(
        "PostgreSQL is not installed (no pg_ctl): run scripts/install-postgres.sh "
        "(apt-get install postgresql)"
    )


def server_user() -> str | None:
    """The user the server runs as: ours when we are root (created if missing), else None."""
    if os.geteuid() != 0:
        return None
    if subprocess.run(["id", "-u", USER], capture_output=True).returncode != 0:
        made = subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir",
             "/nonexistent", "--shell", "/usr/sbin/nologin", USER],
            capture_output=True, text=True,
        )  # fmt: skip
        if made.returncode != 0 and "already exists" not in made.stderr:
            raise Unavailable(f"cannot create the system user {USER}: {made.stderr.strip()}")
    return USER


def _run(user: str | None, args: list[str], what: str) -> None:
    command = (["runuser", "-u", user, "--"] if user else []) + args
    done = subprocess.run(command, capture_output=True, text=True, cwd="/")
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()
        raise Unavailable(f"{what} failed: {message[-1] if message else done.returncode}")


def _own(folder: Path, user: str | None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if user is None:
        return
    shutil.chown(folder, user, user)
    probe = subprocess.run(["runuser", "-u", user, "--", "test", "-w", str(folder)])
    if probe.returncode != 0:
        raise Unavailable(
            f"{folder} is not reachable by the user {user} (a parent folder is private): "
            "use a folder under /tmp or another world-traversable place"
        )


def initdb(folder: Path, wal_segment_mb: int | None = None) -> Path:
    """A new, stopped cluster in ``folder/data`` (to start, or to copy as a template);
    ``wal_segment_mb`` below the default 16 makes a smaller folder (quicker to copy)."""
    user = server_user()
    _own(folder, user)
    data = folder / "data"
    _run(
        user,
        [str(bindir() / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust",
         "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions",
         *([f"--wal-segsize={wal_segment_mb}"] if wal_segment_mb else [])],
        "initdb",
    )  # fmt: skip
    return data


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def is_free(port: int) -> bool:
    """Whether the server could listen on ``port`` (it sets SO_REUSEADDR: connections
    of a server that just stopped, left in TIME_WAIT, do not keep it from the port)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start(
    folder: Path, template: Path | None = None, settings: dict[str, str] | None = None
) -> Server:
    """Start a server on ``folder`` (its cluster made by initdb, or copied from the data
    folder ``template``; an existing ``folder/data`` is started as it is); ``settings``
    override ``SETTINGS`` (a benchmark turns fsync back on)."""
    folder = folder.resolve()
    user = server_user()
    data = folder / "data"
    if not (data / "PG_VERSION").exists():
        if template is None:
            initdb(folder)
        else:
            _own(folder, user)
            shutil.copytree(template, data, symlinks=True)
            if user:
                subprocess.run(["chown", "-R", f"{user}:{user}", str(data)], check=True)
            data.chmod(0o700)
    _own(folder, user)
    options = " ".join(f"-c {k}={v}" for k, v in {**SETTINGS, **(settings or {})}.items())
    last: Unavailable | None = None
    # A server started again keeps its port (its URL stays valid) when that is free.
    before = int((folder / "port").read_text()) if (folder / "port").exists() else None
    for attempt in range(3):  # another process may take the free port before the server
        port = before if before and attempt == 0 and is_free(before) else free_port()
        try:
            _run(
                user,
                [str(bindir() / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"),
                 "-w", "-t", "60", "-o", f"-p {port} -k {folder} {options}", "start"],
                "pg_ctl start",
            )  # fmt: skip
        except Unavailable as exc:
            last = exc
            continue
        (folder / "port").write_text(str(port))
        return Server(folder, port)
    tail = (folder / "server.log").read_text(errors="replace").strip().splitlines()[-3:]
    raise Unavailable(f"{last}; server.log: {' | '.join(tail)}")


def running(folder: Path) -> Server | None:
    """The server started on ``folder``, if it is running."""
    folder = folder.resolve()
    if not (folder / "data" / "postmaster.pid").exists() or not (folder / "port").exists():
        return None
    return Server(folder, int((folder / "port").read_text()))


def stop(folder: Path) -> None:
    """Stop the server on ``folder`` (fast shutdown: open sessions are ended)."""
    folder = folder.resolve()
    if not (folder / "data" / "postmaster.pid").exists():
        return
    _run(
        server_user(),
        [str(bindir() / "pg_ctl"), "-D", str(folder / "data"), "-m", "fast", "-w", "stop"],
        "pg_ctl stop",
    )


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("start", "stop"):
        print("usage: postgres.py start|stop DIR", file=sys.stderr)
        return 2
    folder = Path(argv[1])
    try:
        if argv[0] == "start":
            server = running(folder) or start(folder)
            print(server.url())
        else:
            stop(folder)
    except Unavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
