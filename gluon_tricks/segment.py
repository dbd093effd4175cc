"""`gluon-tricks segment train|eval`: FCN on ADE20K (the paper's Table 9) with a backbone from a
classifier checkpoint of this project, with the flags of GluonCV's scripts/segmentation/train.py
and test.py, logging in its format."""
import os

from gluon_tricks.errors import UserError
from gluon_tricks.training.transfer_flags import add_guard_arguments, check_backbone_recipe

# Flags a resumed run may change: they do not change what is computed. Not --epochs: the poly
# schedule decays over all of them.
FREE_ON_RESUME = ("workers", "log_interval", "fresh_start", "save_interval_minutes",
                  "keep_checkpoints", "dataset_root", "save_dir", "checkname", "logging_file",
                  "test_batch_size", "syncbn", "backbone_params", "backbone_recipe")
MULTI_SCALES = "0.5,0.75,1.0,1.25,1.5,1.75"  # GluonCV's MultiEvalModel


def _common(parser):
    parser.add_argument("--model", default="fcn", choices=["fcn"], help="only fcn")
    parser.add_argument("--backbone", default="resnet50_v1d",
                        help="our ResNet used as the dilated backbone (any depth and variant: "
                             "resnet50_v1d, resnet18_v1b, ...)")
    parser.add_argument("--dataset", default="ade20k", choices=["ade20k"], help="only ade20k")
    parser.add_argument("--dataset-root", default=os.path.join("~", ".mxnet", "datasets", "ade"),
                        help="the folder holding ADEChallengeData2016 (GluonCV's root)")
    parser.add_argument("--num-class", type=int, default=150,
                        help="classes of the masks' labels 1..N (ADE20K: 150; the demo set: 10)")
    parser.add_argument("--aux", action="store_true",
                        help="the auxiliary FCN head on stage 3 (GluonCV's --aux)")
    parser.add_argument("--base-size", type=int, default=520, help="base image size")
    parser.add_argument("--crop-size", type=int, default=480, help="crop image size")
    parser.add_argument("--workers", type=int, default=16, help="data loader processes")
    parser.add_argument("--test-batch-size", type=int, default=16,
                        help="images per validation batch")
    parser.add_argument("--ngpus", type=int, default=None,
                        help="GPUs of the process, 0 for the CPU (default: every GPU MXNet sees, "
                             "as GluonCV); --batch-size is split over them; under horovodrun "
                             "each rank takes its local GPU")
    parser.add_argument("--syncbn", action="store_true",
                        help="accepted for GluonCV's commands and recorded on one device "
                             "(where synchronised BatchNorm is BatchNorm); refused on several")


def add_arguments(parser):
    sub = parser.add_subparsers(dest="segment_command", metavar="{train,eval}")
    sub.required = True
    train = sub.add_parser("train", help="train FCN on an ADE20K-layout set")
    _common(train)
    train.add_argument("--backbone-params", default=None,
                       help="a classifier checkpoint (.params) of --backbone; none: from scratch")
    train.add_argument("--backbone-recipe", default=None,
                       help="the scripts/ recipe that trained --backbone-params (e.g. "
                            "table6_resnet50_v1d_cosine): recorded in the log, where `report "
                            "--paper` reads which row of Table 9 the run reproduces")
    train.add_argument("--aux-weight", type=float, default=0.5, help="auxiliary loss weight")
    train.add_argument("--epochs", type=int, default=50, help="epochs to train")
    train.add_argument("--batch-size", type=int, default=16,
                       help="images per training batch of the process, split over its devices "
                            "(under horovodrun: of each rank)")
    train.add_argument("--optimizer", default="sgd", choices=["sgd"], help="only sgd")
    train.add_argument("--lr", type=float, default=1e-3, help="learning rate")
    train.add_argument("--warmup-epochs", type=int, default=0,
                       help="epochs of linear warmup from 0 before the poly decay")
    train.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    train.add_argument("--weight-decay", type=float, default=1e-4, help="weight decay")
    train.add_argument("--no-wd", action="store_true",
                       help="no weight decay on biases and BatchNorm's beta and gamma")
    train.add_argument("--checkname", default="default",
                       help="the run's name: its folder is runs/<dataset>/<model>/<checkname>/")
    train.add_argument("--save-dir", default=None,
                       help="the run's folder (log, weights, checkpoints); default from "
                            "--checkname")
    train.add_argument("--logging-file", default="train.log",
                       help="the log's file name in --save-dir")
    train.add_argument("--log-interval", type=int, default=20,
                       help="iterations between training-loss lines")
    train.add_argument("--no-val", action="store_true", help="skip validation during training")
    train.add_argument("--seed", type=int, default=0,
                       help="seed of the data order, augmentation and dropout")
    add_guard_arguments(train, "--save-dir")
    evaluate = sub.add_parser("eval", help="pixAcc and mIoU of a saved FCN")
    _common(evaluate)
    evaluate.add_argument("--params", "--resume", dest="params", required=True,
                          help="the FCN's .params (as segment train saves them)")
    evaluate.add_argument("--mode", default="val", choices=["val", "testval"],
                          help="val: centre crops at one scale, as validation in training; "
                               "testval: whole images at --scales, flipped too (GluonCV's "
                               "MultiEvalModel)")
    evaluate.add_argument("--scales", default=MULTI_SCALES,
                          help="testval: scales of --base-size, comma-separated")
    evaluate.add_argument("--no-flip", action="store_true",
                          help="testval: no horizontally flipped pass")


def _check_positive(config, names, at_least):
    for name in names:
        if not config[name] >= at_least:
            raise UserError("--%s must be %s; got %s" % (
                name.replace("_", "-"), "at least 1" if at_least else "non-negative",
                config[name]))


def resolved(args):
    """The flags, checked, as a dict for the log's Namespace and the checkpoint."""
    import mxnet as mx
    from gluon_tricks.devices import injected_devices, require_gpus
    config = {k: v for k, v in vars(args).items() if not k.startswith("_")}
    if config["ngpus"] is None:  # every GPU, as GluonCV's train.py (or every stand-in)
        injected = injected_devices()
        config["ngpus"] = mx.context.num_gpus() if injected is None else len(injected)
    require_gpus(config["ngpus"], flag="--ngpus")
    _check_positive(config, [n for n in ("epochs", "batch_size", "test_batch_size", "base_size",
                                         "crop_size", "num_class") if n in config], 1)
    _check_positive(config, [n for n in ("lr", "momentum", "weight_decay", "aux_weight",
                                         "workers", "log_interval", "warmup_epochs")
                             if n in config], 0)
    if config.get("warmup_epochs", 0) >= config.get("epochs", 1):
        raise UserError("--warmup-epochs %d leaves no epoch of the poly decay in --epochs %d"
                        % (config["warmup_epochs"], config["epochs"]))
    check_backbone_recipe(config, "backbone")
    if config["num_class"] > 255:
        raise UserError("--num-class %d: masks are 8-bit PNGs, at most 255 classes"
                        % config["num_class"])
    return config


def _scales(text):
    try:
        scales = [float(s) for s in text.split(",") if s.strip()]
    except ValueError:
        scales = []
    if not scales or min(scales) <= 0:
        raise UserError("--scales must be positive comma-separated numbers, e.g. %s; got %r"
                        % (MULTI_SCALES, text))
    return scales


def save_dir_of(config):
    """--save-dir, or GluonCV's runs/<dataset>/<model>/<checkname>/."""
    return os.path.expanduser(config["save_dir"] or os.path.join(
        "runs", config["dataset"], config["model"], config["checkname"]))


def gluoncv_weights_name(epoch, miou):
    """GluonCV's train.py name of an epoch's weights (mIoU 0 when not validated)."""
    return "epoch_%04d_mIoU_%2.4f.params" % (epoch, miou)


def run_train(args):
    from gluon_tricks.training.transfer_run import run_with_signals
    return run_with_signals(_train, args)


def _segment_run():
    from gluon_tricks.training.transfer_run import TransferRun

    class SegmentRun(TransferRun):
        SAVE_FLAG = "--save-dir"
    return SegmentRun


def _train(args, world, signals):
    from gluoncv.utils.metrics import SegmentationMetric
    from gluon_tricks.devices import process_devices
    from gluon_tricks.segmentation import data, loop, model
    from gluon_tricks.streams import seed_initialisation
    from gluon_tricks.training.transfer_run import GuardedRun, TransferState
    config = resolved(args)
    ctx = process_devices(config["ngpus"], world.local_rank, world.size, flag="--ngpus")
    devices = len(ctx) * world.size
    if args.syncbn and devices > 1:
        raise UserError("--syncbn over %d devices: synchronised BatchNorm is not built here; "
                        "leave --syncbn out (each device normalises its own images)" % devices)
    if args.batch_size % len(ctx):
        raise UserError("--batch-size %d does not split over %d devices"
                        % (args.batch_size, len(ctx)))
    root = os.path.expanduser(args.dataset_root)
    train_size = data.checked_set(root, "train", args.num_class)
    if not args.no_val:
        data.checked_set(root, "val", args.num_class)
    seed_initialisation(args.seed)  # the heads' (and a scratch backbone's) initial weights
    net = model.build_fcn(args.backbone, args.num_class, args.backbone_params, args.aux,
                          args.base_size, args.crop_size)
    model.initialise(net, ctx)

    def dataset(split, mode):
        return data.gluoncv_dataset(root, split, mode, args.base_size, args.crop_size,
                                    args.num_class)
    train_loader = data.train_loader(dataset("train", "train"), args.batch_size, args.workers,
                                     args.seed, world.rank, world.size)
    # GluonCV's len(train_data) at the start (the epochs' rollover moves it by at most one)
    iters_per_epoch = train_size // (args.batch_size * world.size)
    scheduler = loop.lr_scheduler(args.lr, args.epochs, args.warmup_epochs, iters_per_epoch)
    trainer = loop.make_trainer(net, args.momentum, args.weight_decay, scheduler, args.no_wd,
                                world)
    val_workers = -(-args.workers // len(ctx))  # the process's --workers over its loaders
    val_loaders = [] if args.no_val else [
        data.val_loader(dataset("val", "val"), args.test_batch_size, val_workers,
                        world.rank * len(ctx) + d, devices) for d in range(len(ctx))]
    save_dir = save_dir_of(config)
    run = _segment_run()(
        model=args.model, save_dir=save_dir,  # the checkpoints' name: GluonCV's --model
        logging_file=os.path.join(save_dir, args.logging_file), config=config,
        free_on_resume=FREE_ON_RESUME, iters_per_epoch=iters_per_epoch,
        process_batch_size=args.batch_size, world_size=world.size, num_devices=len(ctx),
        fresh_start=args.fresh_start, save_interval_minutes=args.save_interval_minutes,
        keep_checkpoints=args.keep_checkpoints, per_rank_statistics=True)  # FCN's BN trains
    state = TransferState(net, trainer, ctx)
    with GuardedRun(run, world, state, signals, epochs=args.epochs) as session:
        if session.finished:
            if world.is_root:
                print("nothing to train: the checkpoint in %s has finished all %d epochs"
                      % (save_dir, args.epochs))
            return 0
        session.broadcast_parameters()
        guard, log = session.guard, session.log

        def end_epoch(epoch, miou):
            """train.py's weight file of the epoch (rank 0), then the epoch's checkpoint."""
            from gluon_tricks import files
            if world.is_root:
                path = os.path.join(save_dir, gluoncv_weights_name(epoch, miou or 0.0))
                files.write_atomically(path, net.save_parameters)
            guard.save(epoch + 1)
        net.hybridize()
        loop.train(net, trainer, loop.make_criterion(args.aux, args.aux_weight), train_loader,
                   val_loaders, SegmentationMetric(args.num_class), ctx, args.epochs, log,
                   guard, end_epoch, world, start=session.start, seed=args.seed,
                   log_interval=args.log_interval, no_val=args.no_val)
    return 0


def run_eval(args):
    from gluoncv.utils.metrics import SegmentationMetric
    from gluon_tricks.devices import process_devices
    from gluon_tricks.segmentation import data, loop, model
    config = resolved(args)
    scales = _scales(args.scales)
    root = os.path.expanduser(args.dataset_root)
    data.checked_set(root, "val", args.num_class)
    ctx = process_devices(min(config["ngpus"], 1), flag="--ngpus")[0]  # one device
    net = model.build_fcn(args.backbone, args.num_class, None, args.aux, args.base_size,
                          args.crop_size)
    model.load_fcn(net, args.params, [ctx])
    net.hybridize()
    metric = SegmentationMetric(args.num_class)
    dataset = data.gluoncv_dataset(root, "val", args.mode, args.base_size, args.crop_size,
                                   args.num_class)
    if args.mode == "val":
        pix_acc, miou = loop.validate(net, [data.val_loader(dataset, args.test_batch_size,
                                                            args.workers)], metric, [ctx])
    else:
        pix_acc, miou = loop.validate_multi_scale(
            net, data.testval_loader(dataset, args.workers), metric, args.num_class, ctx,
            scales, flip=not args.no_flip)
    print("pixAcc=%.6f" % pix_acc)
    print("mIoU=%.6f" % miou)
    return 0


def run(args):
    return run_train(args) if args.segment_command == "train" else run_eval(args)
