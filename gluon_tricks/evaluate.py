"""Validation: top-1/top-5 error over a validation set, exact across Horovod ranks, and the
`gluon-tricks eval` command that also saves logits for the logit-gap figure (Figure 4b)."""
import os

import numpy as np

from gluon_tricks.errors import UserError, error_summary


def _devices(num_gpus):
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
    the counts (not per-rank averages) are summed across ranks."""
    top1 = top5 = seen = 0
    for logits, labels in iterate_logits(net, loader, ctx, dtype):
        c1, c5 = count_correct(logits, labels)
        top1, top5, seen = top1 + c1, top5 + c5, seen + len(labels)
    top1, top5, seen = world.sum([top1, top5, seen], name="validation_counts")
    if seen == 0:
        raise UserError("the validation set is empty")
    return 1.0 - top1 / seen, 1.0 - top5 / seen, int(seen)


def load_network(model, params_path, classes, ctx, input_size):
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
    net.hybridize()
    return net


def compute_logits(model_name, params_path, source, input_size=224, crop_ratio=0.875,
                   batch_size=32, num_workers=2, num_gpus=0):
    """(logits (N, K) float32, labels (N,) int64) of a trained network over a validation source."""
    from gluon_tricks.data.loader import ValLoader
    ctx = _devices(num_gpus)
    net = load_network(model_name, params_path, source.num_classes, ctx, input_size)
    loader = ValLoader(source, batch_size, input_size=input_size, crop_ratio=crop_ratio,
                       num_workers=num_workers)
    pieces = list(iterate_logits(net, loader, ctx))
    if not pieces:
        raise UserError("the validation set is empty")
    return (np.concatenate([p[0] for p in pieces]).astype(np.float32),
            np.concatenate([p[1] for p in pieces]))


def save_logits(path, logits, labels, model):
    """The logits file read by `gluon-tricks plot gap`: logits (N, K), labels (N,), model name."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = path + ".tmp.npz"
    np.savez(tmp, logits=logits.astype(np.float32), labels=labels.astype(np.int64),
             model=np.array(model))
    os.replace(tmp, path)


def add_arguments(parser):
    from gluon_tricks.training.config import add_data_arguments
    parser.add_argument("--model", required=True, help="network name, e.g. resnet50_v1d")
    parser.add_argument("--params", required=True, help="trained weights (.params)")
    add_data_arguments(parser, train=False)
    parser.add_argument("--num-gpus", type=int, default=0, help="GPUs to use (0: CPU)")
    parser.add_argument("--save-logits", metavar="FILE", help="also save logits and labels (.npz)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args):
    import json
    from gluon_tricks.models import INPUT_SIZES
    from gluon_tricks.training.config import check_devices
    from gluon_tricks.training.inputs import data_sources
    args.dtype = "float32"
    check_devices(args)
    _, source = data_sources(args, train=False)
    input_size = args.input_size or INPUT_SIZES.get(args.model, 224)
    logits, labels = compute_logits(args.model, args.params, source, input_size, args.crop_ratio,
                                    args.batch_size, args.num_workers, args.num_gpus)
    top1, top5 = count_correct(logits, labels)
    result = {"model": args.model, "params": args.params, "images": int(len(labels)),
              "err_top1": 1.0 - top1 / len(labels), "err_top5": 1.0 - top5 / len(labels)}
    if args.save_logits:
        save_logits(args.save_logits, logits, labels, args.model)
        result["logits"] = args.save_logits
    if args.json:
        print(json.dumps(result))
    else:
        print("%s on %d images: err-top1=%.4f err-top5=%.4f (top-1 accuracy %.2f%%)"
              % (args.model, result["images"], result["err_top1"], result["err_top5"],
                 100 * (1 - result["err_top1"])))
        if args.save_logits:
            print("logits saved to %s" % args.save_logits)
    return 0
