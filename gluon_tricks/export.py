"""`gluon-tricks export`: a trained network as an MXNet symbol + params or as ONNX (MXNet's own
exporter), checked against the network; PREFIX.json beside it holds the class names, input,
preprocessing, the check and each file's size and SHA-256."""
import json
import os
import sys
import tempfile

import mxnet as mx
import numpy as np

from gluon_tricks.data.transforms import MEAN_RGB, STD_RGB
from gluon_tricks.errors import UserError, error_summary
from gluon_tricks.inference import (FORMATS, INPUT_NAME, add_weights_arguments, class_names,
                                    collect_images, load_exported, preprocess_files,
                                    run_in_batches, say, trained_weights, write_description)
from gluon_tricks.models.params import load_network, params_classes

CHECK_IMAGES = 4  # random inputs when no --check-images are given


def add_arguments(parser):
    add_weights_arguments(parser)
    parser.add_argument("--out", required=True, metavar="PREFIX",
                        help="mxnet: PREFIX-symbol.json + PREFIX-0000.params; onnx: PREFIX.onnx; "
                             "both: PREFIX.json (class names, input, preprocessing, digests)")
    parser.add_argument("--format", choices=FORMATS, default="mxnet", help="default mxnet")
    parser.add_argument("--batch-size", default="1", metavar="B|dynamic",
                        help="ONNX: a fixed batch size or `dynamic` (default 1); an MXNet "
                             "symbol takes any batch size")
    parser.add_argument("--crop-ratio", type=float, default=0.875,
                        help="validation crop ratio, recorded for prediction (default 0.875)")
    parser.add_argument("--check-images", nargs="+", metavar="IMAGE|DIR",
                        help="images to compare the export with the network on (default: %d "
                             "random inputs)" % CHECK_IMAGES)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def parse_batch_size(value):
    """An int >= 1, or None for a dynamic batch dimension."""
    if str(value).lower() == "dynamic":
        return None
    try:
        batch = int(value)
    except ValueError:
        batch = 0
    if batch < 1:
        raise UserError("--batch-size must be a positive integer or `dynamic`, not %r" % value)
    return batch


def check_inputs(paths, input_size, crop_ratio, count=CHECK_IMAGES, seed=0):
    """(N, 3, S, S) float32 inputs for the check: the images, or `count` seeded random ones."""
    if paths:
        batch, _, skipped = preprocess_files(collect_images(paths), input_size, crop_ratio)
        for path, reason in skipped:
            print("gluon-tricks: skipped %s: %s" % (path, reason), file=sys.stderr)
        if len(batch) == 0:
            raise UserError("--check-images: none of the images can be read")
        return batch
    rng = np.random.default_rng(seed)
    return rng.standard_normal((count, 3, input_size, input_size)).astype(np.float32)


def _export_symbol(net, prefix):
    """PREFIX-symbol.json and PREFIX-0000.params of a hybridized network that has run once."""
    net.export(prefix, epoch=0)
    return prefix + "-symbol.json", prefix + "-0000.params"


def _remove_initializer_inputs(onnx_path):
    """Keep only the real graph input: MXNet's exporter lists every weight as one too, which
    keeps onnxruntime from folding constants."""
    import onnx
    model = onnx.load(onnx_path)
    weights = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    onnx.checker.check_model(model)
    onnx.save(model, onnx_path)


def export_onnx(symbol_file, params_file, onnx_path, input_size, batch):
    """ONNX from the MXNet files through `mx.onnx.export_model`; batch None: a dynamic batch."""
    shape = (batch or 1, 3, input_size, input_size)
    options = {}
    if batch is None:
        options = {"dynamic": True, "dynamic_input_shapes": [("batch", 3, input_size, input_size)]}
    try:
        mx.onnx.export_model(symbol_file, params_file, [shape], [np.float32], onnx_path,
                             **options)
    except Exception as error:  # pylint: disable=broad-except  # the exporter raises anything
        raise UserError("MXNet's ONNX exporter failed: %s" % error_summary(error)) from None
    _remove_initializer_inputs(onnx_path)
    return onnx_path


def export(model, params, out, fmt="mxnet", input_size=None, batch="1", classes_file=None,
           crop_ratio=0.875, check_images=None, force=False):
    """Export, check and describe in PREFIX.json; returns the description."""
    if fmt not in FORMATS:
        raise UserError("--format must be one of %s, not %r" % (", ".join(FORMATS), fmt))
    batch = parse_batch_size(batch)
    trained = trained_weights(params, model, input_size, force)
    if not 0 < crop_ratio <= 1:
        raise UserError("--crop-ratio must be in (0, 1]")
    out = os.path.expanduser(str(out))
    out_dir = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(out_dir):
        raise UserError("--out: folder %s does not exist" % out_dir)
    count = params_classes(trained.model, params)
    names = class_names(trained, count, classes_file)
    inputs = check_inputs(check_images, trained.input_size, crop_ratio)
    net = load_network(trained.model, params, count, [mx.cpu()])
    say(trained.notes)
    expected = net(mx.nd.array(inputs)).asnumpy()  # also builds the graph that is exported
    if fmt == "mxnet":
        paths = _export_symbol(net, out)
    else:
        with tempfile.TemporaryDirectory(dir=out_dir) as scratch:
            symbol_file, params_file = _export_symbol(net, os.path.join(scratch, "net"))
            paths = [export_onnx(symbol_file, params_file, out + ".onnx", trained.input_size,
                                 batch)]
    size = trained.input_size
    meta = {"model": trained.model, "format": fmt, "classes": names, "input_name": INPUT_NAME,
            "input_shape": [batch if fmt == "onnx" else None, 3, size, size],
            "layout": "NCHW, RGB, (pixel - mean) / std", "mean_rgb": list(MEAN_RGB),
            "std_rgb": list(STD_RGB), "crop_ratio": crop_ratio,
            "params": os.path.abspath(os.path.expanduser(params))}
    got = run_in_batches(load_exported(out, meta), inputs, batch if fmt == "onnx" else None,
                         "the export %s" % out)
    meta["check"] = {"inputs": "%d images" % len(inputs) if check_images
                     else "%d random inputs" % len(inputs),
                     "max_abs_diff": float(np.max(np.abs(got - expected))),
                     "max_abs_logit": float(np.max(np.abs(expected))),
                     "same_top1": bool(np.all(got.argmax(1) == expected.argmax(1)))}
    return write_description(out, meta, paths)


def run(args):
    meta = export(args.model, args.params, args.out, args.format, args.input_size,
                  args.batch_size, args.classes, args.crop_ratio, args.check_images, args.force)
    check, written = meta["check"], list(meta["files"]) + [os.path.basename(args.out) + ".json"]
    if args.json:
        print(json.dumps({"out": args.out, "files": written, "check": check}))
    else:
        print("exported %s (%s, %d classes, %d px) to %s: %s" % (
            meta["model"], args.format, len(meta["classes"]), meta["input_shape"][2],
            os.path.dirname(os.path.abspath(args.out)), ", ".join(written)))
        print("check on %s: max abs difference of the logits %.3g (largest logit %.3g), top-1 "
              "%s" % (check["inputs"], check["max_abs_diff"], check["max_abs_logit"],
                      "identical" if check["same_top1"] else "DIFFERS"))
    if not check["same_top1"] or check["max_abs_diff"] > 1e-3 * max(1.0, check["max_abs_logit"]):
        raise UserError("the export's outputs differ from the network's (max abs difference "
                        "%.3g)" % check["max_abs_diff"])
    return 0
