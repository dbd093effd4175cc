"""Top-1/top-5 error over a validation set, exact across Horovod ranks, and the logits of a
trained network: what the training loop validates with and `gluon-tricks eval` reports."""
import os

import numpy as np

from gluon_tricks.errors import UserError, error_summary


def devices(num_gpus):
    """The first `num_gpus` GPUs, or the CPU."""
    import mxnet as mx
    return [mx.gpu(i) for i in range(num_gpus)] if num_gpus else [mx.cpu()]


def iterate_logits(net, loader, ctx, dtype="float32"):
    """Yield (logits as float32 numpy, integer labels as numpy) batch by batch."""
    from mxnet import gluon
    for data, label in loader:
        parts = gluon.utils.split_and_load(data, ctx, even_split=False)
        outputs = [net(x.astype(dtype, copy=False)).astype("float32") for x in parts]
        logits = np.concatenate([o.asnumpy() for o in outputs])
        yield logits, label.asnumpy().astype(np.int64)


def count_correct(logits, labels, k=5):
    """(top-1 correct, top-k correct) for a batch: the true label is the argmax / among the k
    largest logits (ties broken by index, as argsort does)."""
    top_k = np.argsort(-logits, axis=1, kind="stable")[:, :k]
    return int(np.sum(top_k[:, 0] == labels)), int(np.sum(np.any(top_k == labels[:, None], axis=1)))


def validate(net, loader, ctx, world, dtype="float32"):
    """(err-top1, err-top5, images) over the whole validation set: every rank counts its share and
    the counts (not per-rank averages) are summed across ranks (`world.sum`)."""
    top1 = top5 = seen = 0
    for logits, labels in iterate_logits(net, loader, ctx, dtype):
        c1, c5 = count_correct(logits, labels)
        top1, top5, seen = top1 + c1, top5 + c5, seen + len(labels)
    top1, top5, seen = world.sum([top1, top5, seen], name="validation_counts")
    if seen == 0:
        raise UserError("the validation set is empty")
    return 1.0 - top1 / seen, 1.0 - top5 / seen, int(seen)


def load_network(model, params_path, classes, ctx):
    """A trained network from a .params file, hybridized, with a clear message on a mismatch."""
    import mxnet as mx
    from gluon_tricks.models import get_model
    path = os.path.expanduser(params_path)
    if not os.path.isfile(path):
        raise UserError("--params: no such file: %s" % params_path)
    net = get_model(model, classes=classes)
    try:
        net.load_parameters(path, ctx=ctx)
    except (AssertionError, mx.base.MXNetError, ValueError) as error:
        raise UserError("%s does not hold %s weights for %d classes: %s"
                        % (params_path, model, classes, error_summary(error))) from None
    bad = [name for name, param in net.collect_params().items()
           if not np.isfinite(param.data().asnumpy()).all()]
    if bad:  # a diverged run's weights: scoring them would report a meaningless error rate
        raise UserError("%s holds NaN or infinite weights (%d arrays, first: %s); evaluate an "
                        "earlier checkpoint" % (params_path, len(bad), bad[0]))
    net.hybridize()
    return net


def compute_logits(model_name, params_path, source, input_size=224, crop_ratio=0.875,
                   batch_size=32, num_workers=2, num_gpus=0):
    """(logits (N, K) float32, labels (N,) int64) of a trained network over a validation source."""
    from gluon_tricks.data.loader import ValLoader
    ctx = devices(num_gpus)
    net = load_network(model_name, params_path, source.num_classes, ctx)
    loader = ValLoader(source, batch_size, input_size=input_size, crop_ratio=crop_ratio,
                       num_workers=num_workers)
    pieces = list(iterate_logits(net, loader, ctx))
    if not pieces:
        raise UserError("the validation set is empty")
    return (np.concatenate([p[0] for p in pieces]).astype(np.float32),
            np.concatenate([p[1] for p in pieces]))
