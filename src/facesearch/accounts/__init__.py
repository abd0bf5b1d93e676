"""Accounts: API keys, users, web sessions, roles and rate limits (``accounts.sqlite``)."""

from facesearch.accounts.roles import ROLE_ACTIONS, Action, Principal, Role
from facesearch.accounts.store import KeyInfo, SqliteAccountStore

__all__ = ["ROLE_ACTIONS", "Action", "KeyInfo", "Principal", "Role", "SqliteAccountStore"]
