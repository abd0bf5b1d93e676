"""The description of an operator's own ONNX recognition model (picklable, no runtime)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class OnnxModelFile:
    """An operator's own recognition model: the file, how to feed it, what it is called."""

    path: Path
    name: str
    version: str
    input_size: int = 112
    mean: tuple[float, float, float] = (127.5, 127.5, 127.5)
    std: tuple[float, float, float] = (127.5, 127.5, 127.5)
    dim: int = 512
