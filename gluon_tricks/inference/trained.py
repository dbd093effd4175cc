"""Trained weights and what they were trained with: the model, the input size and the class
names, read from the checkpoint JSON beside the .params (PREFIX.json, written by training). A
flag that contradicts the checkpoint is refused unless forced; what has to be assumed without a
checkpoint is said."""
import json
import os
import sys
from collections import namedtuple

from gluon_tricks.errors import UserError
from gluon_tricks.models import INPUT_SIZES

Trained = namedtuple("Trained", "model params input_size config notes")
Trained.__doc__ = """Weights to use: the model, the .params path, the input size, the config of
the run that trained them ({} without a checkpoint JSON) and notes on what was assumed."""


def saved_run_config(params_path):
    """The RunConfig dict that trained the weights `params_path` (PREFIX.params), from the JSON
    of their checkpoint (PREFIX.json), or None when there is none; `eps` is filled in for
    checkpoints written before it was a field."""
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
    """The Trained of `params`: --model and --input-size default to the checkpoint's; an
    --input-size other than the one trained at is refused unless `force`."""
    config = saved_run_config(params) or {}
    model = model or config.get("model")
    if not model:
        raise UserError("--model is needed: %s has no checkpoint JSON beside it to read it from"
                        % params)
    if config.get("model") not in (None, model):
        config = {}  # another network's checkpoint: its settings do not apply
    trained_at, notes = config.get("input_size"), []
    if input_size and trained_at and input_size != trained_at and not force:
        raise UserError("--input-size %d: %s was trained at %d x %d (its checkpoint JSON says "
                        "so); pass --force to use %d anyway" % (input_size, params, trained_at,
                                                                trained_at, input_size))
    if not (input_size or trained_at):
        input_size = INPUT_SIZES.get(model, 224)
        notes.append("%s has no checkpoint JSON beside it: input size %d assumed (%s's default;"
                     " --input-size sets it)" % (params, input_size, model))
    return Trained(model, params, input_size or trained_at, config, notes)


def read_class_names(path, count):
    """The class names of a .classes.txt (or of an export's .json); there must be `count`."""
    path = os.path.expanduser(str(path))
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


def class_names(trained, count, classes_file=None):
    """The names of the `count` classes: --classes, else the checkpoint's, else the indices
    (and a note saying so)."""
    if classes_file:
        return read_class_names(classes_file, count)
    names = trained.config.get("class_names") or []
    if len(names) == count:
        return list(names)
    trained.notes.append("%s: class indices printed as names (%s; --classes FILE names them)"
                         % (trained.params, "no checkpoint JSON beside it" if not trained.config
                            else "its checkpoint names no classes"))
    return [str(i) for i in range(count)]


def say(notes):
    """Print what was assumed, on stderr, one line each."""
    for note in notes:
        print("gluon-tricks: note: %s" % note, file=sys.stderr)
