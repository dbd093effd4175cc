"""The optimiser's state as an NDArray file, never a pickle (gluon.Trainer.load_states unpickles
whatever the file holds: a crafted file runs code): the state arrays under plain keys, plus a
uint8 array with a JSON layout (which array is whose, update counts, settings)."""
import json
import pickle

import mxnet as mx
import numpy as np

from gluon_tricks.errors import UserError
from gluon_tricks.models.params import file_kind

FORMAT = "gluon-tricks optimizer state v1"
LAYOUT_KEY = "__layout__"


def _updaters(trainer):
    """The updaters that hold the state: one per device, or the kvstore's own."""
    if trainer._update_on_kvstore:
        return [trainer._kvstore._updater]
    return list(trainer._updaters)


def _ready(trainer):
    if not trainer._kv_initialized:
        trainer._init_kvstore()
    if trainer._params_to_init:
        trainer._init_params()


def _encode(state, arrays):
    """A JSON-able layout of a state (None, an NDArray, or a tuple of states); arrays by key."""
    if state is None:
        return None
    if isinstance(state, (tuple, list)):
        return [_encode(part, arrays) for part in state]
    key = "s%d" % len(arrays)
    arrays[key] = state
    return key


def _decode(layout, arrays, path):
    if layout is None:
        return None
    if isinstance(layout, list):
        return tuple(_decode(part, arrays, path) for part in layout)
    if layout not in arrays:
        raise UserError("%s is damaged: its layout names an array %r it does not hold"
                        % (path, layout))
    return arrays[layout]


def save_states(trainer, path):
    """Write the trainer's optimiser state (its first device's: all hold the same) to `path`."""
    _ready(trainer)
    updater = _updaters(trainer)[0]
    optimizer = trainer._optimizer
    arrays = {}
    states = {str(index): _encode(state, arrays) for index, state in updater.states.items()}
    layout = {
        "format": FORMAT, "optimizer": type(optimizer).__name__.lower(),
        "momentum": getattr(optimizer, "momentum", None), "wd": optimizer.wd,
        "multi_precision": bool(optimizer.multi_precision),
        "num_update": int(optimizer.num_update),
        "begin_num_update": int(optimizer.begin_num_update),
        "update_counts": {str(device): {str(i): int(n) for i, n in counts.items()}
                          for device, counts in optimizer._all_index_update_counts.items()},
        "params": [[p.name, list(p.shape)] for p in trainer._params],
        "states": states}
    blob = np.frombuffer(json.dumps(layout, sort_keys=True).encode(), np.uint8)
    arrays = {k: v.as_in_context(mx.cpu()) for k, v in arrays.items()}
    arrays[LAYOUT_KEY] = mx.nd.array(blob, dtype=np.uint8)
    mx.nd.save(path, arrays)


def read_layout(path):
    """(layout dict, arrays) of a states file written by save_states; UserError otherwise."""
    kind = file_kind(path)
    if kind == "pickle":
        raise UserError("%s is a pickled optimizer state (GluonCV's .states), not this project's "
                        "format" % path)
    if kind != "ndarray":
        raise UserError("%s is not an optimizer state file (neither an NDArray file nor a "
                        "GluonCV pickle)" % path)
    try:
        arrays = mx.nd.load(path)
    except mx.base.MXNetError:
        raise UserError("%s is damaged: MXNet cannot read it as an NDArray file" % path) from None
    if not isinstance(arrays, dict) or LAYOUT_KEY not in arrays:
        raise UserError("%s holds network weights (a .params file), not an optimizer state"
                        % path)
    try:
        layout = json.loads(arrays.pop(LAYOUT_KEY).asnumpy().tobytes().decode())
    except ValueError:
        raise UserError("%s is damaged: its layout is not JSON" % path) from None
    if layout.get("format") != FORMAT:
        raise UserError("%s has the unknown format %r" % (path, layout.get("format")))
    return layout, arrays


def load_states(trainer, path, momentum=None, wd=None):
    """Load a state written by save_states into every updater of `trainer`, refusing one that
    does not fit its parameters one by one."""
    layout, arrays = read_layout(path)
    _ready(trainer)
    saved = layout["params"]
    ours = [[p.name, list(p.shape)] for p in trainer._params]
    if len(saved) != len(ours):
        raise UserError("%s holds the optimizer state of %d parameters, this network has %d: "
                        "the state of another model?" % (path, len(saved), len(ours)))
    for index, state in layout["states"].items():
        expected = ours[int(index)][1]
        for key in _arrays(state):
            if list(arrays[key].shape) != expected:
                raise UserError("%s: the state of parameter %d (%s) has shape %s, this network's "
                                "%s has %s: the state of another model?"
                                % (path, int(index), saved[int(index)][0],
                                   tuple(arrays[key].shape), ours[int(index)][0], tuple(expected)))
    _check_settings(layout, path, momentum, wd)
    optimizer = trainer._optimizer
    optimizer.num_update = layout["num_update"]
    optimizer.begin_num_update = layout["begin_num_update"]
    optimizer._all_index_update_counts.clear()
    for device, counts in layout["update_counts"].items():
        optimizer._all_index_update_counts[int(device)] = {int(i): n for i, n in counts.items()}
    optimizer._all_index_update_counts.setdefault(0, {})
    optimizer._index_update_count = optimizer._all_index_update_counts[0]
    for updater in _updaters(trainer):
        # every updater its own copies (moved to the weight's device at its first update)
        updater.states = {int(index): _copy(_decode(state, arrays, path))
                          for index, state in layout["states"].items()}
        updater.states_synced = dict.fromkeys(updater.states, False)
    return layout


def _arrays(tree):
    """The arrays (or layout keys) of a nested state, Nones left out."""
    if tree is None:
        return []
    if isinstance(tree, (tuple, list)):
        return [leaf for part in tree for leaf in _arrays(part)]
    return [tree]


def _copy(state):
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(_copy(part) for part in state)
    return state.copy()


def _check_settings(layout, path, momentum, wd):
    """The flags win: a state saved with another momentum or weight decay is refused."""
    for name, saved, flag in (("momentum", layout.get("momentum"), momentum),
                              ("wd", layout.get("wd"), wd)):
        if flag is not None and saved is not None and float(saved) != float(flag):
            raise UserError("%s was saved with %s %g but --%s is %g; pass --%s %g to continue it"
                            % (path, name, saved, name, flag, name, saved))


def load_pickled_states(trainer, path, momentum, wd, warn):
    """GluonCV's pickled .states for --resume-states, only on the user's explicit word (a pickle
    can run code; `warn` says so); its momentum and wd must agree with the flags."""
    warn("loading the pickled optimizer state %s: a pickle can run code; load only files you "
         "trust" % path)
    try:
        trainer.load_states(path)
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError):
        raise UserError("%s is not a readable GluonCV .states pickle" % path) from None
    for index, state in _updaters(trainer)[0].states.items():
        for array in _arrays(state):
            if index >= len(trainer._params) or array.shape != trainer._params[index].shape:
                raise UserError("%s: its state %d does not fit this network's parameters: the "
                                "state of another model?" % (path, index))
    optimizer = trainer._optimizer
    _check_settings({"momentum": getattr(optimizer, "momentum", None), "wd": optimizer.wd}, path,
                    momentum, wd)
