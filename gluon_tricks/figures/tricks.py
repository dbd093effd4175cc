"""What a logged run was: its model, tricks (gluon_tricks.paper's mapping) and batch size, from
its log's configuration."""
import os
import re

from gluon_tricks.paper import flag_number, tricks_of

_MODEL_IN_NAME = re.compile(r"(resnet\d+_v\d[a-e]?|resnext\d+_\d+x\d+d|inceptionv3|"
                            r"mobilenet(?:v2_)?\d\.\d+|mobilenet_v\d)", re.IGNORECASE)
_ALIASES = {"resnet50_v1a": "resnet50_v1", "inception_v3": "inceptionv3",
            "mobilenet": "mobilenet1.0", "mobilenet_v1": "mobilenet1.0"}


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


def batch_of(config, log_format=None):
    """The batch of one optimiser step: `global_batch_size`, else `batch_size` x `num_gpus`;
    None (never a guess) for a Horovod log or one without `num_gpus`."""
    batch = flag_number(config.get("global_batch_size"), 0)
    if batch > 0:
        return int(batch)
    if log_format == "horovod" or "num_gpus" not in config:
        return None
    batch = flag_number(config.get("batch_size"), 0)
    if batch <= 0:
        return None
    return int(batch * max(1, int(flag_number(config.get("num_gpus"), 0))))


def describe(config, path=""):
    """A short label for legends: 'resnet50_v1d: cosine, label-smoothing' or 'baseline'."""
    model = model_of(config, path) or os.path.basename(path)
    tricks = tricks_of(config)
    return "%s: %s" % (model, ", ".join(tricks) if tricks else "baseline")
