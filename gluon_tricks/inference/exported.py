"""Exports as `export` describes them and `predict` reads them back: PREFIX.json holds what a
user needs to run the export and the size and SHA-256 of each file, checked before use; the
ONNX model is checked by onnx's checker, and outputs must be finite."""
import json
import os
import warnings

import numpy as np

from gluon_tricks import files
from gluon_tricks.errors import UserError, error_summary

FORMATS = ("mxnet", "onnx")
INPUT_NAME = "data"


def write_description(prefix, meta, paths):
    """PREFIX.json: `meta` and, under "files", the size and SHA-256 of each of `paths`."""
    meta = dict(meta, files={})
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
    for name, expected in meta["files"].items():
        file_path = os.path.join(os.path.dirname(path), os.path.basename(name))
        if not os.path.isfile(file_path):
            raise UserError("--export: %s is missing" % file_path)
        size, sha256 = files.digest(file_path)
        if size != expected.get("size"):
            raise UserError("--export: %s has %d bytes, the export wrote %s (truncated or "
                            "replaced?)" % (file_path, size, expected.get("size")))
        if sha256 != expected.get("sha256"):
            raise UserError("--export: %s does not match its SHA-256 (damaged or replaced)"
                            % file_path)
    return meta


def onnx_session(onnx_path):
    """An onnxruntime session on the CPU of a model onnx's checker accepts."""
    import onnx
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
    import mxnet as mx
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
    """function(batch of inputs) over `inputs`, in batches of exactly `batch` when the model's
    batch is fixed (the last one padded with copies of its first input), else all at once; the
    outputs must be finite (`where` names the model in the error)."""
    if batch is None:
        outputs = function(inputs)
    else:
        outputs = []
        for start in range(0, len(inputs), batch):
            chunk = inputs[start:start + batch]
            padded = np.concatenate([chunk, np.repeat(chunk[:1], batch - len(chunk), axis=0)])
            outputs.append(function(padded)[:len(chunk)])
        outputs = np.concatenate(outputs)
    if not np.isfinite(outputs).all():
        raise UserError("%s computes NaN or infinite outputs (NaN weights?)" % where)
    return outputs
