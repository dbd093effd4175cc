"""The logit gap of label smoothing (paper section 5.2, Figure 4): its optimal value, its
empirical value on a validation set, and the logits files (`eval --save-logits`) it is read from.
"""
import os
import zipfile
from collections import namedtuple

import numpy as np

from gluon_tricks.errors import UserError

Logits = namedtuple("Logits", "name logits labels")


def theoretical_gap(num_classes, eps):
    """The optimal gap log((K-1)(1-eps)/eps) between the true-class logit and the others under
    label smoothing eps with K classes (9.10 for K = 1000, eps = 0.1); eps may be an array."""
    eps = np.asarray(eps, dtype=np.float64)
    if num_classes < 2:
        raise ValueError("the number of classes must be at least 2, not %s" % num_classes)
    if np.any((eps <= 0) | (eps >= 1)):
        raise ValueError("eps must be in (0, 1)")
    return np.log((num_classes - 1) * (1 - eps) / eps)


def empirical_gap(logits):
    """Per example: the largest logit minus the mean of the other K-1 logits (Figure 4(b))."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise ValueError("logits must have shape (N, K) with K >= 2, not %s" % (logits.shape,))
    largest = logits.max(axis=1)
    return largest - (logits.sum(axis=1) - largest) / (logits.shape[1] - 1)


def top1_accuracy(logits, labels):
    """The fraction of examples whose largest logit is the label's."""
    return float(np.mean(np.argmax(logits, axis=1) == labels))


def check_logits(name, logits, labels, where=None):
    """Logits (N, K >= 2) of finite numbers and labels (N,) or None, as a `Logits`; anything
    else is a UserError naming `where` (a file, or the model's name)."""
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
    return Logits(name, logits.astype(np.float32, copy=False), labels)


def load_logits(path):
    """A `.npz` of `eval --save-logits` (logits (N, K), labels (N,), model), checked; a bad file
    is a UserError that names it."""
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
            name = str(npz["model"]) if "model" in npz.files else ""
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise UserError("%s: not a logits .npz file (%s)" % (path, first_line)) from None
    name = name or os.path.splitext(os.path.basename(path))[0]
    return check_logits(name, logits, labels, where=path)
