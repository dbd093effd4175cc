"""The VOC sets of a detection run (trainval 07+12 and test 07, where present), checked before
use, and GluonCV's loaders over them: FasterRCNNDefaultTrainTransform with its target
generator, aspect-ratio buckets, and one image per validation batch."""
import os

from gluon_tricks.data import keyed, voc
from gluon_tricks.errors import UserError

TRAIN_SPLITS = ((2007, "trainval"), (2012, "trainval"))
TEST_SPLITS = ((2007, "test"),)
VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
               "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
               "sheep", "sofa", "train", "tvmonitor")


def class_names(spec):
    """--classes: 'voc' (Pascal VOC's twenty), 'demo' (the demo data's ten) or a comma list."""
    if spec == "voc":
        return VOC_CLASSES
    if spec == "demo":
        from gluon_tricks.data.demo_data import CLASSES
        return tuple(CLASSES)
    names = tuple(name.strip().lower() for name in spec.split(",") if name.strip())
    if not names or len(set(names)) != len(names):
        raise UserError("--classes must be voc, demo or distinct comma-separated names; got %r"
                        % spec)
    return names


def devkit(root):
    """The VOCdevkit folder of `--dataset-root`: the folder itself or its VOCdevkit child."""
    inner = os.path.join(root, "VOCdevkit")
    found = inner if os.path.isdir(inner) else root
    if not os.path.isdir(found):
        raise UserError("no VOC data at %s (expected VOCdevkit/VOC2007 under it)" % root)
    return found


def present(root, splits):
    """The splits whose VOC<year> folder exists (the demo has VOC2007 only); none is an error."""
    chosen = tuple((year, name) for year, name in splits
                   if os.path.isdir(voc.year_folder(root, year)))
    if not chosen:
        raise UserError("none of %s under %s" % (
            ", ".join("VOC%d" % year for year, _ in splits), root))
    return chosen


def checked_sets(root, classes, train=True):
    """(train splits, test splits) under the VOCdevkit `root`, every image and box validated."""
    train_splits = present(root, TRAIN_SPLITS) if train else ()
    test_splits = present(root, TEST_SPLITS)
    voc.validate_voc(root, train_splits + test_splits, classes)
    return train_splits, test_splits


def train_loader(net, dataset, batch_size, num_workers, seed, rank=0, ranks=1, devices=1):
    """GluonCV's Faster R-CNN training loader (its train_faster_rcnn.py get_dataloader: its
    bucketing sampler, FasterRCNNDefaultTrainTransform with the RPN targets, its batchify) with
    every random draw keyed by (seed, epoch, image) (data.keyed). `batch_size` images per rank,
    `devices` of them per batch shard; rank `rank` of `ranks` takes its share of each global
    batch. Its `epoch(epoch, first_batch)` gives the batches of an epoch."""
    import mxnet as mx
    from gluoncv.data.batchify import FasterRCNNTrainBatchify
    from gluoncv.data.transforms.presets.rcnn import FasterRCNNDefaultTrainTransform
    ratios = (dataset.get_im_aspect_ratio() if hasattr(dataset, "get_im_aspect_ratio")
              else [1.0] * len(dataset))  # VOC's reader has none: one bucket, as GluonCV
    batches = keyed.EpochBatches(keyed.bucket_sampler(ratios, batch_size * ranks), batch_size,
                                 seed, rank, ranks)
    transform = FasterRCNNDefaultTrainTransform(net.short, net.max_size, net, ashape=net.ashape,
                                                multi_stage=False)
    return keyed.EpochLoader(mx.gluon.data.DataLoader(
        keyed.KeyedTransform(dataset, transform, seed), batch_sampler=batches,
        batchify_fn=FasterRCNNTrainBatchify(net, devices), num_workers=num_workers), batches)


def val_loader(net, dataset, num_workers, rank=0, ranks=1):
    """One image per batch at the network's test size, with its scale (GluonCV's val loader);
    of `ranks` ranks, rank `rank` takes the images rank, rank + ranks, ... (loop.validate
    gathers them back in order)."""
    import mxnet as mx
    from gluoncv.data.batchify import Append, Tuple
    from gluoncv.data.transforms.presets.rcnn import FasterRCNNDefaultValTransform
    short = net.short[-1] if isinstance(net.short, (tuple, list)) else net.short
    if len(dataset) < ranks:
        raise UserError("the test set (%d images) has fewer images than the %d ranks"
                        % (len(dataset), ranks))
    return mx.gluon.data.DataLoader(
        dataset.transform(FasterRCNNDefaultValTransform(short, net.max_size)),
        sampler=list(range(rank, len(dataset), ranks)), last_batch="keep",
        batchify_fn=Tuple(*[Append() for _ in range(3)]), batch_size=1,
        num_workers=num_workers)
