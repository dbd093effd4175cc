"""Twin runs: one recipe trained through GluonCV's ImageNet pipeline and through `gluon-tricks
train --augmentation gluoncv`, several seeds each, on the same RecordIO (the demo set, or with
--data exact-size written digits at exactly the input size, scripts/exact_size_data.py, or with
--data sklearn-digits scikit-learn's 8x8 digits enlarged to the input size, issue 21's set);
prints the final validation top-1 of every run, then mean and standard deviation per pipeline.

The GluonCV twin is a plain loop as in GluonCV's train_imagenet.py with --use-rec:
mx.io.ImageRecordIter with GluonCV's training and validation settings, GluonCV's network of the
same name (gluoncv.model_zoo, `last_gamma` passed as that script passes it), NAG with GluonCV's
LRSequential warm-up + decay schedule, wd_mult 0 on beta/gamma/bias with --no-wd, and
gluon.Trainer. Its initialiser is the paper's Xavier (ours) instead of MSRAPrelu, so that only
the implementations differ. Each run is a fresh process.

With --gluoncv-script PATH the GluonCV twin is GluonCV's own train_imagenet.py (a file of a
dmlc/gluon-cv checkout, scripts/classification/imagenet/; not part of this repository), run
unmodified with the same flags by a wrapper that seeds random, numpy and mxnet, passes the seed
to ImageRecordIter's shuffle (its augmentation draws come from generators seeded with constants,
the same in every run), and substitutes three things the script hard-codes for ImageNet: the
class count (1000; here the data set's), the initialiser (MSRAPrelu; here the paper's Xavier, as
ours) and --num-training-samples (1281167, which sizes the LR schedule; here the data set's).
--gluoncv-script-defaults keeps the first and last as the script has them. Its validation top-1
is the script's own, over whole batches only: on the 360 validation digits of --data
sklearn-digits, 11 batches (352 images) in most epochs and 12 (384, the last one filled by
ImageRecordIter's round_batch) in some; ours counts every validation image once.

    .venv/bin/python scripts/twin_runs.py                 # 3 seeds x 2 pipelines, 10 epochs each
    .venv/bin/python scripts/twin_runs.py --seeds 1 --epochs 1 --work-dir /tmp/twins
    .venv/bin/python scripts/twin_runs.py --data exact-size --epochs 6 --no-last-gamma \
        --workers 2 --gluoncv-script ~/gluon-cv/scripts/classification/imagenet/train_imagenet.py
"""
import argparse
import json
import math
import os
import random
import re
import runpy
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = ("--input-size", "--batch-size", "--lr", "--lr-mode", "--warmup-epochs", "--num-epochs")


def recipe(args):
    """The shared flags, as `gluon-tricks train` spells them."""
    flags = ["--model", args.model, "--mode", args.mode, "--input-size", str(args.input_size),
             "--batch-size", str(args.batch_size), "--lr", str(args.lr), "--lr-mode", args.lr_mode,
             "--warmup-epochs", str(args.warmup_epochs), "--num-epochs", str(args.epochs)]
    if args.last_gamma:
        flags.append("--last-gamma")
    if args.no_wd:
        flags.append("--no-wd")
    return flags


# -- the GluonCV twin (runs in its own process) -----------------------------------------------

def gluoncv_run(args):
    """Train as GluonCV's train_imagenet.py --use-rec does; returns the final top-1 accuracy."""
    import mxnet as mx
    from mxnet import autograd, gluon
    from gluoncv.model_zoo import get_model
    from gluoncv.utils import LRScheduler, LRSequential

    from gluon_tricks.data import transforms as T
    from gluon_tricks.models import paper_initializer

    mx.random.seed(args.seed)
    np.random.seed(args.seed)
    ctx = mx.cpu()
    norm = dict(mean_r=T.MEAN_RGB[0], mean_g=T.MEAN_RGB[1], mean_b=T.MEAN_RGB[2],
                std_r=T.STD_RGB[0], std_g=T.STD_RGB[1], std_b=T.STD_RGB[2])
    shape = (3, args.input_size, args.input_size)
    train_data = mx.io.ImageRecordIter(
        path_imgrec=args.data["train_rec"], path_imgidx=args.data["train_idx"],
        preprocess_threads=args.workers, shuffle=True, batch_size=args.batch_size,
        data_shape=shape, rand_mirror=True, random_resized_crop=True,
        max_aspect_ratio=4.0 / 3.0, min_aspect_ratio=3.0 / 4.0, max_random_area=1,
        min_random_area=0.08, brightness=0.4, saturation=0.4, contrast=0.4, pca_noise=0.1,
        seed=args.seed, **norm)
    val_data = mx.io.ImageRecordIter(
        path_imgrec=args.data["val_rec"], path_imgidx=args.data["val_idx"],
        preprocess_threads=args.workers, shuffle=False, batch_size=args.batch_size,
        resize=int(math.ceil(args.input_size / 0.875)), data_shape=shape, **norm)
    num_batches = args.train_count // args.batch_size
    schedule = LRSequential([
        LRScheduler("linear", base_lr=0, target_lr=args.lr, nepochs=args.warmup_epochs,
                    iters_per_epoch=num_batches),
        LRScheduler(args.lr_mode, base_lr=args.lr, target_lr=0,
                    nepochs=args.epochs - args.warmup_epochs, iters_per_epoch=num_batches,
                    step_epoch=[], step_factor=0.1, power=2)])
    kwargs = {"classes": args.classes, "pretrained": False}
    if args.last_gamma:
        kwargs["last_gamma"] = True
    net = get_model(args.model, **kwargs)
    net.initialize(paper_initializer(), ctx=ctx)
    if getattr(args, "zero_last_gamma", False):  # what last_gamma would do in BasicBlockV1b
        for stage in (net.layer1, net.layer2, net.layer3, net.layer4):
            for block in stage:
                if hasattr(block, "bn3"):
                    raise SystemExit("--gluoncv-zero-last-gamma is for BasicBlockV1b networks")
                block.bn2.gamma.set_data(mx.nd.zeros_like(block.bn2.gamma.data()))
    if args.no_wd:
        for param in net.collect_params(".*beta|.*gamma|.*bias").values():
            param.wd_mult = 0.0
    if args.mode == "hybrid":
        net.hybridize(static_alloc=True, static_shape=True)
    trainer = gluon.Trainer(net.collect_params(), "nag",
                            {"wd": 1e-4, "momentum": 0.9, "lr_scheduler": schedule})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    top1, train_top1 = mx.metric.Accuracy(), mx.metric.Accuracy()
    for epoch in range(args.epochs):
        train_data.reset()
        train_top1.reset()
        for batch in train_data:
            data, label = batch.data[0].as_in_context(ctx), batch.label[0].as_in_context(ctx)
            with autograd.record():
                output = net(data)
                loss = loss_fn(output, label)
            loss.backward()
            trainer.step(args.batch_size)
            train_top1.update([label], [output])
        val_data.reset()
        top1.reset()
        for batch in val_data:
            keep = args.batch_size - batch.pad
            output = net(batch.data[0].as_in_context(ctx))
            top1.update([batch.label[0][:keep]], [output[:keep]])
        print("[Epoch %d] training top-1 %.4f validation top-1 %.4f"
              % (epoch, train_top1.get()[1], top1.get()[1]), file=sys.stderr, flush=True)
    return top1.get()[1]


def gluoncv_script_argv(args, seed, work):
    """The command line of GluonCV's train_imagenet.py for this recipe (its own flag names)."""
    d = args.data
    argv = [*recipe(args), "-j", str(args.workers), "--use-rec", "--rec-train", d["train_rec"],
            "--rec-train-idx", d["train_idx"], "--rec-val", d["val_rec"], "--rec-val-idx",
            d["val_idx"], "--log-interval", "0", "--save-frequency", str(args.epochs + 1),
            "--save-dir", os.path.join(work, "gluoncv-%d" % seed), "--logging-file",
            os.path.join(work, "gluoncv-%d.log" % seed)]
    if not args.gluoncv_script_defaults:
        argv += ["--num-training-samples", str(args.train_count)]
    return argv


def gluoncv_script_run(spec):
    """Run GluonCV's train_imagenet.py (spec: script, argv, seed, classes, keep_defaults) in
    this process, seeded, with the substitutions of the module docstring."""
    import gluoncv.model_zoo
    import mxnet as mx

    from gluon_tricks.models import paper_initializer

    seed = spec["seed"]
    random.seed(seed)
    np.random.seed(seed)
    mx.random.seed(seed)
    mx.init.MSRAPrelu = lambda *a, **k: paper_initializer()
    record_iter = mx.io.ImageRecordIter
    mx.io.ImageRecordIter = lambda **kw: record_iter(**(dict(kw, seed=seed) if kw.get("shuffle")
                                                        else kw))
    if not spec["keep_defaults"]:
        get_model = gluoncv.model_zoo.get_model
        gluoncv.model_zoo.get_model = lambda name, **kw: get_model(
            name, **dict(kw, classes=spec["classes"]))
    sys.argv = [spec["script"], *spec["argv"]]
    runpy.run_path(spec["script"], run_name="__main__")


# -- ours ------------------------------------------------------------------------------------

def ours_run(args, seed, work):
    """`gluon-tricks train --augmentation gluoncv` on the same records; the final top-1."""
    d = args.data
    cmd = [sys.executable, "-m", "gluon_tricks", "train", *recipe(args), "--augmentation",
           "gluoncv", "--use-rec", "--rec-train", d["train_rec"], "--rec-train-idx",
           d["train_idx"], "--rec-val", d["val_rec"], "--rec-val-idx", d["val_idx"], "-j",
           str(args.workers), "--seed", str(seed), "--save-frequency", "0", "--save-dir",
           os.path.join(work, "ours-%d" % seed), "--logging-file",
           os.path.join(work, "ours-%d.log" % seed)]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    found = re.search(r"final validation: err-top1=([0-9.]+)", out.stdout)
    if out.returncode != 0 or not found:
        sys.exit("twin_runs: our run with seed %d failed:\n%s" % (seed, out.stderr[-2000:]))
    return 1.0 - float(found.group(1))


def gluoncv_subprocess(args, seed):
    if args.gluoncv_script:
        spec = dict(script=args.gluoncv_script, argv=gluoncv_script_argv(args, seed, args.run_dir),
                    seed=seed, classes=args.classes, keep_defaults=args.gluoncv_script_defaults)
        cmd = [sys.executable, os.path.abspath(__file__), "--gluoncv-script-run", json.dumps(spec)]
    else:
        cmd = [sys.executable, os.path.abspath(__file__), "--gluoncv-run", json.dumps(
            dict(vars(args), seed=seed))]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    with open(os.path.join(args.run_dir, "gluoncv-%d.stderr" % seed), "w") as f:
        f.write(out.stderr)
    if args.gluoncv_script:
        errors = re.findall(r"validation: err-top1=([0-9.]+)", out.stderr)  # its log lines
        found = errors and (1.0 - float(errors[-1]),)
    else:
        found = re.search(r"^top1 ([0-9.]+)$", out.stdout, re.M)
        found = found and found.groups()
    if out.returncode != 0 or not found:
        sys.exit("twin_runs: GluonCV run with seed %d failed:\n%s" % (seed, out.stderr[-2000:]))
    return float(found[0])


def demo_records(work):
    """The demo set (`gluon-tricks demo-data`) under work/demo-data, drawn once."""
    from gluon_tricks.data import demo_data
    paths = demo_data.write_demo_data(os.path.join(work, "demo-data"))
    return dict(paths, train_count=demo_data.SPLITS["train"], classes=len(demo_data.CLASSES))


def exact_size_records(work, size, train, val):
    """Written digits of exactly size x size (scripts/exact_size_data.py), drawn once."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import exact_size_data
    root = os.path.join(work, "exact-size-%d-%d-%d" % (size, train, val))
    paths = {s + "_" + k: os.path.join(root, "%s.%s" % (s, k)) for s in ("train", "val")
             for k in ("rec", "idx")}
    if not all(os.path.exists(p) for p in paths.values()):
        paths = exact_size_data.write_exact_size_data(root, size, train, val)
    return dict(paths, train_count=train, classes=len(exact_size_data.CLASSES))


def digits_records(work, size, csv_path):
    """scikit-learn's digits enlarged to size x size (scripts/exact_size_data.py --digits),
    written once."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import exact_size_data
    root = os.path.join(work, "sklearn-digits-%d" % size)
    paths = {s + "_" + k: os.path.join(root, "%s.%s" % (s, k)) for s in ("train", "val")
             for k in ("rec", "idx")}
    train = exact_size_data.DIGITS_COUNT - exact_size_data.DIGITS_VAL
    if not all(os.path.exists(p) for p in paths.values()):
        if not csv_path or not os.path.isfile(csv_path):
            sys.exit("twin_runs: --data sklearn-digits needs --digits-csv, scikit-learn's "
                     "sklearn/datasets/data/digits.csv.gz (pip install scikit-learn anywhere)")
        paths = exact_size_data.write_digits_data(root, csv_path, size)
    return dict(paths, train_count=train, classes=len(exact_size_data.CLASSES))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="runs per pipeline (3)")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="seeds --first-seed .. --first-seed + --seeds - 1 (0)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--data", choices=("demo", "exact-size", "sklearn-digits"),
                        default="demo", help="the demo set (64-160 px JPEGs), written digits of "
                        "exactly --input-size (PNGs, scripts/exact_size_data.py) or scikit-learn's "
                        "8x8 digits enlarged to --input-size (PNGs, exact_size_data.py --digits)")
    parser.add_argument("--digits-csv", help="--data sklearn-digits: scikit-learn's "
                        "sklearn/datasets/data/digits.csv.gz")
    parser.add_argument("--exact-size-counts", default="1500,500",
                        help="--data exact-size: training and validation images (1500,500)")
    parser.add_argument("--model", default="resnet18_v1b")
    parser.add_argument("--mode", choices=("hybrid", "imperative"), default="hybrid")
    parser.add_argument("--input-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--lr-mode", default="cosine")
    parser.add_argument("--warmup-epochs", type=int, default=1)
    parser.add_argument("--no-last-gamma", dest="last_gamma", action="store_false")
    parser.add_argument("--wd-on-bn", dest="no_wd", action="store_false",
                        help="keep weight decay on BN and biases (default: --no-wd)")
    parser.add_argument("--gluoncv-zero-last-gamma", dest="zero_last_gamma",
                        action="store_true", help="GluonCV twin: zero the last BN gamma of each "
                        "BasicBlockV1b by hand (GluonCV's last_gamma does not reach them)")
    parser.add_argument("--gluoncv-script", help="GluonCV twin: GluonCV's own train_imagenet.py "
                        "at this path, run by a seeding wrapper (see above), not the plain loop")
    parser.add_argument("--gluoncv-script-defaults", action="store_true",
                        help="with --gluoncv-script: keep its 1000 classes and its default "
                        "--num-training-samples (ImageNet's), as a user running it unchanged")
    parser.add_argument("--arms", default="gluoncv,ours",
                        help="which pipelines to run: gluoncv, ours or both (default both)")
    parser.add_argument("--workers", type=int, default=1, help="decoding threads/processes")
    parser.add_argument("--work-dir", default=os.path.join(REPO, "runs", "twin_runs"))
    parser.add_argument("--gluoncv-run", help=argparse.SUPPRESS)
    parser.add_argument("--gluoncv-script-run", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.gluoncv_run:  # the child process of one GluonCV run
        print("top1 %.6f" % gluoncv_run(argparse.Namespace(**json.loads(args.gluoncv_run))))
        return 0
    if args.gluoncv_script_run:  # the child process of one run of GluonCV's script
        gluoncv_script_run(json.loads(args.gluoncv_script_run))
        return 0
    if args.gluoncv_script:
        args.gluoncv_script = os.path.abspath(os.path.expanduser(args.gluoncv_script))
        if not os.path.isfile(args.gluoncv_script):
            parser.error("--gluoncv-script: no file %s" % args.gluoncv_script)
    os.makedirs(args.work_dir, exist_ok=True)
    if args.data == "exact-size":
        train, val = (int(n) for n in args.exact_size_counts.split(","))
        args.data = exact_size_records(args.work_dir, args.input_size, train, val)
    elif args.data == "sklearn-digits":
        args.data = digits_records(args.work_dir, args.input_size, args.digits_csv)
    else:
        args.data = demo_records(args.work_dir)
    args.run_dir = tempfile.mkdtemp(prefix="runs-", dir=args.work_dir)  # checkpoints and logs
    args.train_count, args.classes = args.data["train_count"], args.data["classes"]
    print("recipe: %s; %d seeds%s" % (" ".join(recipe(args)), args.seeds, (
        "; GluonCV twin: last BN gamma of each block zeroed by hand" if args.zero_last_gamma
        else "")), flush=True)
    gluoncv_name = ("GluonCV train_imagenet.py" if args.gluoncv_script
                    else "ImageRecordIter + GluonCV loop")
    arms = {"gluoncv": (gluoncv_name, lambda s: gluoncv_subprocess(args, s)),
            "ours": ("gluon-tricks --augmentation gluoncv",
                     lambda s: ours_run(args, s, args.run_dir))}
    chosen = [arms[a] for a in args.arms.split(",") if a in arms]
    if not chosen:
        parser.error("--arms: give gluoncv, ours or gluoncv,ours")
    results = {name: [] for name, _ in chosen}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for name, run in chosen:
            start = time.time()
            results[name].append(run(seed))
            print("  seed %d  %-36s top-1 %.4f  (%.0f s)" % (seed, name, results[name][-1],
                                                             time.time() - start), flush=True)
    for name, accs in results.items():
        print("%-36s top-1 mean %.4f std %.4f over %d seeds: %s" % (
            name, np.mean(accs), np.std(accs, ddof=1) if len(accs) > 1 else 0.0, len(accs),
            " ".join("%.4f" % a for a in accs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
