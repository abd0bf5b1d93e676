"""This machine's processes as the tests see them, wherever /proc was mounted from.

Sandboxes (CI's among them) may run the tests in a PID namespace of their own while
/proc still shows an outer one: there ``/proc/<pid>`` of a pid this process knows is
missing or another process. Each entry's ``NSpid`` line gives its pid as our namespace
numbers it, and entries of other namespaces are left out.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

PROC = Path("/proc")


def _namespace(entry: Path) -> str | None:
    try:
        return os.readlink(entry / "ns" / "pid")
    except OSError:
        return None


def _our_pid(entry: Path) -> int | None:
    """The entry's pid in this process's namespace (the last NSpid field)."""
    try:
        for line in (entry / "status").read_text().splitlines():
            if line.startswith("NSpid:"):
                return int(line.split()[-1])
    except (OSError, ValueError):
        return None
    return int(entry.name)


def processes() -> Iterator[tuple[int, bytes]]:
    """(pid as we number it, command line) of each process in our namespace."""
    ours = _namespace(PROC / "self")
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if ours is not None and _namespace(entry) != ours:
            continue
        pid = _our_pid(entry)
        if pid is not None:
            yield pid, cmdline
