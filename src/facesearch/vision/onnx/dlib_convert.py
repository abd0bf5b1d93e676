"""dlib's face recognition ResNet as an ONNX graph, converted from dlib's own file.

``dlib_face_recognition_resnet_model_v1.dat`` (CC0, from the ``face_recognition_models``
package) is dlib's serialised ``anet_type``: a loss layer, then the network's nesting as a
run of version numbers from the outermost layer in (2: a layer with parameters or an
operation, 1: a tag or skip, 3: the innermost layer, which holds the input layer), then
each layer's details from the input outwards, with its (empty) gradient buffers. This
module reads that format with numpy and checks it against the architecture dlib's
``dnn_face_recognition_ex.cpp`` declares: tags and skips carry their id in C++ template
arguments, not in the file, so the architecture below supplies them and the file must
agree layer by layer, or the conversion stops.

The graph takes RGB face chips as float32 N x 150 x 150 x 3 (0 to 255, as dlib's
``get_face_chip`` makes them) and returns the 128-d descriptors, unscaled. dlib's affine
layers (its frozen batch norm) are folded into the convolutions before them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

from facesearch.errors import ConfigError

Floats = npt.NDArray[np.float32]

INPUT_NAME = "chips"
OUTPUT_NAME = "descriptors"
# ONNX opset the graph is written for: every operator used here is unchanged since.
OPSET = 13


class _Reader:
    """dlib's serialisation primitives (dlib/serialize.h, dlib/dnn/tensor.h)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def read_int(self) -> int:
        # A control byte (low nibble: byte count, bit 7: negative), then little-endian bytes.
        control = self.data[self.pos]
        size = control & 0x0F
        start = self.pos + 1
        value = int.from_bytes(self.data[start : start + size], "little")
        self.pos = start + size
        return -value if control & 0x80 else value

    def read_float(self) -> float:
        mantissa = self.read_int()
        exponent = self.read_int()
        return float(mantissa * 2.0**exponent)

    def read_str(self) -> str:
        size = self.read_int()
        text = self.data[self.pos : self.pos + size].decode("ascii")
        self.pos += size
        return text

    def bools(self, count: int) -> None:
        # dlib writes a bool as the character '0' or '1'.
        for _ in range(count):
            if self.data[self.pos] not in b"01":
                raise ValueError(f"expected a bool at byte {self.pos}")
            self.pos += 1

    def tensor(self) -> Floats:
        version = self.read_int()
        if version != 2:
            raise ValueError(f"tensor version {version} at byte {self.pos}")
        shape = tuple(self.read_int() for _ in range(4))
        count = int(np.prod(shape))
        values = np.frombuffer(self.data, dtype="<f4", count=count, offset=self.pos)
        self.pos += 4 * count
        return values.astype(np.float32).reshape(shape)

    def alias(self) -> tuple[int, ...]:
        self.read_int()  # version
        return tuple(self.read_int() for _ in range(4))


@dataclass
class Layer:
    """One layer of the network, in forward order."""

    kind: str  # con, affine, relu, max_pool, avg_pool, add_prev, tag, skip, fc
    ident: int = 0  # the tag id of a tag, skip or add_prev
    weights: Floats | None = None
    bias: Floats | None = None
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    window: tuple[int, int] = (0, 0)


@dataclass
class DlibNetwork:
    """The parsed network: input normalisation, then layers from the input outwards."""

    chip_size: int
    channel_means: tuple[float, float, float]
    layers: list[Layer] = field(default_factory=list)


def _architecture() -> list[tuple[str, int]]:
    """dlib's ``anet_type`` in forward order (kind, tag id), from dnn_face_recognition_ex."""

    def block() -> list[tuple[str, int]]:
        return [("con", 0), ("affine", 0), ("relu", 0), ("con", 0), ("affine", 0)]

    def ares() -> list[tuple[str, int]]:
        return [("tag", 1), *block(), ("add_prev", 1), ("relu", 0)]

    def ares_down() -> list[tuple[str, int]]:
        tail = [("tag", 2), ("skip", 1), ("avg_pool", 0), ("add_prev", 2), ("relu", 0)]
        return [("tag", 1), *block(), *tail]

    layers = [("con", 0), ("affine", 0), ("relu", 0), ("max_pool", 0)]
    layers += ares() * 3  # level 4: 32 filters
    layers += ares_down() + ares() * 3  # level 3: 64
    layers += ares_down() + ares() * 2  # level 2: 128
    layers += ares_down() + ares() * 2  # level 1: 256
    layers += ares_down()  # level 0: 256
    layers += [("avg_pool", 0), ("fc", 0)]
    return layers


# The name each layer kind is serialised under.
_SERIALISED = {
    "con": "con_4",
    "affine": "affine_",
    "relu": "relu_",
    "max_pool": "max_pool_2",
    "avg_pool": "avg_pool_2",
    "add_prev": "add_prev_",
    "fc": "fc_2",
}


def _details(reader: _Reader, layer: Layer) -> None:
    name = reader.read_str()
    if name != _SERIALISED[layer.kind]:
        raise ValueError(f"expected {_SERIALISED[layer.kind]}, found {name!r}")
    if layer.kind == "con":
        params = reader.tensor().reshape(-1)
        filters, rows, cols, stride_y, stride_x, pad_y, pad_x = (
            reader.read_int() for _ in range(7)
        )
        weights_shape = reader.alias()
        reader.alias()
        for _ in range(4):
            reader.read_float()  # learning rate and weight decay multipliers
        size = int(np.prod(weights_shape))
        layer.weights = params[:size].reshape(weights_shape)
        layer.bias = params[size : size + filters]
        layer.window = (rows, cols)
        layer.stride = (stride_y, stride_x)
        layer.padding = (pad_y, pad_x)
    elif layer.kind == "affine":
        params = reader.tensor().reshape(-1)
        gamma_shape = reader.alias()
        reader.alias()
        if reader.read_int() != 0:
            raise ValueError("only dlib's per-channel (CONV_MODE) affine layers are converted")
        size = int(np.prod(gamma_shape))
        layer.weights = params[:size]
        layer.bias = params[size : 2 * size]
    elif layer.kind in ("max_pool", "avg_pool"):
        rows, cols, stride_y, stride_x, pad_y, pad_x = (reader.read_int() for _ in range(6))
        layer.window = (rows, cols)
        layer.stride = (stride_y, stride_x)
        layer.padding = (pad_y, pad_x)
    elif layer.kind == "fc":
        outputs = reader.read_int()
        inputs = reader.read_int()
        params = reader.tensor().reshape(-1)
        reader.alias()
        reader.alias()
        has_bias = reader.read_int() == 0  # dlib's FC_HAS_BIAS
        for _ in range(4):
            reader.read_float()
        layer.weights = params[: inputs * outputs].reshape(inputs, outputs)
        if has_bias:
            layer.bias = params[inputs * outputs : inputs * outputs + outputs]


def _gradient_buffers(reader: _Reader, count: int) -> None:
    for _ in range(count):
        reader.tensor()


def read_dlib_network(path: Path) -> DlibNetwork:
    """Parse dlib's serialised face recognition network; ValueError if it is another one."""
    reader = _Reader(path.read_bytes())
    if reader.read_int() != 1 or reader.read_str() != "loss_metric_2":
        raise ValueError("not dlib's metric-learning network (no loss_metric_2 header)")
    reader.read_float()  # margin
    reader.read_float()  # distance threshold
    nesting: list[int] = []
    while not nesting or nesting[-1] != 3:
        nesting.append(reader.read_int())
    expected = _architecture()
    forward_nesting = [2 if kind not in ("tag", "skip") else 1 for kind, _ in expected]
    forward_nesting[0] = 3
    if nesting[::-1] != forward_nesting:
        raise ValueError("the network's layers are not dlib's face recognition ResNet")
    if reader.read_str() != "input_rgb_image_sized":
        raise ValueError("expected an input_rgb_image_sized input layer")
    means = (reader.read_float(), reader.read_float(), reader.read_float())
    rows, cols = reader.read_int(), reader.read_int()
    if rows != cols:
        raise ValueError(f"non-square input {rows}x{cols}")
    network = DlibNetwork(chip_size=rows, channel_means=means)
    for index, (kind, ident) in enumerate(expected):
        layer = Layer(kind=kind, ident=ident)
        network.layers.append(layer)
        if kind in ("tag", "skip"):
            continue  # serialised as their nesting only
        _details(reader, layer)
        reader.bools(3)
        _gradient_buffers(reader, 3)
        if index == 0:
            reader.read_int()  # the innermost layer's sample expansion factor
    if reader.pos != len(reader.data):
        raise ValueError(f"{len(reader.data) - reader.pos} bytes left after the last layer")
    return network


class _GraphBuilder:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def constant(self, stem: str, value: npt.NDArray[np.generic]) -> str:
        name = self.name(stem)
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def node(self, op: str, inputs: list[str], **attrs: Any) -> str:
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out


def _conv_out(size: int, window: int, stride: int, pad: int) -> int:
    return 1 + (size + 2 * pad - window) // stride


def _pad_to(
    graph: _GraphBuilder, value: str, shape: tuple[int, int, int], target: tuple[int, int, int]
) -> str:
    """Zero-pad a C x H x W tensor at its end: dlib adds tensors of different sizes so."""
    if shape == target:
        return value
    ends = [0, *(t - s for s, t in zip(shape, target, strict=True))]
    pads = np.array([0, 0, 0, 0, *ends], dtype=np.int64)
    return graph.node("Pad", [value, graph.constant("pads", pads)], mode="constant")


def _layers(network: DlibNetwork) -> Iterator[tuple[Layer, Layer | None]]:
    """Each layer with the one after it (affine layers fold into the convolution before)."""
    layers = network.layers
    for index, layer in enumerate(layers):
        yield layer, layers[index + 1] if index + 1 < len(layers) else None


def build_onnx(network: DlibNetwork) -> onnx.ModelProto:
    """The ONNX graph computing the network's descriptors of RGB chips (N x S x S x 3)."""
    graph = _GraphBuilder()
    size = network.chip_size
    means = np.array(network.channel_means, dtype=np.float32).reshape(1, 3, 1, 1)
    value = graph.node("Transpose", [INPUT_NAME], perm=[0, 3, 1, 2])
    value = graph.node("Sub", [value, graph.constant("means", means)])
    # dlib's input layer: (pixel - mean) / 256.
    value = graph.node("Mul", [value, graph.constant("scale", np.array(1 / 256, np.float32))])
    shape = (3, size, size)
    tags: dict[int, tuple[str, tuple[int, int, int]]] = {}
    skip_affine = False
    for layer, after in _layers(network):
        if skip_affine:
            skip_affine = False
            continue
        if layer.kind == "con":
            assert layer.weights is not None and layer.bias is not None
            weights, bias = layer.weights, layer.bias
            if after is not None and after.kind == "affine":
                assert after.weights is not None and after.bias is not None
                weights = weights * after.weights.reshape(-1, 1, 1, 1)
                bias = bias * after.weights + after.bias
                skip_affine = True
            pad_y, pad_x = layer.padding
            value = graph.node(
                "Conv",
                [
                    value,
                    graph.constant("weights", weights.astype(np.float32)),
                    graph.constant("bias", bias.astype(np.float32)),
                ],
                kernel_shape=list(layer.window),
                strides=list(layer.stride),
                pads=[pad_y, pad_x, pad_y, pad_x],
            )
            shape = (
                weights.shape[0],
                _conv_out(shape[1], layer.window[0], layer.stride[0], pad_y),
                _conv_out(shape[2], layer.window[1], layer.stride[1], pad_x),
            )
        elif layer.kind == "affine":
            raise ValueError("an affine layer that does not follow a convolution")
        elif layer.kind == "relu":
            value = graph.node("Relu", [value])
        elif layer.kind in ("max_pool", "avg_pool"):
            if layer.window == (0, 0):  # dlib's avg_pool_everything
                value = graph.node("GlobalAveragePool", [value])
                shape = (shape[0], 1, 1)
                continue
            pad_y, pad_x = layer.padding
            op = "MaxPool" if layer.kind == "max_pool" else "AveragePool"
            value = graph.node(
                op,
                [value],
                kernel_shape=list(layer.window),
                strides=list(layer.stride),
                pads=[pad_y, pad_x, pad_y, pad_x],
            )
            shape = (
                shape[0],
                _conv_out(shape[1], layer.window[0], layer.stride[0], pad_y),
                _conv_out(shape[2], layer.window[1], layer.stride[1], pad_x),
            )
        elif layer.kind == "tag":
            tags[layer.ident] = (value, shape)
        elif layer.kind == "skip":
            value, shape = tags[layer.ident]
        elif layer.kind == "add_prev":
            other, other_shape = tags[layer.ident]
            target = (
                max(shape[0], other_shape[0]),
                max(shape[1], other_shape[1]),
                max(shape[2], other_shape[2]),
            )
            value = graph.node(
                "Add",
                [_pad_to(graph, value, shape, target), _pad_to(graph, other, other_shape, target)],
            )
            shape = target
        elif layer.kind == "fc":
            assert layer.weights is not None
            value = graph.node("Flatten", [value], axis=1)
            value = graph.node("MatMul", [value, graph.constant("fc", layer.weights)])
            if layer.bias is not None:
                value = graph.node("Add", [value, graph.constant("fc_bias", layer.bias)])
    graph.nodes.append(helper.make_node("Identity", [value], [OUTPUT_NAME]))
    outputs = 0 if network.layers[-1].weights is None else network.layers[-1].weights.shape[1]
    model = helper.make_model(
        helper.make_graph(
            graph.nodes,
            "dlib_face_recognition_resnet_model_v1",
            [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["n", size, size, 3])],
            [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["n", outputs])],
            graph.initializers,
        ),
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="facesearch.vision.onnx.dlib_convert",
    )
    # onnxruntime reads IR versions up to its own; 8 is read by every release since 1.10.
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def convert(dat_file: Path) -> bytes:
    """The serialised ONNX model of dlib's network file; ConfigError if it cannot be read."""
    try:
        network = read_dlib_network(dat_file)
    except (OSError, ValueError, IndexError) as exc:
        raise ConfigError(f"cannot convert dlib network {dat_file}: {exc}") from None
    data: bytes = build_onnx(network).SerializeToString()
    return data


def cached_conversion(dat_file: Path, cache: Path, name: str) -> bytes:
    """The converted model from ``cache/name``, converting and storing it on first use.

    Written to a temporary file and renamed, so that a process reading the cache never sees
    half a model while another one writes it.
    """
    target = cache / name
    if target.is_file():
        return target.read_bytes()
    data = convert(dat_file)
    cache.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{np.random.default_rng().integers(1 << 30)}.tmp")
    partial.write_bytes(data)
    partial.replace(target)
    return data
