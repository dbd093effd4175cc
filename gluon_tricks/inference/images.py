"""Images as validation prepares them (shorter side resized, centre crop, normalisation: the
project's own `val_sample`), for prediction and for checking exports."""
import os

import numpy as np

from gluon_tricks.data.images import IMAGE_EXTENSIONS
from gluon_tricks.data.transforms import Scratch, val_sample
from gluon_tricks.errors import UserError


def collect_images(paths):
    """The files named, folders expanded recursively (sorted). A path that does not exist is a
    UserError: it is a typo, not a bad image."""
    found = []
    for path in paths:
        path = os.path.expanduser(str(path))
        if os.path.isdir(path):
            for root, dirs, names in os.walk(path):
                dirs.sort()
                found.extend(os.path.join(root, name) for name in sorted(names))
        elif os.path.isfile(path):
            found.append(path)
        else:
            raise UserError("no such file or folder: %s" % path)
    return found


def preprocess_files(paths, input_size, crop_ratio):
    """(inputs (N, 3, S, S) float32, the N files read, [(file, reason)] of those skipped)."""
    inputs = np.empty((len(paths), 3, input_size, input_size), np.float32)
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
        if not val_sample(buf, input_size, inputs[len(kept)], crop_ratio, scratch=scratch):
            skipped.append((path, "cannot be decoded (corrupt or not an image)"))
            continue
        kept.append(path)
    return inputs[:len(kept)], kept, skipped
