"""An ONNX Runtime session owned by the adapter that made it, with its threads set here.

No module-level session: each detector or embedder builds its own, so a worker process or
thread holds its own copy and nothing is shared by accident. CUDA is used when
``onnxruntime-gpu`` is installed and sees a GPU; the CPU otherwise.
"""

from __future__ import annotations

from typing import Any

import onnxruntime as ort

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


def providers(prefer_gpu: bool = True) -> list[str]:
    """The execution providers to use, best first: CUDA when present, always the CPU."""
    available = ort.get_available_providers()
    return [CUDA, CPU] if prefer_gpu and CUDA in available else [CPU]


def open_session(
    model: bytes, *, intra_threads: int = 1, inter_threads: int = 1, prefer_gpu: bool = True
) -> Any:
    """An ``InferenceSession`` over the ONNX graph in ``model``.

    ``intra_threads``: threads one operator may use. One by default: the engine runs one
    model per worker (process or thread), so letting each grab every core would make the
    workers fight over them. 0 lets ONNX Runtime pick (all cores), for a single caller.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_threads
    options.inter_op_num_threads = inter_threads
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # ONNX Runtime logs warnings (e.g. unused initialisers) to stderr; only errors matter.
    options.log_severity_level = 3
    return ort.InferenceSession(model, sess_options=options, providers=providers(prefer_gpu))


def session_providers(session: Any) -> list[str]:
    """The providers a session really runs on (CUDA may have failed to start)."""
    return list(session.get_providers())
