"""Roles, each a fixed set of allowed actions. Routes ask for an action, never a role."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from facesearch.errors import InvalidInput, PermissionDenied


class Action(StrEnum):
    SEARCH = "search"  # run a search
    VIEW_IMAGES = "view_images"  # images, files, face thumbnails (what a search shows)
    LIST_SOURCES = "list_sources"
    INGEST = "ingest"  # add images
    STATS = "stats"  # read-only statistics
    AUDIT = "audit"  # read the audit log and the transparency report
    MANAGE_KEYS = "manage_keys"
    MANAGE_SOURCES = "manage_sources"
    DELETE = "delete"  # erasure and retention runs
    HANDLE_REQUESTS = "handle_requests"  # data subjects' access requests and objections


class Role(StrEnum):
    ADMIN = "admin"
    INGEST = "ingest"
    SEARCH = "search"
    AUDITOR = "auditor"


ROLE_ACTIONS: dict[Role, frozenset[Action]] = {
    Role.ADMIN: frozenset(Action),
    Role.INGEST: frozenset({Action.INGEST, Action.LIST_SOURCES}),
    Role.SEARCH: frozenset({Action.SEARCH, Action.VIEW_IMAGES, Action.LIST_SOURCES}),
    Role.AUDITOR: frozenset({Action.STATS, Action.AUDIT, Action.LIST_SOURCES}),
}


def parse_role(name: str) -> Role:
    try:
        return Role(name)
    except ValueError:
        known = ", ".join(r.value for r in Role)
        raise InvalidInput(f"unknown role {name!r}; the roles are {known}") from None


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: an API key or a signed-in user, and the role that decides what."""

    kind: str  # "key", "user" or "anonymous" (authentication switched off)
    id: str  # key id or username
    name: str
    role: Role

    def can(self, action: Action) -> bool:
        return action in ROLE_ACTIONS[self.role]

    def require(self, action: Action) -> None:
        if not self.can(action):
            raise PermissionDenied(f"the role {self.role.value} may not {action.value}")

    @property
    def rate_key(self) -> str:
        return f"{self.kind}:{self.id}"
