"""What a logged run was: its model, the paper's tricks it used and its batch size, read from the
configuration dict of its log (GluonCV's flags, which `gluon-tricks train` shares).

The one mapping from flags to the paper's trick names (Tables 4-6); `gluon-tricks train` uses it
too. It works on a plain dict because logs of other tools lack some flags or log them as text.
"""
import os
import re

TRICK_ORDER = ("warmup", "zero-gamma", "no-bias-decay", "fp16", "cosine", "label-smoothing",
               "distillation", "mixup")
_MODEL_IN_NAME = re.compile(r"(resnet\d+_v\d[a-e]?|resnext\d+_\d+x\d+d|inceptionv3|"
                            r"mobilenet(?:v2_)?\d\.\d+|mobilenet_v\d)", re.IGNORECASE)
_ALIASES = {"resnet50_v1a": "resnet50_v1", "inception_v3": "inceptionv3",
            "mobilenet": "mobilenet1.0", "mobilenet_v1": "mobilenet1.0"}


def _true(value):
    """Flags logged as booleans, numbers or their text ('True', '1')."""
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "0", "none", "no")
    return bool(value)


def _number(value, default=0.0):
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def tricks_of(config):
    """The paper's tricks named by a log's configuration, in the order of Tables 4-6."""
    tricks = []
    if _number(config.get("warmup_epochs")) > 0:
        tricks.append("warmup")
    if _true(config.get("last_gamma", False)):
        tricks.append("zero-gamma")
    if _true(config.get("no_wd", False)):
        tricks.append("no-bias-decay")
    if str(config.get("dtype", "float32")) == "float16" or _true(config.get("amp", False)):
        tricks.append("fp16")
    if str(config.get("lr_mode", "step")) == "cosine":
        tricks.append("cosine")
    if _true(config.get("label_smoothing", False)):
        tricks.append("label-smoothing")
    # GluonCV distils only when a teacher is named and the hard-label weight is below 1.
    if _true(config.get("teacher")) and _number(config.get("hard_weight"), 0.5) < 1.0:
        tricks.append("distillation")
    if _true(config.get("mixup", False)):
        tricks.append("mixup")
    return tricks


def canonical_model(name):
    """GluonCV's spelling of a model name (for matching the paper's rows), or None."""
    if not name or not isinstance(name, str):
        return None
    name = name.strip().lower()
    return _ALIASES.get(name, name)


def model_of(config, path=""):
    """The model a log trained: its `--model`, else a model name in the file name, else None."""
    model = config.get("model")
    if isinstance(model, str) and model.strip():
        return canonical_model(model)
    match = _MODEL_IN_NAME.search(os.path.basename(path))
    return canonical_model(match.group(1)) if match else None


def batch_of(config):
    """The batch of one optimiser step: `gluon-tricks train`'s `global_batch_size`, else
    GluonCV's per-device `--batch-size` times `--num-gpus` (a Horovod log does not hold its
    world size, so this is one rank's batch there), or None when not logged."""
    batch = _number(config.get("global_batch_size"), 0)
    if batch > 0:
        return int(batch)
    batch = _number(config.get("batch_size"), 0)
    if batch <= 0:
        return None
    return int(batch * max(1, int(_number(config.get("num_gpus"), 0))))


def describe(config, path=""):
    """A short label for legends: 'resnet50_v1d: cosine, label-smoothing' or 'baseline'."""
    model = model_of(config, path) or os.path.basename(path)
    tricks = tricks_of(config)
    return "%s: %s" % (model, ", ".join(tricks) if tricks else "baseline")
