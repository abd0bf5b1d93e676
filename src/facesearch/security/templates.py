"""TemplateCodec: face templates (float32 vectors) to the bytes a store keeps, and back.

Whoever builds the stores (the engine) builds one codec, sealed when the home is
encrypted, and hands it to every store that keeps templates (the catalog, the suppression
list). The stores keep the bytes they are given and never decide whether or how to seal.
Plain bytes are the vector's float32 buffer; sealed ones are that buffer sealed by
``Sealer`` (the format every home has used: existing homes open unchanged).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from facesearch.security.sealing import Sealer


class TemplateCodec:
    """Encodes templates for storage (sealed when given a key) and decodes them."""

    def __init__(self, sealer: Sealer | None = None) -> None:
        self.sealer = sealer or Sealer(None)

    @property
    def sealed(self) -> bool:
        return self.sealer.enabled

    def encode(self, vector: npt.ArrayLike) -> bytes:
        return self.sealer.seal(np.asarray(vector, dtype=np.float32).tobytes())

    def decode(self, blob: bytes) -> npt.NDArray[np.float32]:
        """One template; a ConfigError for a sealed blob without the key or with another."""
        return np.frombuffer(self.sealer.open(blob), dtype=np.float32)

    def decode_many(self, blobs: Iterable[bytes]) -> npt.NDArray[np.float32]:
        """Templates of one dimension as the rows of one array (n, dim); (0, 0) for none."""
        opened = [self.sealer.open(b) for b in blobs]
        if not opened:
            return np.empty((0, 0), dtype=np.float32)
        return np.frombuffer(b"".join(opened), dtype=np.float32).reshape(len(opened), -1)
