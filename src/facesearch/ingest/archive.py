"""Unpacking an uploaded zip (a folder sent from the web) without trusting it.

A zip names its own paths and sizes, so each is checked before a byte is written: a
member that would land outside the folder (``../``, an absolute path, a drive letter), a
link, an encrypted member, too many members, or more bytes than allowed in all (a zip
bomb: a few kilobytes that inflate to gigabytes) refuse the whole archive, and nothing is
left behind. Sizes are also counted while inflating, because the declared ones can lie.
"""

from __future__ import annotations

import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from facesearch.errors import InvalidInput

CHUNK = 1024 * 1024
# Files a folder picks up on its own (macOS resource forks, Finder and Explorer files):
# skipped, not reported as failures.
JUNK_NAMES = frozenset({".ds_store", "thumbs.db", "desktop.ini"})


@dataclass(frozen=True, slots=True)
class ArchiveLimits:
    """What one archive may hold: ``max_files`` members, ``max_total_bytes`` inflated in
    all, ``max_file_bytes`` per member (larger members are refused, not unpacked)."""

    max_files: int
    max_total_bytes: int
    max_file_bytes: int


@dataclass(frozen=True, slots=True)
class Member:
    """One file unpacked from an archive: its name inside it, and where it now lies (None
    when it was not unpacked: ``problem`` says why)."""

    name: str
    path: Path | None
    problem: str | None = None


def is_zip(head: bytes) -> bool:
    return head.startswith((b"PK\x03\x04", b"PK\x05\x06"))


def unpack_zip(archive: Path, dest: Path, limits: ArchiveLimits) -> list[Member]:
    """Unpack the zip at ``archive`` into the new folder ``dest``; its members in order.

    InvalidInput (nothing left in ``dest``) for an archive that cannot be read or that
    breaks a rule in the module docstring; a member over the per-file limit is listed with
    its problem and not unpacked.
    """
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = [i for i in zf.infolist() if not i.is_dir()]
            _check(infos, limits)
            dest.mkdir(parents=True, exist_ok=False)
            try:
                return [_unpack(zf, info, dest, limits) for info in infos if not _junk(info)]
            except BaseException:
                shutil.rmtree(dest, ignore_errors=True)
                raise
    except zipfile.BadZipFile as exc:
        raise InvalidInput(f"the archive cannot be read as a zip ({exc})") from None
    except (NotImplementedError, RuntimeError) as exc:  # unknown compression, encryption
        raise InvalidInput(f"the archive cannot be unpacked ({exc})") from None
    except FileExistsError as exc:
        raise InvalidInput(f"the archive names {exc.filename} twice") from None


def _check(infos: list[zipfile.ZipInfo], limits: ArchiveLimits) -> None:
    if len(infos) > limits.max_files:
        raise InvalidInput(
            f"the archive holds {len(infos)} files, over the limit of {limits.max_files}"
        )
    total = sum(i.file_size for i in infos)
    if total > limits.max_total_bytes:
        raise InvalidInput(
            f"the archive would unpack to {total} bytes, over the limit of "
            f"{limits.max_total_bytes} (a zip bomb, or split the folder)"
        )
    for info in infos:
        name = info.filename
        if info.flag_bits & 0x1:
            raise InvalidInput(f"the archive member {name!r} is encrypted; send it unencrypted")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise InvalidInput(f"the archive member {name!r} is a link; links are refused")
        if unsafe_name(name):
            raise InvalidInput(
                f"the archive member {name!r} would be written outside the folder "
                "(path traversal); nothing was stored"
            )


def unsafe_name(name: str) -> bool:
    """Whether a member's name could land outside the folder it is unpacked into."""
    if "\\" in name or "\x00" in name or name.startswith("/"):
        return True
    parts = PurePosixPath(name).parts
    return not parts or ".." in parts or (len(parts[0]) == 2 and parts[0][1] == ":")


def _junk(info: zipfile.ZipInfo) -> bool:
    parts = PurePosixPath(info.filename).parts
    return parts[0] == "__MACOSX" or parts[-1].lower() in JUNK_NAMES or parts[-1].startswith("._")


def _unpack(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, limits: ArchiveLimits
) -> Member:
    name = info.filename
    if info.file_size > limits.max_file_bytes:
        return Member(
            name, None, f"{info.file_size} bytes, over the limit of {limits.max_file_bytes}"
        )
    target = dest.joinpath(*PurePosixPath(name).parts)
    if not target.resolve().is_relative_to(dest.resolve()):  # belt and braces: _check did
        raise InvalidInput(f"the archive member {name!r} would be written outside the folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with zf.open(info) as src, open(target, "xb") as out:
        while chunk := src.read(CHUNK):
            written += len(chunk)
            # The declared size is what was checked: more means the header lied.
            if written > info.file_size:
                raise InvalidInput(
                    f"the archive member {name!r} inflates past its declared size "
                    f"({info.file_size} bytes): refused as a zip bomb"
                )
            out.write(chunk)
    return Member(name, target)
