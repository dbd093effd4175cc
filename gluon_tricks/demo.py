"""`make demo` / `gluon-tricks demo`: a ResNet-D trained with the paper's full recipe on the
embedded data set, on the CPU, in minutes; then evaluated from its saved checkpoint."""
import os

from gluon_tricks.cli import main
from gluon_tricks.training.checkpoint import find_latest

DEMO_FLAGS = [
    "--model", "resnet18_v1d", "--input-size", "32", "--batch-size", "64",
    "--num-epochs", "10", "--warmup-epochs", "2", "--lr-mode", "cosine", "--lr", "0.1",
    "--last-gamma", "--no-wd", "--label-smoothing", "--mixup", "--mixup-off-epoch", "2",
    "-j", "2", "--log-interval", "10", "--save-frequency", "5",
]


def add_arguments(parser):
    parser.add_argument("--out", default="runs/demo", help="where the log and checkpoints go "
                        "(an existing run there is resumed)")
    parser.add_argument("--num-epochs", type=int, default=None, help="override the epochs")


def run(args):
    flags = list(DEMO_FLAGS)
    if args.num_epochs:
        flags[flags.index("--num-epochs") + 1] = str(args.num_epochs)
    log = os.path.join(args.out, "train.log")
    flags += ["--save-dir", args.out, "--logging-file", log]
    print("gluon-tricks train " + " ".join(flags))
    status = main(["train"] + flags)
    if status:
        return status
    record = find_latest(args.out, "resnet18_v1d")
    params = os.path.join(args.out, record["params"])
    print("gluon-tricks eval --model resnet18_v1d --params %s --input-size 32" % params)
    status = main(["eval", "--model", "resnet18_v1d", "--params", params, "--input-size", "32",
                   "-j", "2", "--save-logits", os.path.join(args.out, "val_logits.npz")])
    print("log: %s (and %s.jsonl); checkpoint: %s" % (log, log, params))
    return status
