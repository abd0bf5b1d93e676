"""Accounts: ``keys create|list|revoke`` (API keys) and ``users add`` (web UI users).

cli/main.py hands these to ``run`` before it opens an engine, so key management never
loads a model; a change (key created or revoked, user added) opens the engine only to
make it there, where its audit entry is written.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from facesearch.errors import InvalidInput

COMMANDS = ("keys", "users")
ROLES = "admin, ingest, search or auditor"


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    keys = sub.add_parser("keys", parents=[common], help="create, list and revoke API keys")
    ks = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    k = ks.add_parser("create", parents=[common], help="a new key (shown once)")
    k.add_argument("--name", required=True, help="who or what uses the key")
    k.add_argument("--role", required=True, help=ROLES)
    ks.add_parser("list", parents=[common], help="every key, active and revoked")
    k = ks.add_parser("revoke", parents=[common], help="revoke a key at once")
    k.add_argument("key_id", metavar="KEY_ID")

    users = sub.add_parser("users", parents=[common], help="web UI users (username and password)")
    us = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    u = us.add_parser("add", parents=[common], help="add a user or reset a password")
    u.add_argument("username")
    u.add_argument("--role", required=True, help=ROLES)
    u.add_argument("--password-stdin", action="store_true", help="read the password from stdin")


def run(args: argparse.Namespace, settings: Any) -> int:
    """Run ``keys`` or ``users`` on the settings cli/main.py loaded (and checked)."""
    from facesearch.parts import build_accounts

    store = build_accounts(settings)
    try:
        if args.command == "keys":
            return keys(args, store, settings)
        return users(args, store, settings)
    finally:
        store.close()


@contextmanager
def recording(settings: Any) -> Iterator[tuple[Any, Any]]:
    """The engine, which makes key and user changes and records them in the home's audit log, and
    who makes them (the command line's user)."""
    from dataclasses import replace

    from facesearch.engine import FaceSearch

    with FaceSearch(settings) as engine:
        yield engine, replace(engine.default_requester(), channel="cli")


def keys(args: argparse.Namespace, store: Any, settings: Any) -> int:
    if args.keys_command == "create":
        with recording(settings) as (engine, who):
            info, full = engine.create_key(store, args.name, args.role, who)
        data: Any = {"key": full, "key_id": info.key_id, "name": info.name, "role": info.role}
        text = (
            f"{full}\n\nKey {info.key_id} ({info.role.value}) for {info.name}. "
            "Keep it now: it is stored only as a hash and cannot be shown again."
        )
    elif args.keys_command == "list":
        found = store.list_keys()
        data = [
            {
                "key_id": k.key_id,
                "name": k.name,
                "role": k.role.value,
                "created_at": k.created_at,
                "revoked_at": k.revoked_at,
            }
            for k in found
        ]
        rows = [
            f"{k.key_id}  {k.role.value:<8} {'active ' if k.active else 'revoked'}  "
            f"{k.created_at}  {k.name}"
            for k in found
        ]
        text = "\n".join(rows) if rows else "No API keys yet: facesearch keys create --name ..."
    else:
        with recording(settings) as (engine, who):
            info = engine.revoke_key(store, args.key_id, who)
        data = {"key_id": info.key_id, "revoked_at": info.revoked_at}
        text = f"Revoked key {info.key_id} ({info.name})"
    print(json.dumps(data, default=str) if args.json else text)
    return 0


def users(args: argparse.Namespace, store: Any, settings: Any) -> int:
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else ask_password()
    with recording(settings) as (engine, who):
        engine.add_user(store, args.username, password, args.role, who)
    data = {"username": args.username, "role": args.role}
    print(json.dumps(data) if args.json else f"User {args.username} ({args.role}) saved")
    return 0


def ask_password() -> str:
    """The password, typed twice at the terminal; no terminal: an error, not a traceback."""
    try:
        with warnings.catch_warnings():
            # getpass falls back to reading stdin, echoed, when there is no terminal
            warnings.simplefilter("error", getpass.GetPassWarning)
            password = getpass.getpass("Password: ")
            again = getpass.getpass("Again: ")
    except getpass.GetPassWarning:
        raise InvalidInput(
            "no terminal to type the password at: pipe it in with --password-stdin"
        ) from None
    except EOFError:
        raise InvalidInput("no password given (input closed)") from None
    if again != password:
        raise InvalidInput("the two passwords differ")
    return password
