"""Where a photo was published: URLs as an access request by URL compares them.

A data subject may ask "am I in here?" without sending a photo, by naming where their
photos were published: one page (``exact``) or everything under a profile or a domain
(``prefix``). Both sides, the address asked about and the ``page_url`` / ``source_url``
stored with each copy, are reduced to one *key* before they are compared:

- the scheme is dropped: ``http`` and ``https`` name the same page (a crawler may have
  recorded either); only http(s) addresses are accepted;
- the host is lower-cased and the scheme's default port (80, 443) dropped; any
  ``user:password@`` is dropped;
- trailing slashes are dropped (``/u/alice/`` is ``/u/alice``; the root is the host);
  otherwise the path is compared as written (paths are case-sensitive);
- the fragment (``#...``) is dropped; the query (``?...``) is kept: it often names the page.

An exact request matches a copy whose key is equal. A prefix matches at a path-segment
boundary only: ``example.com/u/alice`` matches ``example.com/u/alice``,
``example.com/u/alice/photos/3`` and ``example.com/u/alice?tab=photos``, never
``example.com/u/alicia``. A prefix cannot hold a query.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from facesearch.errors import InvalidInput

MAX_URL_LENGTH = 2048
DEFAULT_PORTS = {"http": 80, "https": 443}


def url_key(url: str) -> str | None:
    """The comparable form of an http(s) URL (see the module's docstring), or None when
    ``url`` is not an http(s) URL with a host."""
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        host = parts.hostname
        port = parts.port
    except ValueError:  # a bad port, or brackets that are no IPv6 address
        return None
    if scheme not in DEFAULT_PORTS or not host:
        return None
    if ":" in host:  # an IPv6 address: keep it bracketed, as it is written in URLs
        host = f"[{host}]"
    if port is not None and port != DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    path = parts.path.rstrip("/")
    return host + path + (f"?{parts.query}" if parts.query else "")


@dataclass(frozen=True, slots=True)
class PublishedAt:
    """An access request's address: one page, or everything under a prefix."""

    url: str  # as shown in the report: scheme and key
    key: str
    prefix: bool

    @property
    def kind(self) -> str:
        """How the request matched, as the report and the audit log name it."""
        return "url-prefix" if self.prefix else "url-exact"

    def matches(self, stored: str | None) -> bool:
        """Whether a stored ``page_url`` or ``source_url`` falls under this request."""
        key = url_key(stored) if stored else None
        if key is None:
            return False
        if key == self.key:
            return True
        return self.prefix and (key.startswith(self.key + "/") or key.startswith(self.key + "?"))

    def like_pattern(self) -> str:
        """A SQL LIKE pattern (escape character ``\\``) that every matching stored URL
        satisfies, in whatever form it was stored: it narrows a catalog's scan; ``matches``
        decides. SQLite's LIKE ignores ASCII case, as hosts do."""
        head, mark, query = self.key.partition("?")
        host, slash, rest = head.partition("/")
        path = slash + rest
        # "%" around each part lets through a scheme, credentials, a default port and
        # trailing slashes, which the key does not hold.
        pattern = "%" + _escape(host) + "%" + _escape(path) + "%"
        return pattern + (_escape(mark + query) + "%" if mark else "")


def published_at(url: str, *, prefix: bool = False) -> PublishedAt:
    """The request for ``url``; InvalidInput, in one line, for anything but an http(s)
    address with a host (and, for a prefix, without a query)."""
    what = "URL prefix" if prefix else "URL"
    text = (url or "").strip()
    if not text:
        raise InvalidInput(f"give the {what} of the page, profile or site")
    if len(text) > MAX_URL_LENGTH:
        raise InvalidInput(f"the {what} is longer than {MAX_URL_LENGTH} characters")
    if not text.isprintable() or any(c.isspace() for c in text):
        raise InvalidInput(f"the {what} holds spaces or control characters")
    key = url_key(text)
    if key is None:
        shown = text if len(text) <= 80 else text[:77] + "..."
        raise InvalidInput(f"{shown!r} is not an http(s) URL with a host name")
    if prefix and "?" in key:
        raise InvalidInput(
            "a URL prefix cannot hold a query (?...): give the address of the profile or "
            "site, or ask for that exact page with --url / match 'exact'"
        )
    head, mark, query = key.partition("?")
    shown_url = f"{urlsplit(text).scheme.lower()}://{head if '/' in head else head + '/'}"
    return PublishedAt(url=shown_url + mark + query, key=key, prefix=prefix)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
