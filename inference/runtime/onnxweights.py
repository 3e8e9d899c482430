"""Weights of an exported model file, loaded back into its PyTorch module (for the torch backend).

A shipped model may come as an ONNX file alone (no `.pt` beside it). Its graph is the export of
the architecture's inference module (`SegmentationModel.for_inference()`), with every BatchNorm
folded into the convolution before it. So the torch backend can still run it: build the registered
architecture, run its inference module once with hooks to list its convolutions in call order
(and which BatchNorm reads each one's output), pair them one to one with the ONNX graph's Conv
nodes in graph order (shapes and groups must agree), then copy each Conv's weight and bias in; a
BatchNorm after a convolution becomes the identity plus the folded bias. A file whose graph kept
BatchNormalization nodes (an older export of the trained module: all of them, or those that do
not follow a convolution) gives them, in order, to those BatchNorms instead. Every parameter of the
module must be covered. The caller checks the result against ONNX Runtime on the same input.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from polypview.errors import ModelFileError


def load_proto(path: Path, **options):
    """The ONNX ModelProto of a model file; ModelFileError (one line) when it is not one."""
    import onnx

    try:
        return onnx.load(str(path), **options)
    except Exception as exc:  # protobuf raises DecodeError, onnx its own classes
        raise ModelFileError(f"model file {path} is not a valid ONNX file ({exc}): re-export it") from None


def onnx_layers(path: Path) -> tuple[list[dict], list[dict]]:
    """The graph's Conv nodes in order, {"name", "weight", "bias" (or None), "group"}, and its
    BatchNormalization nodes in order, {"name", "scale", "bias", "mean", "var", "eps"}, as float32 arrays."""
    from onnx import numpy_helper

    proto = load_proto(path)
    tensors = {init.name: numpy_helper.to_array(init) for init in proto.graph.initializer}
    for node in proto.graph.node:  # weights stored fp16 are cast to float32 by a Cast node
        if node.op_type in ("Cast", "Identity") and node.input and node.input[0] in tensors:
            tensors[node.output[0]] = tensors[node.input[0]]
        elif node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            tensors[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    convs, bns, weighted = [], [], set()
    for node in proto.graph.node:
        if node.op_type in ("Cast", "Identity"):
            continue
        if node.op_type == "BatchNormalization" and all(i in tensors for i in node.input[1:5]):
            eps = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5)
            scale, bias, mean, var = (tensors[i].astype(np.float32) for i in node.input[1:5])
            bns.append({"name": node.name, "scale": scale, "bias": bias, "mean": mean, "var": var, "eps": eps})
            continue
        if node.op_type != "Conv":
            if any(i in tensors and tensors[i].size > 64 for i in node.input):
                weighted.add(node.op_type)
            continue
        if len(node.input) < 2 or node.input[1] not in tensors:
            raise ModelFileError(f"model file {path}: Conv {node.name!r} has no stored weight")
        bias = tensors.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        convs.append({"name": node.name, "weight": tensors[node.input[1]].astype(np.float32),
                      "bias": None if bias is None else bias.astype(np.float32), "group": int(group)})
    if weighted:
        raise ModelFileError(f"model file {path}: weights outside Conv nodes ({', '.join(sorted(weighted))}) "
                             "cannot be loaded into PyTorch: pass the .pt checkpoint")
    return convs, bns


def module_layers(torch, net, size: tuple[int, int]) -> tuple[list[tuple], list]:
    """(conv, batchnorm reading its output or None) for each Conv2d call of one forward pass, in order,
    and every BatchNorm2d call in order."""
    nn = torch.nn
    calls: list[list] = []
    bn_calls: list = []
    last = {}

    def after_conv(module, inputs, output):
        calls.append([module, None])
        last["out"] = output

    def before_bn(module, inputs):
        bn_calls.append(module)
        if calls and inputs and inputs[0] is last.get("out") and calls[-1][1] is None:
            calls[-1][1] = module

    hooks = [m.register_forward_hook(after_conv) for m in net.modules() if isinstance(m, nn.Conv2d)]
    hooks += [m.register_forward_pre_hook(before_bn) for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    try:
        with torch.no_grad():
            net(torch.zeros(1, 3, *size))
    finally:
        for hook in hooks:
            hook.remove()
    return [tuple(c) for c in calls], bn_calls


def load_onnx_weights(torch, net, path: Path, size: tuple[int, int], architecture: str) -> None:
    """Copy model file `path`'s Conv weights into inference module `net` (see the module docstring)."""
    convs, bns = onnx_layers(path)
    calls, bn_calls = module_layers(torch, net, size)
    source = f"model file {path}"
    after_conv = {id(bn) for _, bn in calls if bn is not None}
    unfolded = [bn for bn in bn_calls if id(bn) not in after_conv]
    if len(bns) == len(bn_calls) and bns:
        explicit = bn_calls
    elif len(bns) == len(unfolded):
        explicit = unfolded
    else:
        raise ModelFileError(f"{source} has {len(bns)} BatchNormalization nodes, {architecture} runs "
                             f"{len(bn_calls)} BatchNorms: it was exported from another architecture or version")
    folded = after_conv - {id(bn) for bn in explicit}
    if len(calls) != len(convs):
        raise ModelFileError(f"{source} has {len(convs)} convolutions, {architecture} runs {len(calls)}: "
                             "it was exported from another architecture or version")
    covered: set[int] = set()
    assigned: dict[int, np.ndarray] = {}
    with torch.no_grad():
        for i, ((conv, bn), onnx) in enumerate(zip(calls, convs)):
            weight, bias = onnx["weight"], onnx["bias"]
            if tuple(conv.weight.shape) != weight.shape or conv.groups != onnx["group"]:
                raise ModelFileError(
                    f"{source}: convolution {i} ({onnx['name']}) is {weight.shape} in {onnx['group']} groups, "
                    f"{architecture} has {tuple(conv.weight.shape)} in {conv.groups}: not an export of this architecture")
            if id(conv) in assigned and not np.array_equal(assigned[id(conv)], weight):
                raise ModelFileError(f"{source}: convolution {i} reuses a layer with other weights")
            assigned[id(conv)] = weight
            conv.weight.copy_(torch.from_numpy(weight))
            covered.add(id(conv.weight))
            where = f"{source}: convolution {i} ({onnx['name']})"
            bn = bn if bn is not None and id(bn) in folded else None  # BNs kept in the graph are set below
            _set_bias(torch, conv, bn, bias, where)
            covered.update(id(p) for p in ([conv.bias] if conv.bias is not None else []))
            if bn is not None:
                covered.update(id(t) for t in (bn.weight, bn.bias) if t is not None)
        for i, (bn, onnx) in enumerate(zip(explicit, bns)):
            _set_batchnorm(torch, bn, onnx, f"{source}: BatchNormalization {i} ({onnx['name']})")
            covered.update(id(t) for t in (bn.weight, bn.bias) if t is not None)
    left = [name for name, p in net.named_parameters() if id(p) not in covered]
    if left:
        raise ModelFileError(f"{source}: {architecture} has parameters no Conv of the file sets ({', '.join(left[:3])}): "
                             "pass the .pt checkpoint")


def _set_batchnorm(torch, bn, onnx: dict, where: str) -> None:
    if onnx["mean"].shape != tuple(bn.running_mean.shape):
        raise ModelFileError(f"{where} has {onnx['mean'].shape[0]} channels, the architecture's {bn.num_features}")
    if bn.weight is None or bn.bias is None:
        raise ModelFileError(f"{where}: the architecture's BatchNorm has no affine parameters")
    # the file's epsilon is folded into the variance, so the module's own eps gives the same scale
    var = onnx["var"] + np.float32(onnx["eps"] - bn.eps)
    for tensor, value in ((bn.weight, onnx["scale"]), (bn.bias, onnx["bias"]), (bn.running_mean, onnx["mean"]),
                          (bn.running_var, var)):
        tensor.copy_(torch.from_numpy(np.ascontiguousarray(value)))


def _set_bias(torch, conv, bn, bias: np.ndarray | None, where: str) -> None:
    """The folded bias goes into the BatchNorm after the conv (made an identity), else into the conv."""
    value = torch.from_numpy(bias) if bias is not None else torch.zeros(conv.out_channels)
    if bn is not None:
        if conv.bias is not None:
            conv.bias.zero_()
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0 - bn.eps)  # so that (x - 0) / sqrt(var + eps) = x
        if bn.weight is not None:
            bn.weight.fill_(1.0)
        if bn.bias is None:
            raise ModelFileError(f"{where}: its BatchNorm has no bias to take the folded one")
        bn.bias.copy_(value)
    elif conv.bias is not None:
        conv.bias.copy_(value)
    elif bias is not None and np.any(bias):
        raise ModelFileError(f"{where} has a bias, the architecture's convolution has none")
