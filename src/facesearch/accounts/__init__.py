"""Accounts: API keys, users, web sessions, roles and rate limits (``accounts.sqlite``)."""

from facesearch.accounts.ports import AccountStore, KeyInfo, Session
from facesearch.accounts.roles import ROLE_ACTIONS, Action, Principal, Role
from facesearch.accounts.sqlite import SqliteAccountStore

__all__ = [
    "ROLE_ACTIONS",
    "AccountStore",
    "Action",
    "KeyInfo",
    "Principal",
    "Role",
    "Session",
    "SqliteAccountStore",
]
