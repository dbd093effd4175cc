"""Checkpoints that resume exactly, and that a damaged or hostile file cannot subvert: weights,
optimiser state (momentum, update counts), and a JSON with the epoch, the batch within it, the
global step, the resolved configuration and the random-stream seed.

Every file is written to a temporary name and renamed, and the JSON is written last: a checkpoint
is complete exactly when its JSON exists. The JSON lists every file with its size and SHA-256,
checked before anything is loaded; file names are plain names inside the save dir. The optimiser
state is an NDArray file (optimizer_state.py), never a pickle. Weights that are NaN or infinite
are never written, and a checkpoint is "good" only if its weights are finite. Every random
stream of training is derived from (seed, epoch, batch), so the JSON's seed, epoch and batch
restore them all.
"""
import glob
import json
import os
import re

import numpy as np

from gluon_tricks import files
from gluon_tricks.errors import UserError, error_summary
from gluon_tricks.models.params import file_kind, load_into, non_finite
from gluon_tricks.training import optimizer_state

FORMAT = 2  # 1: pickled .states and no digests (refused: see optimizer_state)
_NAME = re.compile(r"-(\d{4,})(?:-batch(\d{6,}))?\.json$")


class CheckpointInvalid(Exception):
    """A checkpoint that fails verification (the message says which file and why)."""


class NonFiniteWeights(UserError):
    """The network's weights or optimiser state hold NaN or infinity."""


def checkpoint_prefix(save_dir, model, epoch, batch=0):
    """Files of the checkpoint taken after `epoch` epochs (and `batch` batches of the next one,
    when interrupted mid-epoch): PREFIX.params/.states/.json."""
    name = "%s-%04d" % (model, epoch) + ("-batch%06d" % batch if batch else "")
    return os.path.join(save_dir, name)


def non_finite_parameters(net, trainer=None):
    """Names of the parameters (and optimiser states) holding NaN or infinity. One reduction per
    array on its device (x * 0 is 0 exactly when x is finite) and one copy to the host."""
    import mxnet as mx
    named = [(name, param.list_data()[0]) for name, param in net.collect_params().items()]
    if trainer is not None:
        for index, state in _trainer_states(trainer):
            named += [("optimizer state %d" % index, array) for array in state]
    if not named:
        return []
    checks = mx.nd.stack(*[(array.astype("float32", copy=False) * 0).sum().as_in_context(
        mx.cpu()) for _, array in named]).asnumpy()
    return [name for (name, _), value in zip(named, checks) if not np.isfinite(value)]


def _trainer_states(trainer):
    updaters = optimizer_state._updaters(trainer)
    for index, state in sorted(updaters[0].states.items()) if updaters else []:
        yield index, optimizer_state._arrays(state)


def checkpoint_bytes(net):
    """An upper bound of one checkpoint's size: the weights, and up to twice as much state (the
    momentum, and an FP32 master copy under FP16)."""
    weights = sum(int(np.prod(p.shape)) * 4 for p in net.collect_params().values())
    return 3 * weights + (1 << 20)


def save_checkpoint(save_dir, net, trainer, model, epoch, step, config, batch=0,
                    rank_statistics=None, loss_scaler=None, progress=None):
    """Write the checkpoint taken after `epoch` completed epochs and `batch` batches of the next;
    returns its JSON path. Refuses non-finite weights, and a disk without room for it.
    `config`: the RunConfig (or its dict); `loss_scaler`: the LossScaler's state, kept apart;
    `progress`: a small JSON dict of what the run tracks across epochs (a best mAP so far).
    `rank_statistics` (mid-epoch under Horovod): every rank's BatchNorm running statistics, an
    NDArray (ranks, values), saved as PREFIX.ranks; a resume gives each rank its own back."""
    bad = non_finite_parameters(net, trainer)
    if bad:
        raise NonFiniteWeights("refusing to write a checkpoint at epoch %d, batch %d: %d arrays "
                               "hold NaN or infinity (first: %s)" % (epoch, batch, len(bad),
                                                                     bad[0]))
    check_writable(save_dir)  # a save dir gone read-only (or away) since the start: one line
    files.require_free_space(save_dir, checkpoint_bytes(net), "a checkpoint")
    prefix = checkpoint_prefix(save_dir, model, epoch, batch)
    _write_weights(prefix + ".params", net)
    files.write_atomically(prefix + ".states",
                           lambda path: optimizer_state.save_states(trainer, path))
    kinds = ["params", "states"]
    if rank_statistics is not None:
        import mxnet as mx
        files.write_atomically(prefix + ".ranks", lambda path: mx.nd.save(
            path, {"running_statistics": rank_statistics}))
        kinds.append("ranks")
    listing = {}
    for kind in kinds:
        size, sha256 = files.digest(prefix + "." + kind)
        listing[kind] = {"name": os.path.basename(prefix + "." + kind), "size": size,
                         "sha256": sha256}
    config = config.as_dict() if hasattr(config, "as_dict") else dict(config)
    record = {"format": FORMAT, "epoch": epoch, "batch": batch, "step": step,
              "params": listing["params"]["name"], "states": listing["states"]["name"],
              "files": listing, "config": config, "loss_scaler": loss_scaler,
              "progress": dict(progress or {}),
              "rng": {"seed": config.get("seed"),
                      "streams": "derived from (seed, epoch, batch)"}}

    def write_json(path):
        with open(path, "w") as f:
            json.dump(record, f, indent=1, sort_keys=True)
    files.write_atomically(prefix + ".json", write_json)
    return prefix + ".json"


def _write_weights(path, net):
    """net.save_parameters to `path`, atomically; MXNet's own write errors (which carry no
    errno) in one line naming the file."""
    import mxnet as mx
    try:
        files.write_atomically(path, net.save_parameters)
    except mx.base.MXNetError as error:
        raise UserError("cannot write the checkpoint file %s: %s"
                        % (path, error_summary(error))) from None


def loss_scaler_state(record):
    """The loss scaler's state a checkpoint record holds (an older one kept it in its config),
    or None."""
    return record.get("loss_scaler") or record.get("config", {}).get("loss_scaler")


def _confined(save_dir, name):
    """The path of a file named in a checkpoint JSON: a plain name inside the save dir only."""
    if (not isinstance(name, str) or not name or name in (".", "..") or os.path.isabs(name)
            or os.path.basename(name) != name or "\\" in name or "\0" in name):
        raise CheckpointInvalid("names the file %r, which is not a plain file name in its "
                                "save dir" % (name,))
    path = os.path.join(save_dir, name)
    root = os.path.realpath(save_dir)
    if os.path.dirname(os.path.realpath(path)) != root:
        raise CheckpointInvalid("names %r, which leads outside its save dir" % name)
    return path


def verify_checkpoint(record, check_finite=True):
    """Raise CheckpointInvalid unless every file of the checkpoint is there, inside its save dir,
    of the listed size and SHA-256, and (check_finite) its weights are finite."""
    save_dir = os.path.dirname(record["path"])
    listing = record.get("files")
    if record.get("format") != FORMAT or not isinstance(listing, dict):
        raise CheckpointInvalid("has no file digests (written by an older gluon-tricks, whose "
                                "pickled .states this version does not load)")
    for kind in ("params", "states") + (("ranks",) if "ranks" in listing else ()):
        entry = listing.get(kind)
        if not isinstance(entry, dict):
            raise CheckpointInvalid("lists no %s file" % kind)
        path = _confined(save_dir, entry.get("name"))
        if not os.path.isfile(path):
            raise CheckpointInvalid("%s is missing" % path)
        size, sha256 = files.digest(path)
        if size != entry.get("size"):
            raise CheckpointInvalid("%s has %d bytes, %s were written (truncated?)"
                                    % (path, size, entry.get("size")))
        if sha256 != entry.get("sha256"):
            raise CheckpointInvalid("%s does not match its SHA-256 (damaged or replaced)" % path)
        if file_kind(path) != "ndarray":
            raise CheckpointInvalid("%s is not an MXNet NDArray file (a pickle is never loaded)"
                                    % path)
    if check_finite:
        bad = non_finite_in_file(_confined(save_dir, listing["params"]["name"]))
        if bad:
            raise CheckpointInvalid("%s holds NaN or infinite weights (%d arrays, first: %s)"
                                    % (listing["params"]["name"], len(bad), bad[0]))


def non_finite_in_file(params_path):
    """Names of the arrays of an NDArray file (.params) holding NaN or infinity."""
    import mxnet as mx
    try:
        arrays = mx.nd.load(params_path)
    except mx.base.MXNetError as error:
        raise CheckpointInvalid("%s cannot be read: %s" % (params_path, error_summary(error))) \
            from None
    return non_finite(arrays if isinstance(arrays, dict) else dict(enumerate(arrays)))


def _read_record(path):
    with open(path) as f:
        record = json.load(f)
    if not isinstance(record, dict) or not isinstance(record.get("epoch"), int):
        raise ValueError("not a checkpoint record")
    record["path"] = path
    record.setdefault("batch", 0)
    check_record_fields(record)
    return record


_CONFIG_INTEGERS = ("world_size", "num_devices", "process_batch_size", "global_batch_size")


def check_record_fields(record):
    """CheckpointInvalid unless the fields a resume reads are there and of their type: the
    counters (epoch, batch, step) whole numbers >= 0, the configuration a dict whose rank and
    batch sizes are whole numbers and whose loss scaler state is a dict."""
    for key in ("epoch", "batch", "step"):
        value = record.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise CheckpointInvalid("has %s %r, not a whole number >= 0%s"
                                    % (key, value, " (missing)" if key not in record else ""))
    config = record.get("config")
    if not isinstance(config, dict):
        raise CheckpointInvalid("has a malformed config (%s, not a dict)" % type(config).__name__)
    for key in _CONFIG_INTEGERS:
        value = config.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise CheckpointInvalid("has a malformed config: %s is %r, not a whole number"
                                    % (key, value))
    scaler = config.get("loss_scaler")
    if scaler is not None and not isinstance(scaler, dict):
        raise CheckpointInvalid("has a malformed config: loss_scaler is %r, not a dict"
                                % (scaler,))
    progress = record.get("progress")
    if progress is not None and not isinstance(progress, dict):
        raise CheckpointInvalid("has a malformed progress (%s, not a dict)"
                                % type(progress).__name__)


def checkpoint_jsons(save_dir, model):
    """The JSON paths of `model`'s checkpoints in `save_dir`, newest (epoch, batch) first."""
    found = []
    for path in glob.glob(os.path.join(glob.escape(save_dir), "%s-*.json" % glob.escape(model))):
        match = _NAME.search(path)
        if match and os.path.basename(path)[:-len(match.group(0))] == model:
            found.append(((int(match.group(1)), int(match.group(2) or 0)), path))
    return [path for _, path in sorted(found, reverse=True)]


def find_latest(save_dir, model, report=None, check_finite=True):
    """The newest checkpoint of `model` in `save_dir` that passes verification, as its loaded
    JSON, or None. Each newer one that fails is passed to `report` as one line, by name."""
    for path in checkpoint_jsons(save_dir, model):
        try:
            try:
                record = _read_record(path)
            except (OSError, ValueError, UnicodeDecodeError):
                raise CheckpointInvalid("is not a readable checkpoint JSON (truncated?)") \
                    from None
            verify_checkpoint(record, check_finite)
            return record
        except CheckpointInvalid as error:
            if report is not None:
                report("checkpoint %s fails verification: %s; skipped" % (path, error))
    return None


def resume_point(save_dir, model, report, fresh_start=False, save_flag="--save-dir"):
    """The checkpoint a run continues, or None for a fresh start. A save dir whose checkpoints
    all fail verification is refused (a fresh start would overwrite them) unless `fresh_start`.
    `save_flag`: the command's flag naming the save dir, for the message."""
    skipped = []

    def note(line):
        skipped.append(line)
        report(line)
    record = find_latest(save_dir, model, note)
    if record is None and skipped and not fresh_start:
        raise UserError("%s holds %d checkpoint(s) of %s and none passes verification (%s); "
                        "training from scratch would overwrite them: pass --fresh-start to do "
                        "so, or use another %s" % (save_dir, len(skipped), model,
                                                   skipped[0], save_flag))
    return record


def check_same_ranks(record, run):
    """A checkpoint continues on as many ranks and devices as wrote it, even with the same global
    batch: BatchNorm normalises over each device's own batch, each rank's data share and
    augmentation stream follow its rank, and the gradient sum runs in another order, so the
    arithmetic would differ. Refused with that reason (before the generic comparison)."""
    saved = record.get("config", {})
    was = (saved.get("world_size"), saved.get("num_devices"), saved.get("process_batch_size"))
    now = (run.world_size, run.num_devices, run.process_batch_size)
    if None in was or was == now:
        return
    raise UserError(
        "%s was written by %d rank(s) x %d device(s) of %d images each (global batch %s); this "
        "run has %d x %d of %d (global batch %d). Not resumable exactly: BatchNorm normalises "
        "over each device's batch and each rank reads its own data share, so the same global "
        "batch would still train other numbers; resume with %d rank(s) and %d device(s) each"
        % (record["path"], was[0], was[1], was[2] // max(was[1], 1),
           saved.get("global_batch_size"), now[0], now[1], now[2] // max(now[1], 1),
           run.global_batch_size, was[0], was[1]))


def prune_checkpoints(save_dir, model, keep, report=None):
    """Keep the newest `keep` mid-epoch checkpoints of `model` (0: all); epoch checkpoints stay."""
    if not keep:
        return []
    mid_epoch = [p for p in checkpoint_jsons(save_dir, model) if "-batch" in p]
    removed = []
    for json_path in mid_epoch[keep:]:
        prefix = json_path[:-len(".json")]
        # the JSON first: no half checkpoint ever looks whole
        files.remove_quietly(prefix + ext for ext in (".json", ".params", ".states", ".ranks"))
        removed.append(json_path)
        if report is not None:
            report("removed the older checkpoint %s (--keep-checkpoints %d)" % (prefix, keep))
    return removed


def remove_stale_temp_files(save_dir, report=None):
    """Temporary files that dead processes left in the save dir (a crash or a full disk)."""
    removed = files.remove_stale_temp_files(os.path.join(glob.escape(save_dir), "*"))
    if removed and report is not None:
        report("removed %d temporary files of dead processes from %s (%s)"
               % (len(removed), save_dir, ", ".join(os.path.basename(p) for p in removed)))
    return removed


_FILE_NAME = re.compile(r"-(\d{4,})(?:-batch(\d{6,}))?\.(params|states|ranks)$")


def remove_orphan_files(save_dir, model, keep=(), report=None):
    """Checkpoint files of `model` without their JSON (a run killed while it wrote the JSON, or
    while it pruned): never loaded, since a checkpoint is complete exactly when its JSON exists,
    so removed at start. The files named in `keep` (by flags) and symlinks stay."""
    keep = {os.path.realpath(os.path.expanduser(path)) for path in keep if path}
    orphans = []
    for path in sorted(glob.glob(os.path.join(glob.escape(save_dir),
                                              glob.escape(model) + "-*"))):
        match = _FILE_NAME.search(path)
        if not (match is None or os.path.basename(path)[:-len(match.group(0))] != model
                or os.path.islink(path) or not os.path.isfile(path)
                or os.path.realpath(path) in keep
                or os.path.lexists(path[:-len(match.group(3))] + "json")):
            orphans.append(path)
    removed = files.remove_quietly(orphans)
    if removed and report is not None:
        report("removed %d checkpoint files without their JSON (a run stopped while writing it) "
               "from %s (%s)" % (len(removed), save_dir,
                                 ", ".join(os.path.basename(p) for p in removed)))
    return removed


PREEMPTED_MARKER = ".gluon-tricks.preempted"  # scripts/lib/common.sh reads the same name


def write_preempted_marker(save_dir, message):
    """Say in the save dir that the run stopped on a signal after its checkpoint (the message),
    for a launcher whose own exit status cannot tell (horovodrun exits 1 whenever a rank exits
    non-zero). Best effort: the run's exit status says it already."""
    try:  # never through a symlink placed there
        fd = os.open(os.path.join(save_dir, PREEMPTED_MARKER),
                     os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "w") as f:
            f.write(message + "\n")
    except OSError:
        pass


def remove_preempted_marker(save_dir):
    """A new run starts: an earlier stop's marker no longer speaks for it."""
    try:
        os.remove(os.path.join(save_dir, PREEMPTED_MARKER))
    except FileNotFoundError:
        pass
    except OSError as error:
        raise UserError("cannot remove %s: %s" % (os.path.join(save_dir, PREEMPTED_MARKER),
                                                  error.strerror or error)) from None


def check_compatible(record, run):
    """A checkpoint continues only the run that wrote it: every field of `run.resume_fields()`
    (a RunConfig's marked `breaks_resume`) must agree (fields an older checkpoint did not save
    are not compared)."""
    saved, current = record.get("config", {}), run.as_dict()
    differ = [k for k in run.resume_fields() if k in saved and saved[k] != current[k]]
    if differ:
        raise UserError("%s was written by a different run (differs in: %s); use another "
                        "%s or the same flags" % (record["path"], ", ".join(
                            "%s %r -> %r" % (k, saved[k], current[k]) for k in differ),
                            run.SAVE_FLAG))


def running_statistics(net):
    """The BatchNorm running statistics (the parameters without gradient), in name order."""
    return [param for _, param in sorted(net.collect_params().items())
            if param.grad_req == "null"]


def load_rank_statistics(record, net, rank, world_size):
    """Give this rank's devices their own running statistics back from a mid-epoch checkpoint's
    .ranks file (after rank 0's weights were broadcast); nothing when the checkpoint has none.
    A row per rank: parameter by parameter, device by device."""
    import mxnet as mx
    entry = record.get("files", {}).get("ranks")
    if entry is None:
        return
    path = _confined(os.path.dirname(record["path"]), entry["name"])
    table = mx.nd.load(path)["running_statistics"]
    params = running_statistics(net)
    sizes = [int(np.prod(p.shape)) for p in params for _ in p.list_data()]
    if table.shape != (world_size, sum(sizes)):
        raise UserError("%s holds running statistics of shape %s, this run needs (%d, %d)"
                        % (path, table.shape, world_size, sum(sizes)))
    row, start = table[rank], 0
    for param in params:
        for data in param.list_data():
            size = int(np.prod(param.shape))
            values = row[start:start + size].reshape(param.shape).astype(data.dtype)
            data[:] = values.as_in_context(data.context)
            start += size


def load_checkpoint(record, net, trainer, ctx):
    """Load weights and optimiser state of a verified checkpoint record into `net` and `trainer`;
    returns (epochs done, global step)."""
    save_dir = os.path.dirname(record["path"])
    load_params(net, _confined(save_dir, record["files"]["params"]["name"]), ctx)
    optimizer_state.load_states(trainer, _confined(save_dir, record["files"]["states"]["name"]))
    return record["epoch"], record["step"]


def load_params(net, path, ctx, flag="--resume-params"):
    """Weights into `net` (models.params: the one loader, its one-line errors)."""
    load_into(net, path, ctx, flag)


def load_gluoncv_states(trainer, path, trust_pickle, momentum, wd, warn):
    """--resume-states: this project's NDArray format, or GluonCV's pickle on explicit trust."""
    kind = file_kind(path)
    if kind == "ndarray":
        optimizer_state.load_states(trainer, path, momentum, wd)
    elif kind == "pickle" and trust_pickle:
        optimizer_state.load_pickled_states(trainer, path, momentum, wd, warn)
    elif kind == "pickle":
        raise UserError("--resume-states %s is a pickle (GluonCV's .states), and loading a pickle "
                        "can run any code it holds; pass --trust-pickled-states if you trust "
                        "where it came from" % path)
    else:
        raise UserError("--resume-states %s is not an optimizer state file" % path)


def check_writable(save_dir):
    """Create `save_dir` and prove it is writable before training starts."""
    try:
        os.makedirs(save_dir, exist_ok=True)
        probe = files.temp_name(os.path.join(save_dir, ".write-test"))
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as error:
        raise UserError("--save-dir %s is not writable: %s" % (save_dir, error.strerror)) from None
