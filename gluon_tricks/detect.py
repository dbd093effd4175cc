"""`gluon-tricks detect train|eval`: Faster R-CNN on Pascal VOC (the paper's Table 8) with a
backbone from a classifier checkpoint of this project, with the flags of GluonCV's
train_faster_rcnn.py and its VOC recipe as defaults, logging in its format."""
import os

from gluon_tricks.errors import UserError
from gluon_tricks.training.transfer_flags import add_guard_arguments, check_backbone_recipe

# Flags a resumed run may change: they do not change what is computed (the devices and ranks
# that num_gpus and horovod give are compared, and the backbone's weights by their SHA-256).
FREE_ON_RESUME = ("epochs", "num_workers", "log_interval", "save_interval", "fresh_start",
                  "save_interval_minutes", "keep_checkpoints", "dataset_root", "save_prefix",
                  "num_gpus", "horovod", "backbone_params", "backbone_recipe")

# train_faster_rcnn.py's defaults for --dataset voc.
VOC_DEFAULTS = {"epochs": 20, "lr": 0.001, "lr_decay_epoch": "14,20", "lr_warmup": -1,
                "wd": 5e-4}


def _common(parser):
    parser.add_argument("--network", default="resnet50_v1b",
                        help="our ResNet used as backbone (any depth and variant: resnet50_v1d, "
                             "resnet18_v1b, ...)")
    parser.add_argument("--dataset", default="voc", choices=["voc"], help="only voc")
    parser.add_argument("--dataset-root", default=os.path.join("~", ".mxnet", "datasets", "voc"),
                        help="the VOCdevkit folder, or a folder holding it (VOC2007, VOC2012)")
    parser.add_argument("--classes", default="voc",
                        help="voc (Pascal VOC's 20), demo (the demo data's 10) or a comma list")
    parser.add_argument("--short", type=int, default=600, help="shorter image side (GluonCV: 600)")
    parser.add_argument("--max-size", type=int, default=1000,
                        help="longest image side (GluonCV: 1000)")
    parser.add_argument("--num-workers", "-j", type=int, default=4, help="data loader processes")
    parser.add_argument("--rpn-test-post-nms", type=int, default=300,
                        help="proposals per image at test time (GluonCV: 300)")


def add_arguments(parser):
    sub = parser.add_subparsers(dest="detect_command", metavar="{train,eval}")
    sub.required = True
    train = sub.add_parser("train", help="train Faster R-CNN on a VOC-layout set")
    _common(train)
    train.add_argument("--backbone-params", default=None,
                       help="a classifier checkpoint (.params) of --network; none: from scratch")
    train.add_argument("--backbone-recipe", default=None,
                       help="the scripts/ recipe that trained --backbone-params (e.g. "
                            "table6_resnet50_v1d_cosine): recorded in the log, where `report "
                            "--paper` reads which row of Table 8 the run reproduces")
    train.add_argument("--rcnn-num-samples", type=int, default=128,
                       help="regions per image the R-CNN head trains on (GluonCV: 128)")
    train.add_argument("--epochs", type=int, default=None, help="default 20 (voc)")
    train.add_argument("--lr", type=float, default=None, help="default 0.001 (voc)")
    train.add_argument("--lr-decay", type=float, default=0.1,
                       help="factor of the lr at each --lr-decay-epoch")
    train.add_argument("--lr-decay-epoch", default=None, help="default 14,20 (voc)")
    train.add_argument("--lr-warmup", type=float, default=None,
                       help="warmup iterations in epoch 0 (default -1: none, voc)")
    train.add_argument("--lr-warmup-factor", type=float, default=1.0 / 3.0,
                       help="the warmup's first lr as a fraction of --lr")
    train.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    train.add_argument("--wd", type=float, default=None, help="default 5e-4 (voc)")
    train.add_argument("--batch-size", type=int, default=1,
                       help="images per batch of this process (per rank with --horovod), "
                            "split over its devices")
    train.add_argument("--num-gpus", type=int, default=0,
                       help="GPUs of this process (0: the CPU; under --horovod each rank "
                            "takes its local GPU)")
    train.add_argument("--horovod", action="store_true",
                       help="one of N ranks started by horovodrun: each takes its share of "
                            "every global batch of batch-size x N images; gradients are "
                            "averaged over ranks (Horovod's DistributedTrainer)")
    train.add_argument("--save-prefix", default="",
                       help="prefix of the log and weights; the detector's name is appended")
    train.add_argument("--save-interval", type=int, default=1,
                       help="epochs between GluonCV-named weight files")
    train.add_argument("--seed", type=int, default=233, help="random seed (GluonCV's)")
    train.add_argument("--log-interval", type=int, default=100, help="batches between log lines")
    train.add_argument("--val-interval", type=int, default=1,
                       help="epochs between validations")
    add_guard_arguments(train, "the save prefix")
    evaluate = sub.add_parser("eval", help="VOC 07 mAP of a saved detector")
    _common(evaluate)
    evaluate.add_argument("--params", required=True, help="the detector's .params")


def resolved(args):
    """The flags with GluonCV's VOC defaults filled in, checked; a dict for the log's Namespace."""
    config = {k: v for k, v in vars(args).items() if not k.startswith("_")}
    for name, value in VOC_DEFAULTS.items():
        if config.get(name) is None:
            config[name] = value
    try:
        config["lr_decay_epoch"] = str(config["lr_decay_epoch"])
        steps = tuple(sorted(float(s) for s in config["lr_decay_epoch"].split(",") if s.strip()))
    except ValueError:
        raise UserError("--lr-decay-epoch must be comma-separated epochs, e.g. 14,20; got %r"
                        % config["lr_decay_epoch"]) from None
    check_backbone_recipe(config, "network")
    for name in ("epochs", "batch_size", "val_interval", "short", "max_size",
                 "rpn_test_post_nms", "rcnn_num_samples"):
        if config[name] < 1:
            raise UserError("--%s must be at least 1; got %s" % (name.replace("_", "-"),
                                                                 config[name]))
    for name in ("lr", "wd", "momentum", "lr_decay", "num_workers", "log_interval"):
        if not config[name] >= 0:
            raise UserError("--%s must not be negative; got %s" % (name.replace("_", "-"),
                                                                  config[name]))
    return config, steps


def _dataset(root, splits, classes):
    from gluon_tricks.data.voc import gluoncv_dataset
    return gluoncv_dataset(root, list(splits), classes)


def run_train(args):
    from gluon_tricks.training.transfer_run import run_with_signals
    return run_with_signals(_train, args)


def _train(args, world, signals):
    from gluon_tricks import files
    from gluoncv.utils.metrics.voc_detection import VOC07MApMetric
    from gluon_tricks.detection import data, loop, model
    from gluon_tricks.streams import seed_initialisation
    from gluon_tricks.training.transfer_run import GuardedRun, TransferRun, TransferState
    from gluon_tricks.devices import process_devices
    config, steps = resolved(args)
    if world.size > 1 and not args.horovod:
        raise UserError("started by horovodrun as %d ranks: pass --horovod (as GluonCV's "
                        "train_faster_rcnn.py), or start one process without horovodrun"
                        % world.size)
    ctx = process_devices(args.num_gpus, world.local_rank, world.size)
    if args.batch_size % len(ctx):
        raise UserError("--batch-size %d does not split over %d devices"
                        % (args.batch_size, len(ctx)))
    classes = data.class_names(args.classes)
    root = data.devkit(os.path.expanduser(args.dataset_root))
    train_splits, test_splits = data.checked_sets(root, classes)
    seed_initialisation(args.seed)  # the heads' initial weights
    net = model.build_faster_rcnn(args.network, classes, args.backbone_params, args.short,
                                  args.max_size,
                                  per_device_batch_size=args.batch_size // len(ctx),
                                  num_sample=args.rcnn_num_samples,
                                  rpn_test_post_nms=args.rpn_test_post_nms)
    model.initialise(net, ctx)
    model.prepare_for_loading(net)
    trainer = loop.make_trainer(net, config["lr"], config["wd"], args.momentum, world)
    train_loader = data.train_loader(net, _dataset(root, train_splits, classes), args.batch_size,
                                     args.num_workers, args.seed, world.rank, world.size,
                                     devices=len(ctx))
    val_loader = data.val_loader(net, _dataset(root, test_splits, classes), args.num_workers,
                                 world.rank, world.size)
    if args.backbone_params:  # which weights: compared on resume, and named in the log
        config["backbone_sha256"] = files.digest(os.path.expanduser(args.backbone_params))[1]
    prefix = args.save_prefix + "faster_rcnn_%s_%s" % (args.network, args.dataset)
    run = TransferRun(model=os.path.basename(prefix), save_dir=os.path.dirname(prefix) or ".",
                      logging_file=prefix + "_train.log", config=config,
                      free_on_resume=FREE_ON_RESUME, iters_per_epoch=len(train_loader),
                      process_batch_size=args.batch_size, world_size=world.size,
                      num_devices=len(ctx),
                      fresh_start=args.fresh_start,
                      save_interval_minutes=args.save_interval_minutes,
                      keep_checkpoints=args.keep_checkpoints)
    state = TransferState(net, trainer, ctx)
    with GuardedRun(run, world, state, signals, epochs=config["epochs"]) as session:
        if session.finished:
            if world.is_root:
                print("nothing to train: the checkpoint in %s has finished all %d epochs"
                      % (run.save_dir, config["epochs"]))
            return 0
        session.broadcast_parameters()
        guard, log = session.guard, session.log

        def end_epoch(epoch, current):
            """GluonCV's weight files (rank 0), then the epoch's checkpoint."""
            if world.is_root:
                _save_gluoncv_files(prefix, net, epoch, current, guard.progress, log,
                                    args.save_interval)
            elif current is not None:
                guard.progress["best_map"] = max(guard.progress.get("best_map", 0.0), current)
            guard.save(epoch + 1)
        schedule = loop.Schedule(config["lr"], args.lr_decay, steps, float(config["lr_warmup"]),
                                 args.lr_warmup_factor)
        loop.train(net, trainer, train_loader, val_loader,
                   VOC07MApMetric(iou_thresh=0.5, class_names=classes), ctx, schedule,
                   config["epochs"], log, guard, end_epoch, world, start=session.start,
                   seed=args.seed, log_interval=args.log_interval,
                   val_interval=args.val_interval)
    return 0


def _save_gluoncv_files(prefix, net, epoch, current, progress, log, save_interval):
    """train_faster_rcnn.py's save_params: PREFIX_best.params when the mAP beats the best so
    far (kept in `progress`, which every checkpoint saves), PREFIX_EPOCH_MAP.params every
    `save_interval` epochs."""
    from gluon_tricks import files
    current = current or 0.0
    if current > progress.get("best_map", 0.0):
        progress["best_map"] = current
        files.write_atomically(prefix + "_best.params", net.save_parameters)
        log.info("[Epoch %d] mAP %s higher than current best, saving to %s_best.params"
                 % (epoch, current, prefix))
    if save_interval and not (epoch + 1) % save_interval:
        path = "%s_%04d_%.4f.params" % (prefix, epoch, current)
        files.write_atomically(path, net.save_parameters)
        log.info("[Epoch %d] Saving parameters to %s" % (epoch, path))


def run_eval(args):
    import mxnet as mx
    from gluoncv.utils.metrics.voc_detection import VOC07MApMetric
    from gluon_tricks.detection import data, loop, model
    classes = data.class_names(args.classes)
    root = data.devkit(os.path.expanduser(args.dataset_root))
    _, test_splits = data.checked_sets(root, classes, train=False)
    ctx = [mx.cpu()]
    net = model.build_faster_rcnn(args.network, classes, None, args.short, args.max_size,
                                  rpn_test_post_nms=args.rpn_test_post_nms)
    model.load_detector(net, args.params, ctx[0])
    names, values = loop.validate(net, data.val_loader(net, _dataset(root, test_splits, classes),
                                                       args.num_workers),
                                  VOC07MApMetric(iou_thresh=0.5, class_names=classes), ctx)
    for name, value in zip(names, values):
        print("%s=%s" % (name, value))
    return 0


def run(args):
    return run_train(args) if args.detect_command == "train" else run_eval(args)
