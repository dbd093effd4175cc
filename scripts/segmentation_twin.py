"""Segmentation twin: GluonCV's own scripts/segmentation/train.py and `gluon-tricks segment train`,
the same flags, data and backbone weights, several seeds each, run alternately in one session;
prints every run's final pixAcc and mIoU and its median seconds per training iteration, then mean
and standard deviation per side, and the verdicts: the mIoUs agree when |mean difference| < 2 x
the pooled standard deviation; ours is at least as fast when its mean per-iteration time is
below GluonCV's or within that same noise bound.

GluonCV's train.py is a file of a dmlc/gluon-cv checkout (scripts/segmentation/; not part of
this repository). A wrapper runs it unmodified in a fresh process, with the shared flags plus
--no-cuda, and substitutes only what it hard-codes:
- the data: --dataset ade20k is GluonCV's ADE20KSegmentation with its root (the script passes
  none: ~/.mxnet/datasets/ade) set to --dataset-root and its NUM_CLASS (150) to --num-class;
- the backbone: SegBaseModel takes GluonCV's dilated ResNet of --backbone's depth in its own
  variant (resnet18/34: v1b, 50 and deeper: v1s) with ImageNet weights from GluonCV's model
  store; it gets GluonCV's ResNetV1b of our --backbone's depth and variant (v1b, v1c, v1d: its
  deep_stem and avg_down flags, as its resnet50_v1c/v1d builders set them), the classifier
  checkpoint --backbone-params loaded into it. Both sides start from these weights; the FCN
  heads are initialised by each side's code;
- at depth 18 or 34, the FCN heads' input channels: GluonCV's FCN builds them for 2048 and 1024
  (ResNet-50 and deeper); they get the backbone's 512 and 256, as `segment train` builds them.
Everything else (its FCN, MixSoftmaxCrossEntropyLoss, ADE20KSegmentation augmentation, loaders,
SGD with the poly schedule, DataParallelModel, SegmentationMetric) is the script's own. Both
sides seed themselves from --seed (the script: random, numpy and mxnet, by the wrapper).

Results: the final pixAcc and mIoU of each side's log (GluonCV's line has three decimals; its
mIoU is read at four from the name of its last weights file). Per-iteration time: the training
time of each epoch (GluonCV: measured around the script's tqdm progress bar over the training
loader, by the wrapper; ours: the log's `training cost` line) over its iterations; a run's time
is the median over epochs after epoch 0 (epoch 0 builds the graphs), or epoch 0 alone when it
is the only one. Note that the script does not hybridize (its --mode is unused) while
`segment train` does.

    git --git-dir=GLUON_CV/.git show HEAD:scripts/segmentation/train.py > /tmp/gcvseg/train.py
    OMP_NUM_THREADS=1 .venv/bin/python scripts/segmentation_twin.py \
        --gluoncv-script /tmp/gcvseg/train.py --backbone-params R18D.params
    .venv/bin/python scripts/segmentation_twin.py --gluoncv-script ... --backbone-params ... \
        --seeds 1 --epochs 1 --work-dir /tmp/segtwin
"""
import argparse
import glob
import json
import math
import os
import re
import runpy
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAYERS = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3],
          152: [3, 8, 36, 3]}  # the depths GluonCV's segmentation get_backbone offers
STEMS = {"v1b": {}, "v1c": dict(deep_stem=True), "v1d": dict(deep_stem=True, avg_down=True)}
# GluonCV's FCN heads' input channels (ResNet-50 stage 4 and 3) -> ResNet-18/34's
SMALL_HEAD_CHANNELS = {2048: 512, 1024: 256}
LOG_FILE = "train.log"


def depth_and_variant(backbone):
    """'resnet18_v1d' -> (18, 'v1d'), for the backbones both sides can build."""
    match = re.fullmatch(r"resnet(\d+)_(v1[bcd])", backbone)
    if not match or int(match.group(1)) not in LAYERS:
        raise ValueError("--backbone must be resnet{%s}_v1{b,c,d}; got %r" % (
            ",".join(str(d) for d in LAYERS), backbone))
    return int(match.group(1)), match.group(2)


def shared_flags(args, seed, save_dir):
    """The flags both commands take with the same name and meaning (the backbone apart)."""
    return ["--model", "fcn", "--dataset", "ade20k", "--aux",
            "--base-size", str(args.base_size), "--crop-size", str(args.crop_size),
            "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
            "--test-batch-size", str(args.test_batch_size), "--lr", str(args.lr),
            "--workers", str(args.workers), "--log-interval", str(args.log_interval),
            "--save-dir", save_dir, *(["--seed", str(seed)] if seed is not None else [])]


def ours_argv(args, seed, save_dir):
    """`gluon-tricks segment train` for one seed."""
    return ["segment", "train", *shared_flags(args, seed, save_dir), "--backbone", args.backbone,
            "--backbone-params", args.backbone_params, "--dataset-root", args.dataset_root,
            "--num-class", str(args.num_class), "--ngpus", "0"]


def gluoncv_argv(args, save_dir):
    """train.py for one run: the shared flags (its seed is the wrapper's), on the CPU, with
    GluonCV's name of the backbone's depth."""
    depth, _ = depth_and_variant(args.backbone)
    return [*shared_flags(args, None, save_dir), "--backbone", "resnet%d" % depth, "--no-cuda"]


# -- the substitutions (in the child process that runs GluonCV's script) ---------------------

def install_substitutions(spec, patch=setattr):
    """Patch GluonCV as the module docstring says (spec: root, num_class, backbone,
    backbone_params), each change made by `patch(module, name, value)` (a test passes
    monkeypatch.setattr)."""
    import mxnet as mx
    import gluoncv.data
    from gluoncv.model_zoo import fcn, resnetv1b, segbase

    ade20k = gluoncv.data.datasets["ade20k"]

    def __init__(self, root=None, **kwargs):
        del root  # the script passes none: GluonCV's default, ~/.mxnet/datasets/ade
        ade20k.__init__(self, root=spec["root"], **kwargs)
    patch(gluoncv.data, "datasets", dict(gluoncv.data.datasets, ade20k=type(
        "ADE20KSegmentation", (ade20k,), {"NUM_CLASS": spec["num_class"], "__init__": __init__})))

    depth, variant = depth_and_variant(spec["backbone"])
    block = resnetv1b.BasicBlockV1b if depth < 50 else resnetv1b.BottleneckV1b

    def backbone(pretrained=False, root=None, ctx=mx.cpu(), **kwargs):
        """GluonCV's ResNetV1b of our variant, the checkpoint's weights in it."""
        del root
        classes = mx.nd.load(spec["backbone_params"])["fc.weight"].shape[0]
        net = resnetv1b.ResNetV1b(block, LAYERS[depth], classes=classes,
                                  name_prefix="resnet%s_" % variant, **STEMS[variant], **kwargs)
        if pretrained:
            net.load_parameters(spec["backbone_params"], ctx=ctx)
        return net
    gluoncv_name = "resnet%d_%s" % (depth, "v1b" if depth < 50 else "v1s")
    patch(segbase, gluoncv_name, backbone)  # the name get_backbone's table reads when called

    if depth < 50:
        # GluonCV's _FCNHead itself, its in_channels mapped. Not a subclass: its __init__ calls
        # super(_FCNHead, self), the module's name, which then names this class.
        head = fcn._FCNHead

        def __init__(self, in_channels, channels, **kwargs):
            head.__init__(self, SMALL_HEAD_CHANNELS[in_channels], channels, **kwargs)
        patch(fcn, "_FCNHead", type("_FCNHead", head.__bases__, {
            "__init__": __init__, "hybrid_forward": head.hybrid_forward}))


class TrainingTimes:
    """Records (seconds, iterations) of each full pass of a tqdm bar over a loader of a data set
    in mode 'train' (the script's Trainer.training); the other bars pass through untimed."""

    def __init__(self, path):
        self.path = path

    def bar_class(self, tqdm_class):
        times = self

        class TimedBar(tqdm_class):
            def __iter__(self):
                dataset = getattr(self.iterable, "_dataset", None)
                if getattr(dataset, "mode", None) != "train":
                    yield from super().__iter__()
                    return
                count, tic = 0, time.time()
                for item in super().__iter__():
                    count += 1
                    yield item
                times.record(time.time() - tic, count)
        return TimedBar

    def record(self, seconds, iterations):
        with open(self.path, "a") as f:
            f.write(json.dumps({"seconds": seconds, "iterations": iterations}) + "\n")


def gluoncv_script_run(spec):
    """Run train.py (spec: script, argv, seed, times, and install_substitutions' entries)."""
    import tqdm
    from gluoncv.utils import random as gluoncv_random
    install_substitutions(spec)
    tqdm.tqdm = TrainingTimes(spec["times"]).bar_class(tqdm.tqdm)  # the script's `from tqdm`
    gluoncv_random.seed(spec["seed"])  # random, numpy and mxnet
    sys.argv = [spec["script"], *spec["argv"]]
    runpy.run_path(spec["script"], run_name="__main__")


# -- reading the results ----------------------------------------------------------------------

OUR_EPOCH_TIME = re.compile(r"Epoch (\d+) training cost: ([0-9.]+) s")
OUR_ITERATIONS = re.compile(r"Epoch (\d+) iteration \d+/(\d+):")
WEIGHTS_MIOU = re.compile(r"epoch_(\d+)_mIoU_([0-9.]+)\.params$")


def final_metrics(log_path):
    """(pixAcc, mIoU) of the last validation line of a segmentation log in GluonCV's format,
    as `report` reads it."""
    from gluon_tricks.figures.transfer_logs import parse_transfer_log
    log = parse_transfer_log(log_path)
    validated = log.runs[-1].validated() if log.runs and log.task == "segmentation" else []
    if not validated:
        raise ValueError("%s has no validation line" % log_path)
    metrics = validated[-1].metrics
    return metrics["pixAcc"], metrics["mIoU"]


def last_weights_miou(save_dir):
    """The mIoU (four decimals) in the name of train.py's weights of the last epoch."""
    found = [(int(m.group(1)), float(m.group(2))) for m in (
        WEIGHTS_MIOU.search(p) for p in glob.glob(os.path.join(save_dir, "epoch_*.params")))
        if m]
    if not found:
        raise ValueError("%s holds no epoch_*_mIoU_*.params" % save_dir)
    return max(found)[1]


def median_after_first(per_epoch):
    """The median of [(epoch, seconds per iteration)] over the epochs after the first, or of
    all when there is only one."""
    if not per_epoch:
        raise ValueError("no timed epoch")
    later = [t for epoch, t in per_epoch if epoch > min(e for e, _ in per_epoch)]
    return statistics.median(later or [t for _, t in per_epoch])


def our_iteration_time(log_path):
    """Median seconds per iteration of `segment train`'s log: each epoch's `training cost`
    over its iteration count (the last training-loss line of the epoch names it)."""
    with open(log_path) as f:
        text = f.read()
    iterations = {int(e): int(n) for e, n in OUR_ITERATIONS.findall(text)}
    per_epoch = [(int(e), float(s) / iterations[int(e)])
                 for e, s in OUR_EPOCH_TIME.findall(text) if iterations.get(int(e))]
    if not per_epoch:
        raise ValueError("%s has no `training cost` line with its iterations" % log_path)
    return median_after_first(per_epoch)


def gluoncv_iteration_time(times_path):
    """Median seconds per iteration of the wrapper's record of train.py's training epochs."""
    with open(times_path) as f:
        epochs = [json.loads(line) for line in f if line.strip()]
    return median_after_first([(i, e["seconds"] / e["iterations"])
                               for i, e in enumerate(epochs) if e["iterations"]])


def pooled_std(a, b):
    """The pooled sample standard deviation of two groups (n - 1 in each)."""
    dof = len(a) + len(b) - 2
    if dof < 1:
        return 0.0
    squares = sum((x - statistics.fmean(a)) ** 2 for x in a) + sum(
        (x - statistics.fmean(b)) ** 2 for x in b)
    return math.sqrt(squares / dof)


def same_within_noise(a, b):
    """(|mean a - mean b|, 2 x pooled std, whether the first is below the second; None with
    one run per side, where there is no noise to compare with)."""
    diff = abs(statistics.fmean(a) - statistics.fmean(b))
    bound = 2 * pooled_std(a, b)
    return diff, bound, (diff < bound if len(a) + len(b) > 2 else None)


def at_least_as_fast(ours, theirs):
    """Whether our per-iteration times are below GluonCV's on average, or above by less than
    2 x the pooled standard deviation (None when above with one run per side)."""
    excess = statistics.fmean(ours) - statistics.fmean(theirs)
    if excess <= 0:
        return True
    return excess < 2 * pooled_std(ours, theirs) if len(ours) + len(theirs) > 2 else None


# -- running ----------------------------------------------------------------------------------

def run_side(cmd, name, seed, stderr_path):
    start = time.time()
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    with open(stderr_path, "w") as f:
        f.write(out.stderr)
    if out.returncode != 0:
        sys.exit("segmentation_twin: %s run with seed %d failed (see %s):\n%s"
                 % (name, seed, stderr_path, out.stderr[-2000:]))
    return time.time() - start


def ours_run(args, seed):
    save_dir = os.path.join(args.run_dir, "ours-%d" % seed)
    wall = run_side([sys.executable, "-m", "gluon_tricks", *ours_argv(args, seed, save_dir)],
                    "segment train", seed, save_dir + ".stderr")
    log = os.path.join(save_dir, LOG_FILE)
    return final_metrics(log) + (our_iteration_time(log), wall)


def gluoncv_run(args, seed):
    save_dir = os.path.join(args.run_dir, "gluoncv-%d" % seed)
    spec = dict(script=args.gluoncv_script, argv=gluoncv_argv(args, save_dir), seed=seed,
                times=save_dir + ".times.jsonl", root=args.dataset_root,
                num_class=args.num_class, backbone=args.backbone,
                backbone_params=args.backbone_params)
    cmd = [sys.executable, os.path.abspath(__file__), "--gluoncv-script-run", json.dumps(spec)]
    wall = run_side(cmd, "train.py", seed, save_dir + ".stderr")
    pix_acc, _ = final_metrics(os.path.join(save_dir, LOG_FILE))
    return pix_acc, last_weights_miou(save_dir), gluoncv_iteration_time(spec["times"]), wall


def demo_set(work_dir):
    """The demo segmentation set (`demo-data --task segmentation`) under work_dir, drawn once."""
    root = os.path.join(work_dir, "demo-segmentation")
    if not os.path.isdir(root):
        os.makedirs(work_dir, exist_ok=True)
        building = tempfile.mkdtemp(prefix="demo-", dir=work_dir)
        os.rmdir(building)  # demo-data wants a new or empty folder; it makes it
        subprocess.run([sys.executable, "-m", "gluon_tricks", "demo-data", "--task",
                        "segmentation", building], cwd=REPO, check=True,
                       stdout=subprocess.DEVNULL)
        os.rename(building, root)
    return root


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gluoncv-script", help="GluonCV's segmentation train.py (required)")
    parser.add_argument("--backbone", default="resnet18_v1d",
                        help="our backbone, resnet{18,34,50,101,152}_v1{b,c,d} (resnet18_v1d: "
                        "the `demo` classifier, affordable on a CPU)")
    parser.add_argument("--backbone-params", help="a classifier checkpoint of this project of "
                        "--backbone, the backbone weights of both sides (required)")
    parser.add_argument("--dataset-root", default=None, help="an ADE20K-layout set of "
                        "--num-class classes (default: `demo-data --task segmentation` under "
                        "--work-dir)")
    parser.add_argument("--num-class", type=int, default=10, help="(10: the demo set)")
    parser.add_argument("--seeds", type=int, default=3, help="runs per side (3)")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="the seeds are first-seed, first-seed + 1, ... (0)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--test-batch-size", type=int, default=8,
                        help="a divisor of the validation set's size, so that GluonCV's "
                        "rollover loader validates every image once, as ours does (8: the "
                        "demo set's 40)")
    parser.add_argument("--crop-size", type=int, default=64)
    parser.add_argument("--base-size", type=int, default=96)
    parser.add_argument("--log-interval", type=int, default=100)
    parser.add_argument("--workers", type=int, default=0, help="data loader processes (0)")
    parser.add_argument("--work-dir", default=os.path.join(REPO, "runs", "segmentation_twin"))
    parser.add_argument("--gluoncv-script-run", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.gluoncv_script_run:
        return args
    for flag in ("gluoncv_script", "backbone_params"):
        path = getattr(args, flag)
        if not path:
            parser.error("--%s is required" % flag.replace("_", "-"))
        if not os.path.isfile(os.path.expanduser(path)):
            parser.error("--%s: no file %s" % (flag.replace("_", "-"), path))
        setattr(args, flag, os.path.abspath(os.path.expanduser(path)))
    try:
        depth_and_variant(args.backbone)
    except ValueError as error:
        parser.error(str(error))
    for flag in ("seeds", "epochs", "batch_size", "test_batch_size", "crop_size", "base_size",
                 "log_interval", "num_class"):
        if getattr(args, flag) < 1:
            parser.error("--%s must be at least 1" % flag.replace("_", "-"))
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.gluoncv_script_run:  # the child process of one run of GluonCV's script
        gluoncv_script_run(json.loads(args.gluoncv_script_run))
        return 0
    os.makedirs(args.work_dir, exist_ok=True)
    args.dataset_root = os.path.abspath(args.dataset_root or demo_set(args.work_dir))
    args.run_dir = tempfile.mkdtemp(prefix="runs-", dir=args.work_dir)
    depth, _ = depth_and_variant(args.backbone)
    print("shared flags: %s" % " ".join(shared_flags(args, "S", "DIR")))
    print("segment train also: --backbone %s --backbone-params --dataset-root --num-class %d "
          "--ngpus 0; train.py also: --backbone resnet%d --no-cuda"
          % (args.backbone, args.num_class, depth))
    print("backbone: %s; data: %s; %d seeds; runs in %s" % (
        args.backbone_params, args.dataset_root, args.seeds, args.run_dir), flush=True)
    sides = (("GluonCV train.py", gluoncv_run), ("gluon-tricks segment train", ours_run))
    results = {name: [] for name, _ in sides}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for name, run in sides:
            pix_acc, miou, per_iteration, wall = run(args, seed)
            results[name].append((pix_acc, miou, per_iteration))
            print("  seed %d  %-28s pixAcc %.4f  mIoU %.4f  %.3f s/iteration  (%.0f s)"
                  % (seed, name, pix_acc, miou, per_iteration, wall), flush=True)
    for name, runs in results.items():
        columns = list(zip(*runs))
        print("%-28s " % name + "; ".join(
            "%s mean %.4f std %.4f" % (label, statistics.fmean(values),
                                       statistics.stdev(values) if len(values) > 1 else 0.0)
            for label, values in zip(("pixAcc", "mIoU", "s/iteration"), columns))
            + "; over %d seeds" % len(runs))
    theirs, ours = (results[name] for name, _ in sides)
    for index, label in ((1, "mIoU"), (0, "pixAcc")):
        diff, bound, same = same_within_noise([r[index] for r in ours],
                                              [r[index] for r in theirs])
        print("%s: |mean difference| %.4f, 2 x pooled std %.4f: %s" % (label, diff, bound, {
            True: "the same within seed noise", False: "DIFFERENT beyond seed noise",
            None: "no verdict from one seed per side"}[same]))
    our_times, their_times = [r[2] for r in ours], [r[2] for r in theirs]
    print("speed: segment train %.3f s/iteration, train.py %.3f (ratio %.3f): %s" % (
        statistics.fmean(our_times), statistics.fmean(their_times),
        statistics.fmean(our_times) / statistics.fmean(their_times),
        {True: "at least as fast", False: "SLOWER beyond seed noise",
         None: "slower, no verdict from one seed per side"}[
             at_least_as_fast(our_times, their_times)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
