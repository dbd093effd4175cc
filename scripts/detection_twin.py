"""Detection twin: GluonCV's own train_faster_rcnn.py and `gluon-tricks detect train`, the same
flags, data and backbone weights, several seeds each, run alternately in one session; prints
every run's final VOC 07 mAP and its median seconds per training iteration, then mean and
standard deviation per side, and the verdicts: the mAPs agree when |mean difference| < 2 x the
pooled standard deviation; ours is at least as fast when its mean per-iteration time is below
GluonCV's or within that same noise bound.

GluonCV's train_faster_rcnn.py is a file of a dmlc/gluon-cv checkout
(scripts/detection/faster_rcnn/; not part of this repository). A wrapper runs it unmodified in a
fresh process, with the shared flags, and substitutes what it hard-codes for Pascal VOC:
- the data: gluoncv.data.VOCDetection gets the demo class names, --dataset-root as its root,
  and only the splits present there (the demo set has VOC2007 only);
- the backbone weights: faster_rcnn_resnet50_v1b_voc loads its "ImageNet-pretrained" ResNet
  through gluoncv.model_zoo.model_store.get_model_file; that file becomes --backbone-params (a
  classifier checkpoint of this project, of --network), its fc widened to 1000 classes with
  zero rows (fc is not part of the detector; every other array is the checkpoint's). Both
  sides start from these weights; the detection heads are initialised by each side's code;
- with --network resnet18_v1b or resnet18_v1d (affordable on a CPU; GluonCV's model zoo has no
  VOC detector of depth 18), the script runs with --network resnet18_v1b, and the wrapper
  registers faster_rcnn_resnet18_v1b_voc as GluonCV's own faster_rcnn_resnet50_v1b_voc
  function building on GluonCV's resnet18_v1b, or for resnet18_v1d on GluonCV's ResNetV1b
  class with resnet50_v1d's arguments (deep stem, average-pool downsampling);
- the recipe entries faster_rcnn_resnet50_v1b_voc passes to get_faster_rcnn: short and
  max_size (--short, --max-size), num_sample (--rcnn-num-samples), rpn_test_post_nms, and
  the RPN's proposal counts capped at the anchors of a short x short image exactly as
  `detect train` caps them (GluonCV fails on fewer anchors than proposals).
Everything else (GluonCV's ResNet, its split of it, train patterns, loader, sampler,
transforms, target generators, Parallel executor, SGD, warmup and steps, VOC07 metric) is the
script's own. Both sides seed themselves from --seed (the script: gluoncv.utils.random.seed).

Per-iteration time: each side logs its speed over every --log-interval iterations (GluonCV's
Speed lines); a run's time is the median of those after epoch 0 (epoch 0 builds the graphs),
so load from other processes on a shared machine moves it less than a mean would.

    git --git-dir=GLUON_CV/.git show HEAD:scripts/detection/faster_rcnn/train_faster_rcnn.py \
        > /tmp/gcvdet/train_faster_rcnn.py                     # gluon-cv 0.11.0 (5677756)
    make demo                                                   # runs/demo/resnet18_v1d-0010.params
    OMP_NUM_THREADS=1 .venv/bin/python scripts/detection_twin.py \
        --gluoncv-script /tmp/gcvdet/train_faster_rcnn.py \
        --backbone-params runs/demo/resnet18_v1d-0010.params   # 3 seeds a side, ~4 min a run
    .venv/bin/python scripts/detection_twin.py ... --first-seed 3   # three more seeds
"""
import argparse
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
# --network (ours) -> train_faster_rcnn.py's --network. resnet50_v1b is its model zoo's
# faster_rcnn_resnet50_v1b_voc; for the others the wrapper registers that same recipe function
# on GluonCV's ResNetV1b of that depth and variant (the script has no resnet18_v1d choice: it
# runs as resnet18_v1b, which picks the registered detector).
NETWORKS = {"resnet50_v1b": "resnet50_v1b", "resnet18_v1b": "resnet18_v1b",
            "resnet18_v1d": "resnet18_v1b"}


def gluoncv_resnet(network):
    """GluonCV's ResNet builder of `network`: its own function, or for resnet18_v1d its ResNetV1b
    class with resnet50_v1d's arguments (deep stem, average-pool downsampling) on resnet18's
    blocks, loading the "pretrained" file of that name as its functions do."""
    from gluoncv.model_zoo import resnetv1b
    if hasattr(resnetv1b, network):
        return getattr(resnetv1b, network)
    assert network == "resnet18_v1d", network

    def resnet18_v1d(pretrained=False, root=os.path.join("~", ".mxnet", "models"), ctx=None,
                     **kwargs):
        from gluoncv.model_zoo import model_store
        model = resnetv1b.ResNetV1b(resnetv1b.BasicBlockV1b, [2, 2, 2, 2], deep_stem=True,
                                    avg_down=True, name_prefix="resnetv1d_", **kwargs)
        if pretrained:
            model.load_parameters(model_store.get_model_file(network, tag=pretrained, root=root),
                                  ctx=ctx)
        return model
    return resnet18_v1d


def log_name(network):
    """Both sides name their log so."""
    return "faster_rcnn_%s_voc_train.log" % network


def shared_flags(args, seed):
    """The flags both commands take with the same name and meaning."""
    return ["--dataset", "voc", "--epochs", str(args.epochs),
            "--lr", str(args.lr), "--lr-decay-epoch", args.lr_decay_epoch,
            "--lr-warmup", str(args.lr_warmup), "--batch-size", str(args.batch_size),
            "--num-workers", str(args.workers), "--seed", str(seed),
            "--log-interval", str(args.log_interval),
            "--val-interval", str(args.epochs), "--save-interval", "0"]


def recipe_overrides(args):
    """What the wrapper gives GluonCV's get_faster_rcnn in place of the VOC recipe's values:
    the flags of `detect train` that train_faster_rcnn.py has no flag for."""
    from gluon_tricks.detection import model
    limits = model.proposal_limits(args.short)
    return dict(limits, short=args.short, max_size=args.max_size,
                num_sample=args.rcnn_num_samples,
                rpn_test_post_nms=min(args.rpn_test_post_nms, limits["rpn_test_post_nms"]))


def ours_argv(args, seed, prefix):
    """`gluon-tricks detect train` for one seed."""
    return ["detect", "train", "--network", args.network, *shared_flags(args, seed),
            "--dataset-root", args.dataset_root,
            "--classes", "demo", "--backbone-params", args.backbone_params,
            "--short", str(args.short), "--max-size", str(args.max_size),
            "--rcnn-num-samples", str(args.rcnn_num_samples),
            "--rpn-test-post-nms", str(args.rpn_test_post_nms), "--save-prefix", prefix]


def gluoncv_argv(args, seed, prefix):
    """train_faster_rcnn.py for one seed: the shared flags, on the CPU, local kvstore."""
    return ["--network", NETWORKS[args.network], *shared_flags(args, seed), "--gpus", "",
            "--kv-store", "local",
            "--save-prefix", prefix]


def widened_classifier(params_file, out_file, classes=1000):
    """`params_file` (our classifier) with fc grown to `classes` rows of zeros appended, so
    that GluonCV's ResNet of 1000 classes loads it; every other array unchanged."""
    import mxnet as mx
    saved = mx.nd.load(params_file)
    weight, bias = saved["fc.weight"], saved["fc.bias"]
    if weight.shape[0] > classes:
        raise ValueError("%s has %d classes, more than %d" % (params_file, weight.shape[0],
                                                               classes))
    pad = classes - weight.shape[0]
    saved["fc.weight"] = mx.nd.concat(weight, mx.nd.zeros((pad, weight.shape[1])), dim=0)
    saved["fc.bias"] = mx.nd.concat(bias, mx.nd.zeros((pad,)), dim=0)
    mx.nd.save(out_file, saved)
    return out_file


def install_substitutions(spec, patch=setattr):
    """Patch GluonCV as the module docstring says (spec: root, classes, backbone, recipe),
    each change made by `patch(module, name, value)` (a test passes monkeypatch.setattr)."""
    import gluoncv.data
    from gluoncv.model_zoo import model_store
    from gluoncv.model_zoo.rcnn.faster_rcnn import predefined_models

    voc = gluoncv.data.VOCDetection

    def __init__(self, root=None, splits=((2007, "trainval"), (2012, "trainval")), **kwargs):
        del root  # the script passes none: GluonCV's default, ~/.mxnet/datasets/voc
        present = [(year, name) for year, name in splits
                   if os.path.isdir(os.path.join(spec["root"], "VOC%d" % year))]
        voc.__init__(self, root=spec["root"], splits=present, **kwargs)
    patch(gluoncv.data, "VOCDetection", type("VOCDetection", (voc,), {
        "CLASSES": tuple(spec["classes"]), "__init__": __init__}))

    get_model_file = model_store.get_model_file

    def backbone_file(name, tag=None, root=os.path.join("~", ".mxnet", "models")):
        return (spec["backbone"] if name == spec["network"]
                else get_model_file(name, tag=tag, root=root))
    patch(model_store, "get_model_file", backbone_file)

    if spec["network"] != "resnet50_v1b":  # the same recipe function on another ResNet
        from gluoncv.model_zoo import model_zoo, resnetv1b
        voc_recipe = predefined_models.faster_rcnn_resnet50_v1b_voc
        depth = gluoncv_resnet(spec["network"])

        def faster_rcnn_voc(**kwargs):
            build = resnetv1b.resnet50_v1b
            resnetv1b.resnet50_v1b = depth  # the name voc_recipe imports when called
            try:
                return voc_recipe(**kwargs)
            finally:
                resnetv1b.resnet50_v1b = build
        patch(model_zoo, "_models", dict(model_zoo._models, **{
            "faster_rcnn_%s_voc" % NETWORKS[spec["network"]]: faster_rcnn_voc}))

    get_faster_rcnn = predefined_models.get_faster_rcnn
    patch(predefined_models, "get_faster_rcnn", lambda **kwargs: get_faster_rcnn(
        **dict(kwargs, **spec["recipe"])))


def gluoncv_script_run(spec):
    """Run train_faster_rcnn.py (spec: script, argv, and install_substitutions' entries)."""
    install_substitutions(spec)
    sys.argv = [spec["script"], *spec["argv"]]
    runpy.run_path(spec["script"], run_name="__main__")


# -- reading the logs (GluonCV's detection format, written by both sides) ---------------------

ITERATION = re.compile(r"\[Epoch (\d+)\]\[Batch \d+\], Speed: ([0-9.]+) samples/sec")


def read_log(path, batch_size):
    """(final mAP, median seconds per iteration after epoch 0, or over epoch 0 when it is the
    only one) of a log in GluonCV's detection format: the mAP as `report` reads it; the time
    from the Speed lines (samples/sec over the last log interval, so an iteration took
    batch_size / speed seconds)."""
    from gluon_tricks.figures.transfer_logs import parse_transfer_log
    log = parse_transfer_log(path)
    validated = log.runs[-1].validated() if log.runs and log.task == "detection" else []
    if not validated or "mAP" not in validated[-1].metrics:
        raise ValueError("%s has no mAP= line" % path)
    with open(path) as f:
        times = [(int(epoch), batch_size / float(speed))
                 for epoch, speed in ITERATION.findall(f.read()) if float(speed) > 0]
    if not times:
        raise ValueError("%s has no Speed lines (fewer iterations than --log-interval?)" % path)
    later = [t for epoch, t in times if epoch > 0] or [t for _, t in times]
    return validated[-1].metrics["mAP"], statistics.median(later)


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
    2 x the pooled standard deviation; None with one run per side."""
    if len(ours) + len(theirs) <= 2:
        return None
    return statistics.fmean(ours) - statistics.fmean(theirs) < 2 * pooled_std(ours, theirs)


# -- running ----------------------------------------------------------------------------------

def run_side(cmd, log_path, name, seed, args, stderr_path):
    start = time.time()
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    with open(stderr_path, "w") as f:
        f.write(out.stderr)
    if out.returncode != 0 or not os.path.isfile(log_path):
        sys.exit("detection_twin: %s run with seed %d failed (see %s):\n%s"
                 % (name, seed, stderr_path, out.stderr[-2000:]))
    return read_log(log_path, args.batch_size) + (time.time() - start,)


def ours_run(args, seed):
    prefix = os.path.join(args.run_dir, "ours-%d" % seed, "")
    cmd = [sys.executable, "-m", "gluon_tricks", *ours_argv(args, seed, prefix)]
    return run_side(cmd, prefix + log_name(args.network), "detect train", seed, args,
                    os.path.join(args.run_dir, "ours-%d.stderr" % seed))


def gluoncv_run(args, seed):
    prefix = os.path.join(args.run_dir, "gluoncv-%d" % seed, "")
    spec = dict(script=args.gluoncv_script, argv=gluoncv_argv(args, seed, prefix),
                network=args.network, root=args.devkit, classes=args.classes, backbone=args.widened,
                recipe=recipe_overrides(args))
    cmd = [sys.executable, os.path.abspath(__file__), "--gluoncv-script-run", json.dumps(spec)]
    return run_side(cmd, prefix + log_name(NETWORKS[args.network]), "train_faster_rcnn.py",
                    seed, args, os.path.join(args.run_dir, "gluoncv-%d.stderr" % seed))


def demo_set(work_dir, train_images=None):
    """The demo detection set (`demo-data --task detection`) under work_dir, drawn once; with
    `train_images`, only the first that many of its trainval images (test stays whole)."""
    from gluon_tricks.data import demo_scenes, voc
    root = os.path.join(work_dir, "demo-detection" + ("-%d" % train_images if train_images
                                                      else ""))
    if not os.path.isdir(root):
        os.makedirs(work_dir, exist_ok=True)
        building = tempfile.mkdtemp(prefix="demo-", dir=work_dir)
        demo_scenes.write_detection_set(building)
        listing = os.path.join(voc.year_folder(os.path.join(building, "VOCdevkit"), 2007),
                               voc.IMAGE_SETS, "trainval.txt")
        with open(listing) as f:
            ids = f.read().split()
        with open(listing, "w") as f:
            f.write("".join(i + "\n" for i in ids[:train_images or len(ids)]))
        os.rename(building, root)
    return root


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gluoncv-script", help="GluonCV's train_faster_rcnn.py (required)")
    parser.add_argument("--network", choices=sorted(NETWORKS), default="resnet18_v1d",
                        help="the backbone (resnet18_v1d: `make demo`'s classifier)")
    parser.add_argument("--backbone-params", help="a classifier checkpoint of this project of "
                        "--network, the backbone weights of both sides (required)")
    parser.add_argument("--dataset-root", default=None, help="a VOC-layout set with the demo "
                        "classes (default: `demo-data --task detection` under --work-dir)")
    parser.add_argument("--train-images", type=int, default=50,
                        help="without --dataset-root: train on the first N of the demo set's "
                        "100 trainval images (50; the 40 test images stay)")
    parser.add_argument("--seeds", type=int, default=3, help="runs per side (3)")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="seeds --first-seed .. --first-seed + --seeds - 1 (0)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--lr-decay-epoch", default="2", help="epochs where the lr drops 10x")
    parser.add_argument("--lr-warmup", type=float, default=20, help="warmup iterations")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--short", type=int, default=96)
    parser.add_argument("--max-size", type=int, default=144)
    parser.add_argument("--rcnn-num-samples", type=int, default=8)
    parser.add_argument("--rpn-test-post-nms", type=int, default=20)
    parser.add_argument("--log-interval", type=int, default=10,
                        help="iterations per timed Speed line (10)")
    parser.add_argument("--workers", type=int, default=0, help="data loader processes (0)")
    parser.add_argument("--work-dir", default=os.path.join(REPO, "runs", "detection_twin"))
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
    for flag in ("seeds", "epochs", "batch_size", "log_interval", "short", "max_size",
                 "rcnn_num_samples", "rpn_test_post_nms", "train_images"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            parser.error("--%s must be at least 1" % flag.replace("_", "-"))
    if args.first_seed < 0:
        parser.error("--first-seed must not be negative")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.gluoncv_script_run:  # the child process of one run of GluonCV's script
        gluoncv_script_run(json.loads(args.gluoncv_script_run))
        return 0
    from gluon_tricks.data.demo_data import CLASSES
    from gluon_tricks.detection import data
    os.makedirs(args.work_dir, exist_ok=True)
    if args.dataset_root is None:
        args.dataset_root = demo_set(args.work_dir, args.train_images)
    args.dataset_root = os.path.abspath(args.dataset_root)
    args.devkit = data.devkit(args.dataset_root)
    args.classes = list(CLASSES)
    args.run_dir = tempfile.mkdtemp(prefix="runs-", dir=args.work_dir)
    args.widened = widened_classifier(args.backbone_params,
                                      os.path.join(args.run_dir, "backbone-1000.params"))
    print("shared flags: %s" % " ".join(shared_flags(args, "S")))
    print("detect train also: --short %d --max-size %d --rcnn-num-samples %d "
          "--rpn-test-post-nms %d; GluonCV's recipe substituted: %s" % (
              args.short, args.max_size, args.rcnn_num_samples, args.rpn_test_post_nms,
              json.dumps(recipe_overrides(args), sort_keys=True)))
    print("backbone: %s; data: %s; %d seeds; logs in %s" % (
        args.backbone_params, args.dataset_root, args.seeds, args.run_dir), flush=True)
    sides = (("GluonCV train_faster_rcnn.py", gluoncv_run), ("gluon-tricks detect train",
                                                              ours_run))
    results = {name: [] for name, _ in sides}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for name, run in sides:
            mean_ap, per_iteration, wall = run(args, seed)
            results[name].append((mean_ap, per_iteration))
            print("  seed %d  %-30s mAP %.4f  %.3f s/iteration  (%.0f s)"
                  % (seed, name, mean_ap, per_iteration, wall), flush=True)
    for name, runs in results.items():
        maps, times = [r[0] for r in runs], [r[1] for r in runs]
        print("%-30s mAP mean %.4f std %.4f; s/iteration mean %.3f std %.3f; over %d seeds"
              % (name, statistics.fmean(maps), statistics.stdev(maps) if len(maps) > 1 else 0.0,
                 statistics.fmean(times), statistics.stdev(times) if len(times) > 1 else 0.0,
                 len(runs)))
    theirs, ours = (results[name] for name, _ in sides)
    diff, bound, same = same_within_noise([r[0] for r in ours], [r[0] for r in theirs])
    print("mAP: |mean difference| %.4f, 2 x pooled std %.4f: %s" % (diff, bound, {
        True: "the same within seed noise", False: "DIFFERENT beyond seed noise",
        None: "no verdict from one seed per side"}[same]))
    faster = at_least_as_fast([r[1] for r in ours], [r[1] for r in theirs])
    print("speed: detect train %.3f s/iteration, train_faster_rcnn.py %.3f (ratio %.3f): %s" % (
        statistics.fmean(r[1] for r in ours), statistics.fmean(r[1] for r in theirs),
        statistics.fmean(r[1] for r in ours) / statistics.fmean(r[1] for r in theirs),
        {True: "at least as fast", False: "SLOWER beyond noise",
         None: "no verdict from one seed per side"}[faster]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
