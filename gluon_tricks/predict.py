"""`gluon-tricks predict`: the top-k classes of images with probabilities, from trained weights
or a verified export, with the validation preprocessing; unreadable files are reported and
skipped."""
import json
import sys

import mxnet as mx
import numpy as np

from gluon_tricks.errors import UserError
from gluon_tricks.inference import (add_weights_arguments, class_names, collect_images,
                                    load_exported, preprocess_files, read_class_names, read_export,
                                    run_in_batches, say, trained_weights)
from gluon_tricks.models.params import load_network, params_classes


def add_arguments(parser):
    parser.add_argument("images", nargs="+", metavar="IMAGE|DIR",
                        help="image files, or folders (searched recursively)")
    add_weights_arguments(parser, params_required=False)
    parser.add_argument("--export", metavar="PREFIX", help="an export of `gluon-tricks export` "
                        "instead of --model/--params")
    parser.add_argument("--topk", type=int, default=5, help="classes to show per image (default 5)")
    parser.add_argument("--crop-ratio", type=float, default=None,
                        help="centre crop / resized shorter side (default: the export's, else "
                             "0.875)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per batch (default 32)")
    parser.add_argument("--json", action="store_true", help="one JSON line per image")


def softmax(logits):
    """Row-wise softmax in float64, stable for large logits."""
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def top_k(probabilities, names, k):
    """Per row: [(class name, class index, probability)] of the k most probable, best first."""
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return [[(names[j], int(j), float(row[j])) for j in ranks]
            for row, ranks in zip(probabilities, order)]


def predictor(args):
    """(function numpy batch -> logits, class names, input size, crop ratio, fixed batch or None,
    what it is) from --export or --params."""
    if args.export:
        if args.model or args.params:
            raise UserError("give either --export PREFIX or --model and --params, not both")
        meta = read_export(args.export)
        names = meta["classes"]
        if args.classes:
            names = read_class_names(args.classes, len(names))
        size = meta["input_shape"][2]
        if args.input_size and args.input_size != size:
            raise UserError("--input-size %d: the export takes %d x %d inputs"
                            % (args.input_size, size, size))
        return (load_exported(args.export, meta), names, size,
                args.crop_ratio or meta.get("crop_ratio", 0.875), meta["input_shape"][0],
                "the export %s" % args.export)
    if not args.params:
        raise UserError("name the network: --model M --params P, or --export PREFIX")
    trained = trained_weights(args.params, args.model, args.input_size, args.force)
    count = params_classes(trained.model, args.params)
    names = class_names(trained, count, args.classes)
    net = load_network(trained.model, args.params, count, [mx.cpu()])
    say(trained.notes)
    return (lambda x: net(mx.nd.array(x)).asnumpy(), names, trained.input_size,
            args.crop_ratio or 0.875, None, args.params)


def predict(args):
    """Yield (file, [(name, index, probability)] * k) per readable image; report the others."""
    if args.topk < 1:
        raise UserError("--topk must be >= 1")
    if args.batch_size < 1:
        raise UserError("--batch-size must be >= 1")
    files = collect_images(args.images)
    run, names, size, crop_ratio, fixed_batch, where = predictor(args)
    if not 0 < crop_ratio <= 1:
        raise UserError("--crop-ratio must be in (0, 1]")
    predicted = 0
    for start in range(0, len(files), args.batch_size):
        inputs, kept, skipped = preprocess_files(files[start:start + args.batch_size], size,
                                                 crop_ratio)
        for path, reason in skipped:
            print("gluon-tricks: skipped %s: %s" % (path, reason), file=sys.stderr)
        if not kept:
            continue
        logits = run_in_batches(run, inputs, fixed_batch, where)
        for path, top in zip(kept, top_k(softmax(logits), names, min(args.topk, len(names)))):
            predicted += 1
            yield path, top
    if predicted == 0:
        raise UserError("none of the %d files is an image that can be read" % len(files))


def run(args):
    for path, top in predict(args):
        if args.json:
            print(json.dumps({"image": path, "top": [
                {"class": name, "index": index, "probability": p} for name, index, p in top]}))
        else:
            print("%s: %s" % (path, ", ".join("%s %.1f%%" % (name, 100 * p)
                                              for name, _, p in top)))
    return 0
