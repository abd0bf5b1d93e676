"""An ONNX Runtime session built from model bytes, with thread settings the caller owns.

Each model object holds its own session (no global one): ingest workers and the server's
threads each build theirs. The CUDA provider is used when ``onnxruntime-gpu`` and a GPU
are present, the CPU otherwise.
"""

from __future__ import annotations

import onnxruntime as ort

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


def providers(device: str = "auto") -> list[str]:
    """Execution providers to try, best first: ``auto`` takes CUDA when it is there."""
    available = ort.get_available_providers()
    if device == "cpu" or CUDA not in available:
        return [CPU]
    return [CUDA, CPU]


def make_session(model: bytes, *, threads: int = 1, device: str = "auto") -> ort.InferenceSession:
    """A session of ``model`` using ``threads`` CPU threads for one call.

    One thread by default: facesearch runs one model per worker, and workers are the unit of
    parallelism (more threads per session on top of them only contend for the same cores).
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Quiet: warnings would go to stderr on every worker start.
    options.log_severity_level = 3
    return ort.InferenceSession(model, options, providers=providers(device))
