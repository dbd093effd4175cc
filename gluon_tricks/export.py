"""`gluon-tricks export`: a trained network as a hybridized MXNet symbol + params (what
`SymbolBlock.imports` and MXNet Model Server load) or as ONNX (through MXNet's own exporter,
`mx.onnx.export_model`), checked after export against the network on a few images.

Beside the export, PREFIX.json holds what a user needs to run it: the class names (from
`pack`'s .classes.txt), the input size and layout, the validation preprocessing and the check.
"""
import json
import os
import sys
import tempfile
import warnings

import numpy as np

from gluon_tricks.errors import UserError, error_summary

FORMATS = ("mxnet", "onnx")
INPUT_NAME = "data"
CHECK_IMAGES = 4  # random inputs when no --check-images are given


def add_arguments(parser):
    parser.add_argument("--model", required=True, help="network name, e.g. resnet50_v1d")
    parser.add_argument("--params", required=True, help="trained weights (.params)")
    parser.add_argument("--out", required=True, metavar="PREFIX",
                        help="mxnet: PREFIX-symbol.json + PREFIX-0000.params; onnx: PREFIX.onnx; "
                             "both: PREFIX.json (class names, input, preprocessing)")
    parser.add_argument("--format", choices=FORMATS, default="mxnet", help="default mxnet")
    parser.add_argument("--input-size", type=int, default=None,
                        help="input image side (default 224; 299 for inceptionv3)")
    parser.add_argument("--batch-size", default="1", metavar="B|dynamic",
                        help="ONNX: a fixed batch size or `dynamic` (default 1); an MXNet "
                             "symbol takes any batch size")
    parser.add_argument("--classes", metavar="FILE", help="class names, one a line (the "
                        ".classes.txt that `pack` writes); default: the class indices")
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


def read_class_names(path, count):
    """The class names of a .classes.txt (or an export's .json); index names without a file.
    Their number must be the network's class count."""
    if path is None:
        return [str(i) for i in range(count)]
    path = os.path.expanduser(path)
    if not os.path.isfile(path):
        raise UserError("--classes: no such file: %s" % path)
    with open(path) as f:
        if path.endswith(".json"):
            try:
                names = json.load(f)["classes"]
            except (ValueError, KeyError, TypeError):
                raise UserError("--classes: %s is not an export's JSON (no \"classes\")"
                                % path) from None
        else:
            names = [line.strip() for line in f if line.strip()]
    if len(names) != count:
        raise UserError("--classes: %s names %d classes, the network has %d"
                        % (path, len(names), count))
    return names


def check_inputs(paths, input_size, crop_ratio, count=CHECK_IMAGES, seed=0):
    """(N, 3, S, S) float32 inputs for the check: the images (validation preprocessing), or
    `count` seeded random inputs shaped like normalised images."""
    if paths:
        from gluon_tricks.predict import collect_images, preprocess_files
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
    """MXNet's exporter lists every weight as a graph input too, which keeps onnxruntime from
    folding constants (and makes it warn once per weight): keep only the real input."""
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
    import mxnet as mx
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


def onnx_session(onnx_path):
    """An onnxruntime session on the CPU, quiet about informational messages."""
    import onnxruntime
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])


def run_in_batches(function, inputs, batch):
    """function(batch of inputs) over `inputs`, in batches of exactly `batch` when the model's
    batch is fixed (the last one padded with copies of its first input), else all at once."""
    if batch is None:
        return function(inputs)
    outputs = []
    for start in range(0, len(inputs), batch):
        chunk = inputs[start:start + batch]
        padded = np.concatenate([chunk, np.repeat(chunk[:1], batch - len(chunk), axis=0)])
        outputs.append(function(padded)[:len(chunk)])
    return np.concatenate(outputs)


def load_exported(prefix, meta):
    """A function numpy inputs -> numpy logits running the export described by `meta`."""
    import mxnet as mx
    if meta["format"] == "onnx":
        session = onnx_session(prefix + ".onnx")
        name = session.get_inputs()[0].name
        return lambda x: session.run(None, {name: x})[0]
    with warnings.catch_warnings():  # "Cannot decide type for data": it is float32, given below
        warnings.simplefilter("ignore", UserWarning)
        block = mx.gluon.SymbolBlock.imports(prefix + "-symbol.json", [INPUT_NAME],
                                             prefix + "-0000.params", ctx=mx.cpu())
    return lambda x: block(mx.nd.array(x)).asnumpy()


def read_export(prefix):
    """The JSON an export writes beside itself (PREFIX.json)."""
    path = os.path.expanduser(prefix) + ".json"
    if not os.path.isfile(path):
        raise UserError("--export: %s not found (made by `gluon-tricks export --out %s`)"
                        % (path, prefix))
    with open(path) as f:
        try:
            meta = json.load(f)
        except ValueError:
            raise UserError("--export: %s is not valid JSON" % path) from None
    if meta.get("format") not in FORMATS or "classes" not in meta:
        raise UserError("--export: %s is not an export's description" % path)
    return meta


def export(model, params, out, fmt="mxnet", input_size=None, batch="1", classes_file=None,
           crop_ratio=0.875, check_images=None):
    """Export, write PREFIX.json and check the export; returns the description (with the check's
    max abs difference of the logits)."""
    import mxnet as mx
    from gluon_tricks.evaluation.validation import load_network
    from gluon_tricks.models import INPUT_SIZES
    from gluon_tricks.training.finetune import params_classes
    if fmt not in FORMATS:
        raise UserError("--format must be one of %s, not %r" % (", ".join(FORMATS), fmt))
    batch = parse_batch_size(batch)
    input_size = input_size or INPUT_SIZES.get(model, 224)
    if input_size < 32:
        raise UserError("--input-size must be >= 32")
    if not 0 < crop_ratio <= 1:
        raise UserError("--crop-ratio must be in (0, 1]")
    out = os.path.expanduser(str(out))
    out_dir = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(out_dir):
        raise UserError("--out: folder %s does not exist" % out_dir)
    count = params_classes(model, params)
    names = read_class_names(classes_file, count)
    inputs = check_inputs(check_images, input_size, crop_ratio)
    net = load_network(model, params, count, [mx.cpu()])
    expected = net(mx.nd.array(inputs)).asnumpy()  # also builds the graph that is exported
    files = []
    if fmt == "mxnet":
        files = list(_export_symbol(net, out))
    else:
        with tempfile.TemporaryDirectory(dir=out_dir) as scratch:
            symbol_file, params_file = _export_symbol(net, os.path.join(scratch, "net"))
            files = [export_onnx(symbol_file, params_file, out + ".onnx", input_size, batch)]
    meta = {"model": model, "format": fmt, "classes": names, "input_name": INPUT_NAME,
            "input_shape": [batch if fmt == "onnx" else None, 3, input_size, input_size],
            "layout": "NCHW, RGB, (pixel - mean) / std",
            "mean_rgb": [123.68, 116.779, 103.939], "std_rgb": [58.393, 57.12, 57.375],
            "crop_ratio": crop_ratio, "params": os.path.abspath(os.path.expanduser(params)),
            "files": [os.path.basename(f) for f in files]}
    run = load_exported(out, meta)
    got = run_in_batches(run, inputs, batch if fmt == "onnx" else None)
    meta["check"] = {"inputs": "%d images" % len(inputs) if check_images
                     else "%d random inputs" % len(inputs),
                     "max_abs_diff": float(np.max(np.abs(got - expected))),
                     "max_abs_logit": float(np.max(np.abs(expected))),
                     "same_top1": bool(np.all(got.argmax(1) == expected.argmax(1)))}
    with open(out + ".json", "w") as f:
        json.dump(meta, f, indent=1)
    meta["files"].append(os.path.basename(out) + ".json")
    return meta


def run(args):
    meta = export(args.model, args.params, args.out, args.format, args.input_size,
                  args.batch_size, args.classes, args.crop_ratio, args.check_images)
    check = meta["check"]
    if args.json:
        print(json.dumps({"out": args.out, "files": meta["files"], "check": check}))
    else:
        print("exported %s (%s, %d classes) to %s: %s" % (
            args.model, args.format, len(meta["classes"]), os.path.dirname(os.path.abspath(
                args.out)), ", ".join(meta["files"])))
        print("check on %s: max abs difference of the logits %.3g (largest logit %.3g), top-1 "
              "%s" % (check["inputs"], check["max_abs_diff"], check["max_abs_logit"],
                      "identical" if check["same_top1"] else "DIFFERS"))
    if not check["same_top1"] or check["max_abs_diff"] > 1e-3 * max(1.0, check["max_abs_logit"]):
        raise UserError("the export's outputs differ from the network's (max abs difference "
                        "%.3g)" % check["max_abs_diff"])
    return 0
