"""Using trained weights and exports (eval, export, predict) as they were trained: model, input
size and class names from the checkpoint JSON beside the .params (what is assumed is said); an
export's files are checked against the sizes and SHA-256 its PREFIX.json records."""
import json
import os
import sys
import warnings
from collections import namedtuple

import mxnet as mx
import numpy as np

from gluon_tricks import files
from gluon_tricks.data.flags import input_size as default_input_size
from gluon_tricks.data.images import IMAGE_EXTENSIONS
from gluon_tricks.data.transforms import Scratch, val_sample
from gluon_tricks.errors import UserError, error_summary

FORMATS = ("mxnet", "onnx")
INPUT_NAME = "data"

INPUT_SIZE_HELP = ("input image side (default: the one trained at, from the checkpoint JSON beside "
                   "--params, or the export's; without one 224, 299 for inceptionv3); another "
                   "needs --force")
Trained = namedtuple("Trained", "model params input_size config notes")
Trained.__doc__ = """Weights to use: model, .params path, input size, the config of the run that
trained them ({} without a checkpoint JSON) and notes on what was assumed."""


def add_weights_arguments(parser, params_required=True, input_size=True, classes=True):
    """--model, --params, --force (--input-size, --classes): as eval, export, predict take them."""
    parser.add_argument("--model", help="network name, e.g. resnet50_v1d (default: the model of "
                        "the checkpoint the --params belong to)")
    parser.add_argument("--params", required=params_required, help="trained weights (.params)")
    if input_size:
        parser.add_argument("--input-size", type=int, default=None, help=INPUT_SIZE_HELP)
    parser.add_argument("--force", action="store_true",
                        help="use an --input-size other than the one trained at")
    if classes:
        parser.add_argument("--classes", metavar="FILE", help="class names, one a line (`pack`'s "
                            ".classes.txt); default: the checkpoint's (or export's), else indices")


def saved_run_config(params_path):
    """The RunConfig dict in PREFIX.json beside PREFIX.params, or None (`eps` filled in)."""
    path = os.path.splitext(os.path.expanduser(str(params_path)))[0] + ".json"
    try:
        with open(path) as f:
            config = json.load(f).get("config")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(config, dict):
        return None
    if "eps" not in config and "label_smoothing" in config:
        config["eps"] = config.get("label_smoothing_eps", 0.1) if config["label_smoothing"] else 0.0
    return config


def trained_weights(params, model=None, input_size=None, force=False):
    """The Trained of `params`; --model and --input-size default to the checkpoint's."""
    config = saved_run_config(params) or {}
    model = model or config.get("model")
    if not model:
        raise UserError("--model is needed: %s has no checkpoint JSON beside it to read it from"
                        % params)
    if config.get("model") not in (None, model):
        config = {}  # another network's checkpoint: its settings do not apply
    trained_at, notes = config.get("input_size"), []
    if input_size and trained_at and input_size != trained_at and not force:
        raise UserError("--input-size %d: %s was trained at %d (its checkpoint JSON says so); "
                        "pass --force to use %d anyway" % (input_size, params, trained_at,
                                                           input_size))
    if not (input_size or trained_at):
        input_size = default_input_size(None, model)
        notes.append("%s has no checkpoint JSON beside it: input size %d assumed (%s's default; "
                     "--input-size sets it)" % (params, input_size, model))
    if (input_size or trained_at) < 32:
        raise UserError("--input-size must be >= 32")
    return Trained(model, params, input_size or trained_at, config, notes)


def read_class_names(path, count):
    """The `count` class names of a .classes.txt (or of an export's .json)."""
    path = os.path.expanduser(str(path))
    if not os.path.isfile(path):
        raise UserError("--classes: no such file: %s" % path)
    with open(path) as f:
        try:
            names = (json.load(f)["classes"] if path.endswith(".json")
                     else [line.strip() for line in f if line.strip()])
        except (ValueError, KeyError, TypeError):
            raise UserError("--classes: %s is not an export's JSON" % path) from None
    if len(names) != count:
        raise UserError("--classes: %s names %d classes, the network has %d"
                        % (path, len(names), count))
    return names


def class_names(trained, count, classes_file=None):
    """--classes, else the checkpoint's names, else the indices (with a note)."""
    if classes_file:
        return read_class_names(classes_file, count)
    names = trained.config.get("class_names") or []
    if len(names) == count:
        return list(names)
    trained.notes.append("%s: class indices printed as names (%s; --classes FILE names them)"
                         % (trained.params, "its checkpoint names no classes" if trained.config
                            else "no checkpoint JSON beside it"))
    return [str(i) for i in range(count)]


def say(notes):
    """What was assumed, on stderr."""
    for note in notes:
        print("gluon-tricks: note: %s" % note, file=sys.stderr)


def collect_images(paths):
    """The files named, folders expanded recursively (sorted); a missing path is an error."""
    found = []
    for path in map(os.path.expanduser, map(str, paths)):
        if os.path.isdir(path):
            for root, dirs, names in os.walk(path):
                dirs.sort()
                found.extend(os.path.join(root, name) for name in sorted(names))
        elif os.path.isfile(path):
            found.append(path)
        else:
            raise UserError("no such file or folder: %s" % path)
    return found


def preprocess_files(paths, size, crop_ratio):
    """(inputs (N, 3, S, S) float32, the N files read, [(file, reason)] of those skipped)."""
    inputs = np.empty((len(paths), 3, size, size), np.float32)
    kept, skipped, scratch = [], [], Scratch()
    for path in paths:
        if os.path.splitext(path)[1].lower() not in IMAGE_EXTENSIONS:
            skipped.append((path, "not an image (%s)" % "/".join(IMAGE_EXTENSIONS)))
            continue
        try:
            with open(path, "rb") as f:
                buf = f.read()
        except OSError as error:
            skipped.append((path, "cannot be read (%s)" % error.strerror))
            continue
        if not val_sample(buf, size, inputs[len(kept)], crop_ratio, scratch=scratch):
            skipped.append((path, "cannot be decoded (corrupt or not an image)"))
            continue
        kept.append(path)
    return inputs[:len(kept)], kept, skipped


def write_description(prefix, meta, paths):
    """PREFIX.json: `meta` and, under "files", each of `paths` with its size and SHA-256."""
    meta["files"] = {}
    for path in paths:
        size, sha256 = files.digest(path)
        meta["files"][os.path.basename(path)] = {"size": size, "sha256": sha256}
    with open(prefix + ".json", "w") as f:
        json.dump(meta, f, indent=1)
    return meta


def read_export(prefix):
    """The description of the export PREFIX, its files checked against their sizes and digests."""
    path = os.path.expanduser(str(prefix)) + ".json"
    if not os.path.isfile(path):
        raise UserError("--export: %s not found (made by `gluon-tricks export --out %s`)"
                        % (path, prefix))
    with open(path) as f:
        try:
            meta = json.load(f)
        except ValueError:
            raise UserError("--export: %s is not valid JSON" % path) from None
    if not isinstance(meta, dict) or meta.get("format") not in FORMATS or "classes" not in meta:
        raise UserError("--export: %s is not an export's description" % path)
    if not isinstance(meta.get("files"), dict):
        raise UserError("--export: %s records no file digests (an older export): export again"
                        % path)
    for name, written in meta["files"].items():
        file_path = os.path.join(os.path.dirname(path), os.path.basename(name))
        size, sha256 = files.digest(file_path) if os.path.isfile(file_path) else (None, None)
        if size != written.get("size"):
            raise UserError("--export: %s has %s bytes, the export wrote %s (truncated or "
                            "replaced?)" % (file_path, size, written.get("size")))
        if sha256 != written.get("sha256"):
            raise UserError("--export: %s does not match its SHA-256 (damaged or replaced)"
                            % file_path)
    return meta


def onnx_session(onnx_path):
    """An onnxruntime session on the CPU of a model that onnx's checker accepts."""
    import onnx  # optional, and slow to import
    import onnxruntime
    try:
        onnx.checker.check_model(onnx.load(onnx_path))
    except Exception as error:  # pylint: disable=broad-except  # protobuf and checker errors
        raise UserError("%s is not a valid ONNX model: %s" % (onnx_path, error_summary(error))) \
            from None
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # quiet about informational messages
    return onnxruntime.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])


def load_exported(prefix, meta):
    """A function numpy inputs -> numpy logits running the export described by `meta`."""
    prefix = os.path.expanduser(str(prefix))
    if meta["format"] == "onnx":
        session = onnx_session(prefix + ".onnx")
        name = session.get_inputs()[0].name
        return lambda x: session.run(None, {name: x})[0]
    try:
        with warnings.catch_warnings():  # "Cannot decide type for data": it is float32
            warnings.simplefilter("ignore", UserWarning)
            block = mx.gluon.SymbolBlock.imports(prefix + "-symbol.json", [INPUT_NAME],
                                                 prefix + "-0000.params", ctx=mx.cpu())
    except Exception as error:  # pylint: disable=broad-except  # MXNet's parsers raise anything
        raise UserError("--export: %s cannot be loaded: %s" % (prefix, error_summary(error))) \
            from None
    return lambda x: block(mx.nd.array(x)).asnumpy()


def run_in_batches(function, inputs, batch, where):
    """function(inputs) in batches of exactly `batch` if fixed (the last padded), else at once;
    outputs must be finite."""
    chunks = [inputs] if batch is None else [inputs[i:i + batch]
                                             for i in range(0, len(inputs), batch)]
    outputs = np.concatenate([function(np.concatenate(
        [c, np.repeat(c[:1], (batch or len(c)) - len(c), axis=0)]))[:len(c)] for c in chunks])
    if not np.isfinite(outputs).all():
        raise UserError("%s computes NaN or infinite outputs (NaN weights?)" % where)
    return outputs
