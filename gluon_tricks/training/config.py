"""The flags of `gluon-tricks train`: GluonCV's train_imagenet.py flags (its command lines run
unchanged) plus our own; defaults are the paper's baseline (section 2.1), `--lr` 0.1 x batch/256."""
import os

from gluon_tricks import paper
from gluon_tricks.data.flags import add_data_arguments
from gluon_tricks.errors import UserError
from gluon_tricks.training.loss_scale import check_precision


def add_arguments(parser):
    """All flags of `gluon-tricks train`."""
    parser.add_argument("--model", required=True, help="network, e.g. resnet50_v1d "
                        "(`gluon-tricks models` lists the ResNets; also inceptionv3, mobilenet1.0)")
    add_data_arguments(parser, train=True)
    parser.add_argument("--augmentation", choices=("paper", "gluoncv"), default="paper",
                        help="training augmentation: the paper's (hue/saturation/brightness) or "
                             "GluonCV's recipe (brightness/contrast/saturation)")

    sched = parser.add_argument_group("schedule (per iteration)")
    sched.add_argument("--num-epochs", type=int, default=120, help="epochs")
    sched.add_argument("--lr", type=float, default=None,
                       help="peak learning rate (default: 0.1 x global batch / 256)")
    sched.add_argument("--lr-mode", choices=("step", "cosine", "poly", "linear"), default="step",
                       help="decay after warmup")
    sched.add_argument("--lr-decay", type=float, default=0.1, help="step decay factor")
    sched.add_argument("--lr-decay-epoch", default="30,60,90",
                       help="epochs (from the start of training) at which step decay applies")
    sched.add_argument("--lr-decay-period", type=int, default=0,
                       help="decay every N epochs instead of --lr-decay-epoch (0: off)")
    sched.add_argument("--warmup-epochs", type=int, default=0, help="linear warmup epochs")
    sched.add_argument("--warmup-lr", type=float, default=0.0,
                       help="learning rate warmup starts at")

    optim = parser.add_argument_group("optimiser and tricks")
    optim.add_argument("--momentum", type=float, default=0.9, help="NAG momentum")
    optim.add_argument("--wd", type=float, default=0.0001, help="weight decay")
    optim.add_argument("--no-wd", action="store_true",
                       help="no weight decay on biases and BN gamma/beta")
    optim.add_argument("--last-gamma", action="store_true",
                       help="zero-initialise the last BN gamma of every residual block")
    optim.add_argument("--dtype", choices=("float32", "float16"), default="float32",
                       help="float16: FP16 weights/activations, FP32 master weights (GPU only)")
    optim.add_argument("--loss-scale", default="1", metavar="S|dynamic",
                       help="multiply the loss by S (gradients divided by S in the update), or "
                            "'dynamic': start at 2^16, halve and skip the update on an inf/NaN "
                            "gradient, double after --loss-scale-window clean steps")
    optim.add_argument("--loss-scale-window", type=int, default=2000, metavar="N",
                       help="clean steps before a dynamic loss scale doubles")
    optim.add_argument("--amp", action="store_true", help="mixed precision by "
                       "mxnet.contrib.amp with its own dynamic loss scale (GPUs only)")
    optim.add_argument("--label-smoothing", action="store_true",
                       help="label smoothing (its epsilon: --label-smoothing-eps)")
    optim.add_argument("--label-smoothing-eps", type=float, default=0.1,
                       help="epsilon of label smoothing (the paper's)")
    optim.add_argument("--mixup", action="store_true", help="mixup training")
    optim.add_argument("--mixup-alpha", type=float, default=0.2, help="Beta(alpha, alpha)")
    optim.add_argument("--mixup-off-epoch", type=int, default=0,
                       help="train the last N epochs without mixup")
    optim.add_argument("--teacher", help="teacher network name for distillation")
    optim.add_argument("--teacher-params", help="the teacher's .params file")
    optim.add_argument("--temperature", type=float, default=20.0, help="distillation temperature")
    optim.add_argument("--hard-weight", type=float, default=0.5,
                       help="weight of the hard-label loss under distillation")

    run = parser.add_argument_group("devices, checkpoints and logs")
    run.add_argument("--num-gpus", type=int, default=0, help="GPUs per process (0: CPU); under "
                     "horovodrun each rank drives the GPU of its local rank")
    run.add_argument("--fp16-allreduce", action="store_true",
                     help="Horovod: send gradients as FP16 (half the traffic)")
    run.add_argument("--gradient-predivide-factor", type=float, default=1.0, metavar="F",
                     help="Horovod: divide gradients by F before the sum and by ranks/F after")
    run.add_argument("--mode", choices=("hybrid", "imperative"), default="hybrid",
                     help="hybrid: hybridize with static memory (default)")
    run.add_argument("--seed", type=int, default=0, help="seeds initialisation, data order, "
                     "augmentation and mixup")
    run.add_argument("--save-frequency", type=int, default=10, help="checkpoint every N epochs "
                     "(and at the end); 0: only at the end")
    run.add_argument("--save-dir", default="params", help="checkpoint directory")
    run.add_argument("--resume", action="store_true", help="continue from the newest checkpoint "
                     "in --save-dir (found automatically too)")
    run.add_argument("--resume-epoch", type=int, default=0, help="epoch to resume from (GluonCV)")
    run.add_argument("--resume-params", default="", help=".params to resume from (GluonCV)")
    run.add_argument("--resume-states", default="", help=".states to resume from (GluonCV)")
    run.add_argument("--trust-pickled-states", action="store_true", help="let --resume-states "
                     "load a pickled GluonCV .states file (a pickle can run any code it holds)")
    run.add_argument("--fresh-start", action="store_true", help="train from scratch even though "
                     "--save-dir holds checkpoints that fail verification (they get overwritten)")
    run.add_argument("--save-interval-minutes", type=float, default=60.0, metavar="M",
                     help="also checkpoint mid-epoch every M minutes (0: off)")
    run.add_argument("--keep-checkpoints", type=int, default=2, metavar="K",
                     help="keep the newest K mid-epoch checkpoints (0: all); "
                          "epoch checkpoints are all kept")
    run.add_argument("--max-bad-fraction", type=float, default=0.01, metavar="F",
                     help="stop when more than this fraction of the records or images are "
                          "unreadable")
    run.add_argument("--data-timeout", type=float, default=300.0, metavar="S",
                     help="seconds a wait for one batch may take before its stuck data worker "
                          "is named, killed and replaced (0: wait forever)")
    run.add_argument("--log-interval", type=int, default=50, help="batches between log lines")
    run.add_argument("--logging-file", default="train_imagenet.log",
                     help="log file (GluonCV's format; a .jsonl twin is written beside it)")
    run.add_argument("--tensorboard-dir", default="", metavar="DIR", help="also write "
                     "TensorBoard scalars there (rank 0; the log stays the figures' source)")
    from gluon_tricks.training.finetune import add_finetune_arguments
    add_finetune_arguments(parser)


def tricks_of(config):
    """The paper's tricks a run uses, read as the figures read its logged configuration."""
    return paper.tricks_of(vars(config))


def check_flags(config):
    """Contradictory or impossible flags end here, before anything is built, one line each."""
    def need(condition, message):
        if not condition:
            raise UserError(message)
    need(config.num_epochs > 0, "--num-epochs must be positive")
    need(config.batch_size > 0, "--batch-size must be positive")
    need(config.lr is None or config.lr > 0, "--lr must be positive")
    need(0 <= config.warmup_epochs < config.num_epochs,
         "--warmup-epochs (%d) must be smaller than --num-epochs (%d)"
         % (config.warmup_epochs, config.num_epochs))
    need(config.num_workers >= 0, "-j/--num-data-workers must be >= 0")
    need(config.input_size is None or config.input_size >= 32, "--input-size must be >= 32")
    need(0 < config.crop_ratio <= 1, "--crop-ratio must be in (0, 1]")
    need(config.log_interval >= 0 and config.save_frequency >= 0,
         "--log-interval and --save-frequency must be >= 0")
    need(config.save_interval_minutes >= 0 and config.keep_checkpoints >= 0,
         "--save-interval-minutes and --keep-checkpoints must be >= 0")
    check_ranges(config, need)
    need(0 <= config.max_bad_fraction <= 1, "--max-bad-fraction must be in [0, 1]")
    need(0 < config.label_smoothing_eps < 1, "the label smoothing epsilon must be in (0, 1)")
    need(0 <= config.seed < 1 << 32, "--seed must be in [0, 2**32 - 1] (one word of every random "
         "stream's key)")
    try:
        decay = [int(e) for e in config.lr_decay_epoch.split(",") if e.strip()]
    except ValueError:
        raise UserError("--lr-decay-epoch must be comma-separated epochs, e.g. 30,60,90, not %r"
                        % config.lr_decay_epoch) from None
    need(all(0 < e for e in decay), "--lr-decay-epoch epochs must be positive")
    if config.mixup:
        need(config.mixup_alpha > 0, "--mixup-alpha must be positive")
        need(0 <= config.mixup_off_epoch <= config.num_epochs,
             "--mixup-off-epoch (%d) is beyond --num-epochs (%d)"
             % (config.mixup_off_epoch, config.num_epochs))
    else:
        need(config.mixup_off_epoch == 0, "--mixup-off-epoch needs --mixup")
    if config.teacher:
        need(bool(config.teacher_params), "--teacher %s needs --teacher-params FILE (its trained "
             "weights)" % config.teacher)
        need(os.path.isfile(os.path.expanduser(config.teacher_params)),
             "--teacher-params: no such file: %s" % config.teacher_params)
        need(config.temperature > 0, "--temperature must be positive")
        need(0 <= config.hard_weight <= 1, "--hard-weight must be in [0, 1]")
    else:
        need(not config.teacher_params, "--teacher-params needs --teacher NAME")
    check_resume_flags(config, need)
    check_index_files(config)
    if config.resume_params or config.resume_states:
        for flag, path in (("--resume-params", config.resume_params),
                           ("--resume-states", config.resume_states)):
            need(bool(path) and os.path.isfile(os.path.expanduser(path)),
                 "%s: no such file: %s (GluonCV-style resume needs both --resume-params and "
                 "--resume-states)" % (flag, path or "(not given)"))
        need(config.resume_epoch > 0, "--resume-params/--resume-states need --resume-epoch N "
             "(the epoch to continue from)")
    need(not config.resume_epoch or config.resume_params,
         "--resume-epoch %d needs --resume-params and --resume-states (GluonCV's files); a "
         "checkpoint in --save-dir is continued without it" % config.resume_epoch)
    from gluon_tricks.training.finetune import check_finetune_flags
    check_finetune_flags(config)
    check_devices(config)
    need(config.loss_scale_window >= 1, "--loss-scale-window must be >= 1")
    need(config.gradient_predivide_factor > 0, "--gradient-predivide-factor must be positive")


def check_ranges(config, need):
    """Schedule and optimiser values that would train on nonsense."""
    need(config.warmup_lr >= 0, "--warmup-lr must be >= 0, not %g" % config.warmup_lr)
    need(0 < config.lr_decay <= 1, "--lr-decay must be in (0, 1] (the factor the learning rate "
         "is multiplied by at each step), not %g" % config.lr_decay)
    need(config.lr_decay_period >= 0, "--lr-decay-period must be >= 0 (0: off)")
    need(config.wd >= 0, "--wd must be >= 0, not %g" % config.wd)
    need(0 <= config.momentum < 1, "--momentum must be in [0, 1), not %g" % config.momentum)
    need(config.data_timeout >= 0, "--data-timeout must be >= 0 seconds (0: no deadline)")


def check_resume_flags(config, need):
    """Resume flags that would silently do nothing, or contradict each other."""
    need(not config.trust_pickled_states or config.resume_states,
         "--trust-pickled-states needs --resume-states FILE (it only lets that file be a pickle)")
    need(not (config.resume and config.fresh_start),
         "--resume and --fresh-start contradict each other: choose one")
    need(not (config.resume and config.resume_params),
         "--resume continues from --save-dir's newest checkpoint, --resume-params from the files "
         "given: choose one")


_RECORDIO_MAGIC = b"\x0a\x23\xd7\xce"  # the first bytes of every RecordIO record (0xced7230a)


def check_index_files(config):
    """An --rec-*-idx flag naming a file that is not a text index (e.g. the .rec itself)."""
    if not config.use_rec:
        return
    for flag, path in (("--rec-train-idx", getattr(config, "rec_train_idx", None)),
                       ("--rec-val-idx", config.rec_val_idx)):
        if not path:
            continue
        try:
            with open(os.path.expanduser(path), "rb") as f:
                head = f.read(256)
        except OSError:
            continue  # a missing file is named where the data is opened
        try:
            head.decode("ascii")
        except UnicodeDecodeError:
            raise UserError("%s %s is not an index (.idx: text lines 'key<TAB>offset')%s"
                            % (flag, path, "; it is a RecordIO file, the .rec itself?"
                               if head.startswith(_RECORDIO_MAGIC) else "")) from None


def check_devices(config):
    """GPUs, FP16, loss scaling and AMP only where this MXNet build and machine have them."""
    from gluon_tricks.devices import require_gpus, uses_gpus
    require_gpus(config.num_gpus)  # GLUON_TRICKS_DEVICES stands in for GPUs
    on_gpu = uses_gpus(config.num_gpus)
    if config.dtype == "float16" and not on_gpu:
        raise UserError("--dtype float16 needs GPUs (--num-gpus N): MXNet's CPU has no FP16 "
                        "matrix products; train in float32 on the CPU")
    check_precision(config.dtype, config.loss_scale, config.amp, on_gpu)
