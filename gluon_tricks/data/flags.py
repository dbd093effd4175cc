"""The data flags (GluonCV's names) shared by `train`, `eval` and `plot gap`, and the data they
select: RecordIO files, image folders, or the embedded demo set."""
import os

from gluon_tricks.errors import UserError

GLUONCV_REC_DEFAULTS = {
    "rec_train": "~/.mxnet/datasets/imagenet/rec/train.rec",
    "rec_train_idx": "~/.mxnet/datasets/imagenet/rec/train.idx",
    "rec_val": "~/.mxnet/datasets/imagenet/rec/val.rec",
    "rec_val_idx": "~/.mxnet/datasets/imagenet/rec/val.idx",
}


def add_data_arguments(parser, train=True):
    """The data flags: training and validation data with `train`, validation data alone without."""
    data = parser.add_argument_group("data (default: the embedded demo data set)")
    data.add_argument("--data-dir", help="an ImageNet-style folder with train/ and val/ class "
                      "folders (GluonCV's --data-dir)")
    if train:
        data.add_argument("--rec-train", help="training RecordIO file (with --use-rec)")
        data.add_argument("--rec-train-idx", help="its index")
        data.add_argument("--train-dir", help="training image folder (one folder per class)")
    data.add_argument("--rec-val", help="validation RecordIO file")
    data.add_argument("--rec-val-idx", help="its index (default: the .rec's name with .idx)")
    data.add_argument("--val-dir", help="validation image folder (one folder per class)")
    data.add_argument("--use-rec", action="store_true", help="read the --rec-* files (GluonCV's "
                      "default paths under ~/.mxnet/datasets/imagenet/rec when not given)")
    data.add_argument("-j", "--num-data-workers", dest="num_workers", type=int, default=4,
                      help="decoding/augmentation worker processes (default 4)")
    data.add_argument("--input-size", type=int, default=None,
                      help="input image side (default 224; 299 for inceptionv3)")
    data.add_argument("--crop-ratio", type=float, default=0.875,
                      help="validation: centre crop / resized shorter side (default 0.875)")
    data.add_argument("--batch-size", type=int, default=32, help="batch size per device")


def input_size(given, model):
    """--input-size, else the model's own (224; 299 for Inception-V3)."""
    from gluon_tricks.models import INPUT_SIZES
    return given or INPUT_SIZES.get(model, 224)


def _path(value):
    return os.path.expanduser(value) if value else value


def _rec_pair(flags, rec_key, idx_key):
    rec = _path(getattr(flags, rec_key, None) or GLUONCV_REC_DEFAULTS[rec_key])
    idx = _path(getattr(flags, idx_key, None) or os.path.splitext(rec)[0] + ".idx")
    return rec, idx


def data_sources(flags, train=True):
    """(train_source or None, val_source): RecordIO (--use-rec, or .rec named and no folder),
    else --train-dir/--val-dir, else --data-dir/{train,val}, else the demo set."""
    from gluon_tricks.data.sources import DataSource
    rec_named = getattr(flags, "rec_train", None) or flags.rec_val
    folders_named = getattr(flags, "train_dir", None) or flags.val_dir or flags.data_dir
    if flags.use_rec or (rec_named and not folders_named):
        bad = getattr(flags, "max_bad_fraction", None)
        val = DataSource.from_rec(*_rec_pair(flags, "rec_val", "rec_val_idx"),
                                  max_bad_fraction=bad)
        train_source = (DataSource.from_rec(*_rec_pair(flags, "rec_train", "rec_train_idx"),
                                            max_bad_fraction=bad) if train else None)
    elif folders_named:
        base = _path(flags.data_dir)
        train_dir = (_path(getattr(flags, "train_dir", None))
                     or (base and os.path.join(base, "train")))
        val_dir = _path(flags.val_dir) or (base and os.path.join(base, "val"))
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
