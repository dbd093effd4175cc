"""Top-1/top-5 error over a validation set, exact across Horovod ranks, and the logits of a
trained network: what the training loop validates with and `gluon-tricks eval` reports."""
import mxnet as mx
import numpy as np
from mxnet import gluon

from gluon_tricks.data.loader import ValLoader
from gluon_tricks.errors import UserError
from gluon_tricks.models.params import load_network


def iterate_logits(net, loader, ctx, dtype="float32"):
    """Yield (logits as float32 numpy, integer labels as numpy) batch by batch."""
    for data, label in loader:
        parts = gluon.utils.split_and_load(data, ctx, even_split=False)
        outputs = [net(x.astype(dtype, copy=False)).astype("float32") for x in parts]
        logits = np.concatenate([o.asnumpy() for o in outputs])
        yield logits, label.asnumpy().astype(np.int64)


def count_correct(logits, labels, k=5):
    """(top-1 correct, top-k correct) of a batch (ties broken by index)."""
    top_k = np.argsort(-logits, axis=1, kind="stable")[:, :k]
    return int(np.sum(top_k[:, 0] == labels)), int(np.sum(np.any(top_k == labels[:, None], axis=1)))


def validate(net, loader, ctx, world, dtype="float32"):
    """(err-top1, err-top5, images) over the validation set, counts summed across ranks."""
    top1 = top5 = seen = 0
    for logits, labels in iterate_logits(net, loader, ctx, dtype):
        c1, c5 = count_correct(logits, labels)
        top1, top5, seen = top1 + c1, top5 + c5, seen + len(labels)
    top1, top5, seen = world.sum([top1, top5, seen], name="validation_counts")
    if seen == 0:
        raise UserError("the validation set is empty")
    return 1.0 - top1 / seen, 1.0 - top5 / seen, int(seen)


def compute_logits(model_name, params_path, source, input_size=224, crop_ratio=0.875,
                   batch_size=32, num_workers=2, ctx=None):
    """(logits (N, K) float32, labels (N,) int64) of trained weights over a validation source."""
    ctx = ctx or [mx.cpu()]
    net = load_network(model_name, params_path, source.num_classes, ctx)
    loader = ValLoader(source, batch_size, input_size=input_size, crop_ratio=crop_ratio,
                       num_workers=num_workers)
    pieces = list(iterate_logits(net, loader, ctx))
    if not pieces:
        raise UserError("the validation set is empty")
    return (np.concatenate([p[0] for p in pieces]).astype(np.float32),
            np.concatenate([p[1] for p in pieces]))
