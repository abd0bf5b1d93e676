"""The errors facesearch raises, split by what the caller can do about them.

::

    FacesearchError
     ├── InvalidInput        the request or a file is wrong: fix it and retry
     │    └── NoFaceFound    the probe photo holds no detectable face
     ├── NotFound            an id or path that does not exist
     ├── PermissionDenied    the caller may not do this
     ├── ModelMismatch       vectors made by one model searched with another
     ├── BackendUnavailable  a store or index cannot be opened or reached
     └── ConfigError         a setting is missing or contradictory

Errors know nothing of HTTP or exit codes: the CLI and the API map them once each.
"""

from __future__ import annotations


class FacesearchError(Exception):
    """Root of every error facesearch raises on purpose."""


class InvalidInput(FacesearchError):
    """The input (a file, a parameter, a manifest row) cannot be used as given."""


class NoFaceFound(InvalidInput):
    """A probe photo in which the detector found no face."""


class NotFound(FacesearchError):
    """The thing asked for does not exist."""


class PermissionDenied(FacesearchError):
    """The caller is not allowed to do this."""


class ModelMismatch(FacesearchError):
    """Embeddings made by one face model were searched with another."""


class BackendUnavailable(FacesearchError):
    """A store or an index could not be opened, read or written."""


class ConfigError(FacesearchError):
    """The configuration is invalid."""
