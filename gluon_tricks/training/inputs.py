"""Which data a run reads, from its flags: RecordIO files, image folders, or the demo data."""
import os

from gluon_tricks.errors import UserError
from gluon_tricks.training.config import GLUONCV_REC_DEFAULTS


def _path(value):
    return os.path.expanduser(value) if value else value


def _rec_pair(config, rec_key, idx_key):
    rec = _path(getattr(config, rec_key, None) or GLUONCV_REC_DEFAULTS[rec_key])
    idx = _path(getattr(config, idx_key, None) or os.path.splitext(rec)[0] + ".idx")
    return rec, idx


def data_sources(config, train=True):
    """(train_source or None, val_source). RecordIO with --use-rec (or when .rec files are named
    and no folder is), then --train-dir/--val-dir, then --data-dir/{train,val}, else the demo set."""
    from gluon_tricks.data.sources import DataSource
    rec_named = getattr(config, "rec_train", None) or config.rec_val
    folders_named = getattr(config, "train_dir", None) or config.val_dir or config.data_dir
    if config.use_rec or (rec_named and not folders_named):
        bad = getattr(config, "max_bad_fraction", None)
        val = DataSource.from_rec(*_rec_pair(config, "rec_val", "rec_val_idx"),
                                  max_bad_fraction=bad)
        train_source = (DataSource.from_rec(*_rec_pair(config, "rec_train", "rec_train_idx"),
                                            max_bad_fraction=bad) if train else None)
    elif folders_named:
        base = _path(config.data_dir)
        train_dir = _path(getattr(config, "train_dir", None)) or (base and os.path.join(base, "train"))
        val_dir = _path(config.val_dir) or (base and os.path.join(base, "val"))
        if not val_dir or (train and not train_dir):
            raise UserError("name both --train-dir and --val-dir, or --data-dir holding train/ "
                            "and val/")
        val = DataSource.from_folder(val_dir)
        train_source = DataSource.from_folder(train_dir) if train else None
    else:
        from gluon_tricks.data.demo_data import default_demo_data
        demo = default_demo_data()
        val = DataSource.from_rec(demo["val_rec"], demo["val_idx"])
        train_source = DataSource.from_rec(demo["train_rec"], demo["train_idx"]) if train else None
    if train_source is not None:
        from gluon_tricks.data.sources import check_same_classes, check_trainable
        check_trainable(train_source)
        check_same_classes(train_source, val)
    return train_source, val
