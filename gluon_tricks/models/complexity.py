"""Parameters and multiply-adds of a network, read off its own graph by shape inference."""
import json

import mxnet as mx
import numpy as np


def count_parameters(net, input_shape=(1, 3, 224, 224)):
    """Trainable parameters (BN gamma/beta included, running statistics not)."""
    symbol = net(mx.sym.var("data"))
    arg_shapes, _, _ = symbol.infer_shape(data=input_shape)
    return int(sum(np.prod(shape) for name, shape in zip(symbol.list_arguments(), arg_shapes)
                   if name != "data"))


def count_multiply_adds(net, input_shape=(1, 3, 224, 224)):
    """Multiply-adds of the Convolution and FullyConnected layers for one image (not pooling,
    BN, activations), as the paper's Table 5 counts them."""
    symbol = net(mx.sym.var("data"))
    internals = symbol.get_internals()
    _, out_shapes, _ = internals.infer_shape(data=input_shape)
    shapes = dict(zip(internals.list_outputs(), out_shapes))
    total = 0
    nodes = json.loads(symbol.tojson())["nodes"]
    for node in nodes:
        if node["op"] not in ("Convolution", "FullyConnected"):
            continue
        weight_name = nodes[node["inputs"][1][0]]["name"]
        weight_shape = shapes[weight_name]
        if node["op"] == "Convolution":
            # weight: (out, in / groups, kh, kw): one multiply-add per weight per output pixel
            out_shape = shapes[node["name"] + "_output"]
            total += int(np.prod(out_shape[2:])) * int(np.prod(weight_shape))
        else:
            total += int(np.prod(weight_shape))
    return total
