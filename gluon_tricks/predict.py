"""`gluon-tricks predict`: the top-k classes of images, with probabilities, from trained weights
(`--model M --params P`) or from an export (`--export PREFIX`).

Images get the validation preprocessing (shorter side resized, centre crop, normalisation: the
project's own `val_sample`) and run in batches. A file that is not an image, or that cannot be
decoded, is reported on stderr and skipped; the rest are predicted.
"""
import json
import os
import sys

import numpy as np

from gluon_tricks.errors import UserError


def add_arguments(parser):
    parser.add_argument("images", nargs="+", metavar="IMAGE|DIR",
                        help="image files, or folders (searched recursively)")
    parser.add_argument("--model", help="network name, with --params")
    parser.add_argument("--params", help="trained weights (.params)")
    parser.add_argument("--export", metavar="PREFIX", help="an export of `gluon-tricks export` "
                        "instead of --model/--params")
    parser.add_argument("--classes", metavar="FILE", help="class names, one a line (`pack`'s "
                        ".classes.txt); default: the export's, else the class indices")
    parser.add_argument("--topk", type=int, default=5, help="classes to show per image (default 5)")
    parser.add_argument("--input-size", type=int, default=None,
                        help="input image side (default: the export's, else 224; 299 for "
                             "inceptionv3)")
    parser.add_argument("--crop-ratio", type=float, default=None,
                        help="centre crop / resized shorter side (default: the export's, else "
                             "0.875)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per batch (default 32)")
    parser.add_argument("--json", action="store_true", help="one JSON line per image")


def collect_images(paths):
    """The files named, folders expanded recursively (sorted). A path that does not exist is a
    UserError: it is a typo, not a bad image."""
    files = []
    for path in paths:
        path = os.path.expanduser(str(path))
        if os.path.isdir(path):
            for root, dirs, names in os.walk(path):
                dirs.sort()
                files.extend(os.path.join(root, name) for name in sorted(names))
        elif os.path.isfile(path):
            files.append(path)
        else:
            raise UserError("no such file or folder: %s" % path)
    return files


def preprocess_files(files, input_size, crop_ratio):
    """(inputs (N, 3, S, S) float32, the N files read, [(file, reason)] of those skipped)."""
    from gluon_tricks.data import images
    from gluon_tricks.data.transforms import Scratch, val_sample
    inputs = np.empty((len(files), 3, input_size, input_size), np.float32)
    kept, skipped, scratch = [], [], Scratch()
    for path in files:
        if os.path.splitext(path)[1].lower() not in images.IMAGE_EXTENSIONS:
            skipped.append((path, "not an image (%s)" % "/".join(images.IMAGE_EXTENSIONS)))
            continue
        try:
            with open(path, "rb") as f:
                buf = f.read()
        except OSError as error:
            skipped.append((path, "cannot be read (%s)" % error.strerror))
            continue
        if not val_sample(buf, input_size, inputs[len(kept)], crop_ratio, scratch=scratch):
            skipped.append((path, "cannot be decoded (corrupt or not an image)"))
            continue
        kept.append(path)
    return inputs[:len(kept)], kept, skipped


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
    """(function numpy batch -> logits, class names, input size, crop ratio, fixed batch or None)
    from --export or --model/--params."""
    from gluon_tricks.export import (load_exported, read_class_names, read_export)
    from gluon_tricks.models import INPUT_SIZES
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
        batch = meta["input_shape"][0]
        return (load_exported(os.path.expanduser(args.export), meta), names, size,
                args.crop_ratio or meta.get("crop_ratio", 0.875), batch)
    if not (args.model and args.params):
        raise UserError("name the network: --model M --params P, or --export PREFIX")
    import mxnet as mx
    from gluon_tricks.evaluation.validation import load_network
    from gluon_tricks.training.finetune import params_classes
    count = params_classes(args.model, args.params)
    names = read_class_names(args.classes, count)
    size = args.input_size or INPUT_SIZES.get(args.model, 224)
    net = load_network(args.model, args.params, count, [mx.cpu()])
    return (lambda x: net(mx.nd.array(x)).asnumpy(), names, size, args.crop_ratio or 0.875, None)


def predict(args):
    """Yield (file, [(name, index, probability)] * k) per readable image; report the others."""
    from gluon_tricks.export import run_in_batches
    if args.topk < 1:
        raise UserError("--topk must be >= 1")
    if args.batch_size < 1:
        raise UserError("--batch-size must be >= 1")
    files = collect_images(args.images)
    run, names, size, crop_ratio, fixed_batch = predictor(args)
    if not 0 < crop_ratio <= 1:
        raise UserError("--crop-ratio must be in (0, 1]")
    if size < 32:
        raise UserError("--input-size must be >= 32")
    predicted = 0
    for start in range(0, len(files), args.batch_size):
        inputs, kept, skipped = preprocess_files(files[start:start + args.batch_size], size,
                                                 crop_ratio)
        for path, reason in skipped:
            print("gluon-tricks: skipped %s: %s" % (path, reason), file=sys.stderr)
        if not kept:
            continue
        logits = run_in_batches(run, inputs, fixed_batch)
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
