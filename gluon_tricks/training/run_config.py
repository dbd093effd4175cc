"""The configuration a run really uses: built once by `resolve()` from the flags, the distributed
world, the devices and the training data, then read (never re-derived) by the loop, the loaders,
the log, the checkpoints and evaluation.

Every field says in its metadata whether changing it breaks a resume (`breaks_resume`): the
checkpoint's compatibility check compares exactly those fields, so a field added later is
covered the day it is added. Fields are plain numbers and strings: the dict of a RunConfig is
what the log's Namespace line and the checkpoint's JSON hold.
"""
import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar

from gluon_tricks.errors import UserError


def _flag(breaks_resume):
    """A field read as is from the flag of the same name."""
    return field(metadata={"breaks_resume": breaks_resume, "flag": True})


def _resolved(breaks_resume):
    """A field computed by resolve() from the flags, the world, the devices and the data."""
    return field(metadata={"breaks_resume": breaks_resume, "flag": False})


@dataclass(frozen=True)
class RunConfig:
    SAVE_FLAG: ClassVar[str] = "--save-dir"  # the flag naming the save dir, for messages
    per_rank_statistics: ClassVar[bool] = True  # BatchNorm statistics differ by rank mid-epoch

    # -- what is trained, and on which data
    model: str = _flag(True)
    classes: int = _resolved(True)  # from the training data
    class_names: tuple = _resolved(False)  # the data's, for export and predict; () if unnamed
    train_images: int = _resolved(True)  # the training set's size
    data_dir: str = _flag(False)  # data paths: the same data may move
    rec_train: str = _flag(False)
    rec_train_idx: str = _flag(False)
    train_dir: str = _flag(False)
    rec_val: str = _flag(False)
    rec_val_idx: str = _flag(False)
    val_dir: str = _flag(False)
    use_rec: bool = _flag(False)
    num_workers: int = _flag(False)  # decoding processes: same batches whatever their number
    input_size: int = _resolved(True)  # --input-size, else the model's (224; 299 for Inception)
    crop_ratio: float = _flag(True)  # validation crop: changes the logged validation errors
    augmentation: str = _flag(True)
    # -- batch: per device x devices of a process x processes (ranks)
    batch_size: int = _flag(True)  # per device (GluonCV's --batch-size)
    num_gpus: int = _flag(False)  # the flag; num_devices is what counts
    num_devices: int = _resolved(True)
    devices: str = _resolved(False)  # this process's devices, e.g. "gpu(0),gpu(1)" or "cpu(0)"
    world_size: int = _resolved(True)  # Horovod ranks
    process_batch_size: int = _resolved(True)  # one rank's batch: batch_size x num_devices
    global_batch_size: int = _resolved(True)  # one optimiser step's: x world_size
    iters_per_epoch: int = _resolved(True)  # batches of one rank per epoch
    # -- schedule
    num_epochs: int = _flag(True)
    lr: float = _resolved(True)  # --lr, else the linear scaling rule 0.1 x global batch / 256
    lr_mode: str = _flag(True)
    lr_decay: float = _flag(True)
    lr_decay_epoch: str = _flag(True)
    lr_decay_period: int = _flag(True)
    warmup_epochs: int = _flag(True)
    warmup_lr: float = _flag(True)
    # -- optimiser and tricks
    momentum: float = _flag(True)
    wd: float = _flag(True)
    no_wd: bool = _flag(True)
    last_gamma: bool = _flag(True)
    dtype: str = _flag(True)
    label_smoothing: bool = _flag(True)
    label_smoothing_eps: float = _flag(False)  # the flag as typed; eps is what counts
    eps: float = _resolved(True)  # label smoothing's epsilon, 0.0 when smoothing is off
    mixup: bool = _flag(True)
    mixup_alpha: float = _flag(True)
    mixup_off_epoch: int = _flag(True)
    teacher: str = _flag(True)
    teacher_params: str = _flag(False)  # a path: the same teacher may move
    temperature: float = _flag(True)
    hard_weight: float = _flag(True)
    tricks: str = _resolved(True)  # the paper's names of the tricks used, or "baseline"
    # -- precision and gradient exchange (training.loss_scale, training.optim)
    loss_scale: str = _flag(False)  # static S or 'dynamic': the same updates up to rounding
    loss_scale_window: int = _flag(False)
    amp: bool = _flag(True)  # AMP runs chosen layers in FP16: other arithmetic
    fp16_allreduce: bool = _flag(True)  # gradients rounded to FP16 in transit
    gradient_predivide_factor: float = _flag(False)  # the same average, split differently
    # -- randomness, devices, checkpoints and logs
    seed: int = _flag(True)  # keys every random stream (gluon_tricks.streams)
    mode: str = _flag(False)  # hybrid or imperative: the same arithmetic
    save_frequency: int = _flag(False)
    save_dir: str = _flag(False)
    resume: bool = _flag(False)
    resume_epoch: int = _flag(False)
    resume_params: str = _flag(False)
    resume_states: str = _flag(False)
    trust_pickled_states: bool = _flag(False)  # --resume-states may be a GluonCV pickle
    fresh_start: bool = _flag(False)  # overwrite checkpoints that fail verification
    save_interval_minutes: float = _flag(False)  # mid-epoch checkpoints: when, not what
    keep_checkpoints: int = _flag(False)
    max_bad_fraction: float = _flag(False)  # a limit on bad data, not the data itself
    data_timeout: float = _flag(False)  # when a stuck data worker is replaced: same batches
    log_interval: int = _flag(False)
    logging_file: str = _flag(False)
    tensorboard_dir: str = _flag(False)  # TensorBoard scalars beside the log: same training
    # -- fine-tuning (gluon_tricks.training.finetune)
    pretrained_params: str = _flag(False)  # a path: the same weights may move
    reset_classifier: bool = _flag(True)
    lr_mult_classifier: float = _flag(True)
    freeze_stages: int = _flag(True)

    def as_dict(self):
        """The fields as a dict (for the log's Namespace line and the checkpoint's JSON)."""
        return dataclasses.asdict(self)

    def resume_fields(self):
        """Names of the fields that must agree for a run to continue another one's checkpoint."""
        return resume_fields()

    def kept_files(self):
        """Files named by flags, which the save dir's cleaning at start never removes."""
        return (self.resume_params, self.resume_states, self.pretrained_params,
                self.teacher_params)


def flag_fields():
    """Names of the fields read as is from flags of the same name."""
    return [f.name for f in dataclasses.fields(RunConfig) if f.metadata["flag"]]


def resume_fields():
    """Names of the fields that must agree for a run to continue another one's checkpoint."""
    return [f.name for f in dataclasses.fields(RunConfig) if f.metadata["breaks_resume"]]


def resolve(flags, world, devices, train_data):
    """The RunConfig of a run: `flags` (parsed and checked), `world` (its ranks), `devices` (the
    MXNet contexts of this process) and `train_data` (its training source: its length and
    `num_classes`)."""
    from gluon_tricks.data.flags import input_size
    from gluon_tricks.training.config import tricks_of
    process_batch = flags.batch_size * len(devices)
    global_batch = process_batch * world.size
    iters = len(train_data) // world.size // process_batch  # as the TrainLoader shards
    if iters == 0:
        raise UserError("the training set (%d images over %d rank(s)) is smaller than one batch "
                        "of %d" % (len(train_data), world.size, process_batch))
    return RunConfig(
        **{name: getattr(flags, name) for name in flag_fields()},
        classes=int(train_data.num_classes), train_images=len(train_data),
        class_names=tuple(train_data.classes) if getattr(train_data, "classes_named", False)
        else (),
        input_size=input_size(flags.input_size, flags.model),
        num_devices=len(devices), devices=",".join(str(ctx) for ctx in devices),
        world_size=world.size, process_batch_size=process_batch, global_batch_size=global_batch,
        iters_per_epoch=iters,
        lr=flags.lr if flags.lr is not None else 0.1 * global_batch / 256,  # linear scaling
        eps=flags.label_smoothing_eps if flags.label_smoothing else 0.0,
        tricks=",".join(tricks_of(flags)) or "baseline")
