"""The one reader of .params files (eval, export, predict, resume, fine-tuning, class counts),
with one set of one-line errors: no such file, not a .params file, an optimizer state instead,
another network or class count, NaN or infinite weights.

Every layout MXNet writes loads: structural names (`layer1.0.conv1.weight`: save_parameters),
`arg:`/`aux:` + full names (export), and full names less the network's prefix (the older
save_params, whatever the name of the network that saved it).
"""
import os

import mxnet as mx
import numpy as np
from mxnet.gluon import nn

from gluon_tricks.errors import UserError, error_summary
from gluon_tricks.models import get_model

NDARRAY_MAGIC = b"\x12\x01\x00\x00\x00\x00\x00\x00"  # the first 8 bytes of an NDArray file
STATES_KEY = "__layout__"  # the array that marks this project's optimizer state files


def read_arrays(path, flag="--params", what="weights"):
    """{name: NDArray} of a .params file, `arg:`/`aux:` prefixes dropped; `flag` and `what`
    (e.g. "resnet50_v1d weights") name it in the errors."""
    path = os.path.expanduser(str(path))
    if not os.path.isfile(path):
        raise UserError("%s: no such file: %s" % (flag, path))

    def refuse(reason):
        return UserError("%s %s does not hold %s: %s" % (flag, path, what, reason))
    with open(path, "rb") as f:
        head = f.read(8)
    if head[:1] == b"\x80":
        raise UserError("%s %s is a pickled optimizer state (.states), not weights (.params): "
                        "swapped files?" % (flag, path))
    if head != NDARRAY_MAGIC:
        raise refuse("it is not an MXNet .params file")
    try:
        loaded = mx.nd.load(path)
    except mx.base.MXNetError as error:
        raise refuse("it is not an MXNet .params file (%s)" % error_summary(error)) from None
    if isinstance(loaded, dict) and STATES_KEY in loaded:
        raise UserError("%s %s holds an optimizer state (.states), not weights (.params): "
                        "swapped files?" % (flag, path))
    if not isinstance(loaded, dict) or not loaded:
        raise refuse("it holds no named parameters")
    return {name.split(":", 1)[1] if name.startswith(("arg:", "aux:")) else name: value
            for name, value in loaded.items()}


def by_structural_names(net, loaded):
    """The loaded arrays keyed by the network's structural names: files of full names (export)
    or of full names less some network's prefix (save_params) are mapped through `net`'s own."""
    own = net._collect_params_with_prefix()
    if set(loaded) & set(own):
        return loaded
    suffixes = {param.name[len(net.prefix):]: name for name, param in own.items()}
    prefixes = {}  # the prefix each loaded name would have, over the network's suffixes
    for name in loaded:
        for cut in range(len(name)):
            if name[cut:] in suffixes and (cut == 0 or name[cut - 1] == "_"):
                prefixes[name[:cut]] = prefixes.get(name[:cut], 0) + 1
                break
    if not prefixes:
        return loaded
    prefix = max(prefixes, key=prefixes.get)
    return {suffixes.get(name[len(prefix):], name) if name.startswith(prefix) else name: value
            for name, value in loaded.items()}


def classifier_prefix(net):
    """The structural name of the network's output layer (its last Dense block), e.g. 'fc'."""
    found = None

    def walk(block, prefix):
        nonlocal found
        if isinstance(block, nn.Dense):
            found = prefix
        for name, child in block._children.items():
            walk(child, prefix + "." + name if prefix else name)
    walk(net, "")
    if not found:
        raise UserError("%s has no Dense output layer" % type(net).__name__)
    return found


def params_classes(model, path, flag="--params"):
    """The class count of a .params file of `model`: rows of its output layer's weight."""
    net = get_model(model, classes=1)
    loaded = by_structural_names(net, read_arrays(path, flag, "%s weights" % model))
    weight = classifier_prefix(net) + ".weight"
    if weight not in loaded:
        raise UserError("%s %s does not hold %s weights: it has no %s"
                        % (flag, os.path.expanduser(str(path)), model, weight))
    return int(loaded[weight].shape[0])


def load_into(net, path, ctx, flag="--params", what=None):
    """Set every parameter of `net` from the .params file `path` (on the devices `ctx`): all must
    be there, with the network's shapes, nothing more, and finite."""
    what = what or "the weights of this network (%s)" % net.name
    loaded = by_structural_names(net, read_arrays(path, flag, what))
    own = net._collect_params_with_prefix()
    missing, unknown = sorted(set(own) - set(loaded)), sorted(set(loaded) - set(own))
    reason = ("it lacks %d of them (e.g. %s)" % (len(missing), missing[0]) if missing else
              "it holds %d arrays the network does not have (e.g. %s)" % (len(unknown), unknown[0])
              if unknown else None)
    for name, param in sorted(own.items()):
        shape = loaded[name].shape if reason is None else None
        if shape is not None and (len(shape) != len(param.shape) or any(
                own_dim not in (0, dim) for own_dim, dim in zip(param.shape, shape))):
            reason = "its %s has shape %s, the network's is %s" % (name, shape, param.shape)
    if reason:
        raise UserError("%s %s does not hold %s: %s"
                        % (flag, os.path.expanduser(str(path)), what, reason))
    bad = [name for name in sorted(own) if not np.isfinite(loaded[name].asnumpy()).all()]
    if bad:  # a diverged run's weights: whatever they compute is meaningless
        raise UserError("%s %s holds NaN or infinite weights (%d arrays, first: %s); use an "
                        "earlier checkpoint" % (flag, os.path.expanduser(str(path)), len(bad),
                                                bad[0]))
    for name, param in own.items():
        value = loaded[name]
        param._load_init(value.astype(param.dtype, copy=False) if param.dtype else value, ctx)


def load_network(model, path, classes, ctx, flag="--params"):
    """`model` for `classes` classes with the weights of `path`, hybridized, on `ctx`."""
    net = get_model(model, classes=classes)
    load_into(net, path, ctx, flag, "%s weights for %d classes" % (model, classes))
    net.hybridize()
    return net
