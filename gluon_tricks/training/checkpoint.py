"""Checkpoints that resume exactly: weights, optimiser state (momentum, update count), and a JSON
with the epoch, the global step, the resolved configuration and the random-stream seed.

Every file is written to a temporary name and renamed, and the JSON is written last: a checkpoint
is complete exactly when its JSON exists, so a crash mid-write never leaves a half checkpoint that
looks whole. Every random stream of training (data order, augmentation, mixup) is derived from
(seed, epoch), so the JSON's seed and epoch restore them all.
"""
import glob
import json
import os
import re

from gluon_tricks.errors import UserError


def _atomic(path, write):
    tmp = "%s.tmp-%d" % (path, os.getpid())
    write(tmp)
    os.replace(tmp, path)


def checkpoint_prefix(save_dir, model, epoch):
    """Files of the checkpoint taken after `epoch` epochs: PREFIX.params/.states/.json."""
    return os.path.join(save_dir, "%s-%04d" % (model, epoch))


def save_checkpoint(save_dir, net, trainer, model, epoch, step, config):
    """Write the checkpoint taken after `epoch` completed epochs; returns its JSON path."""
    prefix = checkpoint_prefix(save_dir, model, epoch)
    _atomic(prefix + ".params", net.save_parameters)
    _atomic(prefix + ".states", trainer.save_states)
    record = {"epoch": epoch, "step": step, "params": os.path.basename(prefix + ".params"),
              "states": os.path.basename(prefix + ".states"), "config": config,
              "rng": {"seed": config["seed"], "streams": "derived from (seed, epoch)"}}

    def write_json(path):
        with open(path, "w") as f:
            json.dump(record, f, indent=1, sort_keys=True)
    _atomic(prefix + ".json", write_json)
    return prefix + ".json"


def find_latest(save_dir, model):
    """The newest complete checkpoint of `model` in `save_dir`, as its loaded JSON, or None."""
    best = None
    for path in glob.glob(os.path.join(glob.escape(save_dir), "%s-*.json" % glob.escape(model))):
        match = re.fullmatch(r".*-(\d{4,})\.json", path)
        if not match:
            continue
        try:
            with open(path) as f:
                record = json.load(f)
        except (OSError, ValueError):
            continue  # an unreadable JSON is not a checkpoint
        record["path"] = path
        files = [os.path.join(save_dir, record.get(k, "")) for k in ("params", "states")]
        if all(os.path.isfile(f) for f in files) and (best is None or
                                                       record["epoch"] > best["epoch"]):
            best = record
    return best


def check_compatible(record, run):
    """A checkpoint continues only the run that wrote it: every RunConfig field marked
    `breaks_resume` must agree (fields an older checkpoint did not save are not compared)."""
    from gluon_tricks.training.run_config import resume_fields
    saved, current = record.get("config", {}), run.as_dict()
    differ = [k for k in resume_fields() if k in saved and saved[k] != current[k]]
    if differ:
        raise UserError("%s was written by a different run (differs in: %s); use another "
                        "--save-dir or the same flags" % (record["path"], ", ".join(
                            "%s %r -> %r" % (k, saved[k], current[k]) for k in differ)))


def load_checkpoint(record, net, trainer, ctx):
    """Load weights and optimiser state of a checkpoint record into `net` and `trainer`."""
    save_dir = os.path.dirname(record["path"])
    net.load_parameters(os.path.join(save_dir, record["params"]), ctx=ctx)
    trainer.load_states(os.path.join(save_dir, record["states"]))
    return record["epoch"], record["step"]


def check_writable(save_dir):
    """Create `save_dir` and prove it is writable before training starts."""
    try:
        os.makedirs(save_dir, exist_ok=True)
        probe = os.path.join(save_dir, ".write-test-%d" % os.getpid())
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as error:
        raise UserError("--save-dir %s is not writable: %s" % (save_dir, error.strerror)) from None
