"""A small ONNX recognition network made in the tests with the ``onnx`` package.

Not a face model: a fixed random projection of the aligned chip, pooled to 16 x 16 (so
the same face gives the same vector and different faces different ones), with the input
and output of an ArcFace-class model (N x 3 x 112 x 112 in, 512-d out). It exercises the
plumbing of an operator's own model, nothing downloaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def write_tiny_net(
    path: Path, *, size: int = 112, dim: int = 512, seed: int = 7, batch: int | str = "n"
) -> Path:
    """Write the network to ``path``; ``batch`` 1 makes an export that takes one chip."""
    pool = size // 16
    features = 3 * (size // pool) ** 2
    rng = np.random.default_rng(seed)
    projection = (rng.standard_normal((features, dim)) / np.sqrt(features)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node(
                "AveragePool",
                ["chips"],
                ["pooled"],
                kernel_shape=[pool, pool],
                strides=[pool, pool],
            ),
            helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "projection"], ["vectors"]),
        ],
        "tiny-test-net",
        [helper.make_tensor_value_info("chips", TensorProto.FLOAT, [batch, 3, size, size])],
        [helper.make_tensor_value_info("vectors", TensorProto.FLOAT, [batch, dim])],
        [numpy_helper.from_array(projection, "projection")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path
