"""The logits file (`eval --save-logits`, read by `plot gap`): an .npz of `logits` (N, K),
`labels` (N,), `model` and `about` (JSON: format, model, params, eps, data), so no flag is typed
twice; older files (no `about`) and other tools' (logits alone) load with eps and data None."""
import json
import os
import zipfile
from collections import namedtuple

import numpy as np

from gluon_tricks.errors import UserError

FORMAT = 2  # 1: logits, labels, model only

Logits = namedtuple("Logits", "name logits labels model eps data", defaults=(None, None, None))
Logits.__doc__ = """Logits of one model: display name, logits (N, K), labels (N,) or None, model,
training eps (0.0: no label smoothing) and data description (None if unknown)."""


def check_logits(name, logits, labels, where=None, **about):
    """Finite logits (N, K >= 2) and labels (N,) or None as a `Logits` (`about`: model, eps,
    data); anything else is a UserError naming `where`."""
    where = where or name
    logits = np.asarray(logits)
    if logits.ndim != 2 or logits.shape[0] < 1 or logits.shape[1] < 2:
        raise UserError("%s: logits have shape %s; expected (N, K) with N >= 1 and K >= 2"
                        % (where, logits.shape))
    if not np.issubdtype(logits.dtype, np.number) or not np.all(np.isfinite(logits)):
        raise UserError("%s: logits must be finite numbers" % where)
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (logits.shape[0],):
            raise UserError("%s: labels have shape %s; expected (%d,) to match logits %s"
                            % (where, labels.shape, logits.shape[0], logits.shape))
    return Logits(name, logits.astype(np.float32, copy=False), labels, **about)


def describe_data(source, input_size, crop_ratio):
    """The `data` entry of a logits file: which validation images, how cropped."""
    return {"source": str(source.path), "kind": getattr(source, "kind", None),
            "images": len(source), "classes": int(source.num_classes),
            "input_size": int(input_size), "crop_ratio": float(crop_ratio)}


def save_logits(path, logits, labels, model, eps=None, data=None, params=None):
    """Write the logits file atomically (a half-written file never has the final name)."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    about = {"format": FORMAT, "model": model, "params": params,
             "eps": None if eps is None else float(eps), "data": data}
    tmp = path + ".tmp.npz"
    np.savez(tmp, logits=np.asarray(logits, np.float32), labels=np.asarray(labels, np.int64),
             model=np.array(model), about=np.array(json.dumps(about, sort_keys=True)))
    os.replace(tmp, path)


def load_logits(path):
    """A logits file, checked (old files too); a bad file is a UserError that names it."""
    if not os.path.exists(path):
        raise UserError("%s: no such file" % path)
    if os.path.isdir(path):
        raise UserError("%s: is a directory, not a logits file" % path)
    if os.path.getsize(path) == 0:
        raise UserError("%s: empty file" % path)
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise UserError("%s: a single array, not an .npz with 'logits' and 'labels'" % path)
        with loaded as npz:
            if "logits" not in npz.files:
                raise UserError("%s: no 'logits' array (it has: %s)"
                                % (path, ", ".join(npz.files) or "nothing"))
            logits = np.asarray(npz["logits"])
            labels = np.asarray(npz["labels"]) if "labels" in npz.files else None
            model = str(npz["model"]) if "model" in npz.files else ""
            about = json.loads(str(npz["about"])) if "about" in npz.files else {}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise UserError("%s: not a logits .npz file (%s)" % (path, first_line)) from None
    if not isinstance(about, dict):
        raise UserError("%s: its 'about' entry is not a JSON object" % path)
    name = model or os.path.splitext(os.path.basename(path))[0]
    return check_logits(name, logits, labels, where=path, model=model or None,
                        eps=about.get("eps"), data=about.get("data"))
