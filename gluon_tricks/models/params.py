"""The one reader of .params files, with one set of one-line errors; every MXNet layout loads
(structural names, `arg:`/`aux:` full names, full names less a network's prefix)."""
import os

import mxnet as mx
import numpy as np
from mxnet.gluon import nn

from gluon_tricks.errors import UserError, error_summary
from gluon_tricks.models import get_model

NDARRAY_MAGIC = b"\x12\x01\x00\x00\x00\x00\x00\x00"  # the first 8 bytes of an NDArray file


def file_kind(path):
    """"ndarray" (an MXNet NDArray file), "pickle" (GluonCV's .states) or "other"."""
    with open(path, "rb") as f:
        head = f.read(8)
    return "ndarray" if head == NDARRAY_MAGIC else "pickle" if head[:1] == b"\x80" else "other"


def non_finite(arrays):
    """Names of the arrays of {name: NDArray} holding NaN or infinity."""
    return [str(name) for name, array in arrays.items() if not np.isfinite(array.asnumpy()).all()]


def read_arrays(path, flag="--params", what="weights"):
    """{name: NDArray} of a .params file (`arg:`/`aux:` dropped); `flag`, `what` for errors."""
    path = os.path.expanduser(str(path))
    if not os.path.isfile(path):
        raise UserError("%s: no such file: %s" % (flag, path))
    kind = file_kind(path)
    swapped = "%s %s %%s optimizer state (.states), not weights (.params): swapped files?" % (
        flag, path)
    if kind == "pickle":
        raise UserError(swapped % "is a pickled")
    loaded, why = None, ""
    if kind == "ndarray":
        try:
            loaded = mx.nd.load(path)
        except mx.base.MXNetError as error:
            why = " (%s)" % error_summary(error)
    if isinstance(loaded, dict) and "__layout__" in loaded:  # optimizer_state's marker
        raise UserError(swapped % "holds an")
    if not isinstance(loaded, dict) or not loaded:
        raise UserError("%s %s does not hold %s: it is not an MXNet .params file%s"
                        % (flag, path, what, why))
    return {name.split(":", 1)[-1]: value for name, value in loaded.items()}


def by_structural_names(net, loaded):
    """The loaded arrays keyed by `net`'s structural names, whatever prefix the saver had."""
    own = net._collect_params_with_prefix()
    if set(loaded) & set(own):
        return loaded
    suffixes = {param.name[len(net.prefix):]: name for name, param in own.items()}
    prefixes = [name[:len(name) - len(s)] for name in loaded for s in suffixes
                if name.endswith(s) and name[:len(name) - len(s)][-1:] in ("", "_")]
    prefix = max(set(prefixes), key=prefixes.count) if prefixes else ""
    return {suffixes.get(name[len(prefix):], name) if name.startswith(prefix) else name: value
            for name, value in loaded.items()}


def classifier_prefix(net):
    """The structural name of the network's output layer (its last Dense block), e.g. 'fc'."""
    found = [name for name, block in net._collect_params_with_prefix().items()
             if isinstance(_block_of(net, name), nn.Dense)]
    if not found:
        raise UserError("%s has no Dense output layer" % type(net).__name__)
    return found[-1].rsplit(".", 1)[0]


def _block_of(net, structural_name):
    block = net
    for part in structural_name.split(".")[:-1]:
        block = block._children[part]
    return block


def params_classes(model, path, flag="--params"):
    """The class count of a .params file of `model`: rows of its output layer's weight."""
    net = get_model(model, classes=1)
    weight = classifier_prefix(net) + ".weight"
    loaded = by_structural_names(net, read_arrays(path, flag, "%s weights" % model))
    if weight not in loaded:
        raise UserError("%s %s does not hold %s weights: it has no %s" % (flag, path, model,
                                                                           weight))
    return int(loaded[weight].shape[0])


def load_into(net, path, ctx, flag="--params", what=None):
    """Set every parameter of `net` from `path` on `ctx`: all there, of its shapes, finite."""
    what = what or "the weights of this network (%s)" % net.name
    loaded = by_structural_names(net, read_arrays(path, flag, what))
    own = net._collect_params_with_prefix()
    missing, unknown = sorted(set(own) - set(loaded)), sorted(set(loaded) - set(own))
    wrong = [(name, loaded[name].shape, p.shape) for name, p in sorted(own.items())
             if name in loaded and (len(p.shape) != len(loaded[name].shape) or any(
                 d not in (0, e) for d, e in zip(p.shape, loaded[name].shape)))]
    reason = ("it lacks %d of them (e.g. %s)" % (len(missing), missing[0]) if missing else
              "it holds %d arrays the network does not have (e.g. %s)" % (len(unknown), unknown[0])
              if unknown else "its %s has shape %s, the network's is %s" % wrong[0] if wrong
              else None)
    if reason:
        raise UserError("%s %s does not hold %s: %s" % (flag, path, what, reason))
    bad = non_finite(dict(sorted(loaded.items())))
    if bad:  # a diverged run's weights: whatever they compute is meaningless
        raise UserError("%s %s holds NaN or infinite weights (%d arrays, first: %s); use an "
                        "earlier checkpoint" % (flag, path, len(bad), bad[0]))
    for name, param in own.items():
        param._load_init(loaded[name].astype(param.dtype, copy=False), ctx)


def load_network(model, path, classes, ctx, flag="--params"):
    """`model` for `classes` classes with the weights of `path`, hybridized, on `ctx`."""
    net = get_model(model, classes=classes)
    load_into(net, path, ctx, flag, "%s weights for %d classes" % (model, classes))
    net.hybridize()
    return net
