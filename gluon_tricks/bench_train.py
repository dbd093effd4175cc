"""`gluon-tricks bench`: `bench data` (the input pipeline, gluon_tricks/data/bench.py) and
`bench train`: the training step on the chosen devices, the tool to run first on a new machine.

`bench train` times our step (gluon_tricks/training/step.py, the one the training loop runs) on
synthetic data held on the host, as real batches are: warm-up steps are excluded, then it reports
images/s, ms per step, and the host's time per step: the time the Python loop spends issuing one
step with the device idle before it and the device's work excluded (the waits GluonCV's loop
makes for its metric are not counted either). `--compare-gluoncv` times, in the same run and in
alternating rounds, GluonCV's network of the same name with a plain gluon.Trainer loop written as
GluonCV's train_imagenet.py writes it (sparse labels, its LR scheduler inside the optimiser, the
metric updated every batch). `--rec FILE` feeds our step from our input pipeline and says whether
input or compute bounds the run. Under horovodrun every rank runs the step and rank 0 prints the
total images/s.
"""
import argparse
import json
import time

from gluon_tricks.errors import UserError


def add_arguments(parser):
    from gluon_tricks.data import bench as data_bench
    sub = parser.add_subparsers(dest="what", metavar="WHAT")
    sub.required = True
    data_bench.add_arguments(sub.add_parser(
        "data", help="images/s of our input pipeline next to mx.io.ImageRecordIter",
        description=data_bench.__doc__.splitlines()[0]))
    add_train_arguments(sub.add_parser(
        "train", help="images/s and host time of the training step, next to GluonCV's",
        description="images/s, ms per step and host ms per step of the training step"))


def add_train_arguments(parser):
    parser.add_argument("--model", default="resnet50_v1d", help="network")
    parser.add_argument("--num-gpus", type=int, default=0, help="GPUs per process (0: the CPU)")
    parser.add_argument("--dtype", choices=("float32", "float16"), default="float32",
                        help="float16: FP16 weights/activations, FP32 master weights (GPU only)")
    parser.add_argument("--loss-scale", default="1", help="static scale S, or 'dynamic'")
    parser.add_argument("--amp", action="store_true", help="mxnet.contrib.amp (GPUs only)")
    parser.add_argument("--batch-size", type=int, default=32, help="per device")
    parser.add_argument("--input-size", type=int, default=224, help="image size in pixels")
    parser.add_argument("--classes", type=int, default=1000, help="classifier outputs")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per round")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    parser.add_argument("--rounds", type=int, default=2,
                        help="alternating rounds; the best round of each side counts")
    parser.add_argument("--rec", help="also time end to end, our input pipeline feeding the step")
    parser.add_argument("--idx", help="the index of --rec (default: REC with .idx)")
    parser.add_argument("-j", "--num-data-workers", dest="num_workers", type=int, default=4,
                        help="input workers with --rec")
    parser.add_argument("--compare-gluoncv", action="store_true",
                        help="also time GluonCV's network and train_imagenet.py's loop")
    parser.add_argument("--fp16-allreduce", action="store_true",
                        help="Horovod: FP16-compressed gradient allreduce")
    parser.add_argument("--gradient-predivide-factor", type=float, default=1.0,
                        help="Horovod: divide gradients by F before the sum, by size/F after")
    parser.add_argument("--loss-curve", action="store_true",
                        help="instead of timing: train --steps steps on the synthetic batch and "
                             "report the mean loss of the first and last 10 (FP16 vs FP32)")
    parser.add_argument("--json", action="store_true", help="print one JSON object only")


def run(args):
    if args.what == "data":
        from gluon_tricks.data import bench as data_bench
        return data_bench.run(args)
    return run_train(args)


def _check(args):
    """The bench's own limits, then `gluon-tricks train`'s checks of the flags it shares; returns
    the training flags (as `train` would parse them) of the step to time."""
    if min(args.batch_size, args.steps, args.rounds, args.classes - 1) < 1 or args.warmup < 0:
        raise UserError("--batch-size, --steps and --rounds must be >= 1, --classes >= 2, "
                        "--warmup >= 0")
    from gluon_tricks.training.config import add_arguments, check_flags
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    flags = parser.parse_args(
        ["--model", args.model, "--num-gpus", str(args.num_gpus), "--dtype", args.dtype,
         "--loss-scale", args.loss_scale, "--batch-size", str(args.batch_size),
         "--input-size", str(args.input_size),
         "--gradient-predivide-factor", str(args.gradient_predivide_factor)]
        + ["--amp"] * args.amp + ["--fp16-allreduce"] * args.fp16_allreduce)
    check_flags(flags)
    if args.compare_gluoncv:
        _check_gluoncv_has(args.model)
    return flags


def _check_gluoncv_has(model):
    """--compare-gluoncv builds GluonCV's network of the same name: refuse a name it lacks,
    naming the models both have (of the same depth where there are some)."""
    from gluoncv.model_zoo import get_model_list
    from gluon_tricks.models import MODEL_NAMES
    if model in get_model_list():
        return
    both = [name for name in MODEL_NAMES if name in get_model_list()]
    same_depth = [name for name in both if name.split("_")[0] == model.split("_")[0]]
    raise UserError("--compare-gluoncv: GluonCV's model zoo has no %s; pass a --model both have "
                    "(%s), or drop --compare-gluoncv" % (model, ", ".join(same_depth or both)))


def run_train(args):
    from gluon_tricks.training.distributed import World
    flags = _check(args)
    world = World.from_environment()
    try:
        result = (loss_curve(args, flags, world) if args.loss_curve
                  else bench_train(args, flags, world))
    finally:
        world.finish()
    if not world.is_root:
        return 0
    if args.loss_curve:
        print(json.dumps(result) if args.json else
              "%s, %s, %d steps on one synthetic batch: mean loss %.4f over the first 10 steps, "
              "%.4f over the last 10" % (args.model, args.dtype, args.steps,
                                          result["loss_start"], result["loss_end"]))
        return 0
    if args.json:
        keys = (("ours", "gluoncv", "ratio", "host_ms", "gluoncv_host_ms")
                if args.compare_gluoncv else ("ours", "ms_per_step", "host_ms"))
        keys += ("input", "end_to_end", "bound") if args.rec else ()
        print(json.dumps({k: result[k] for k in keys}))
        return 0
    print(_report(args, world, result))
    return 0


def _report(args, world, result):
    lines = ["training step of %s, batch %d per device x %d device(s) x %d rank(s), %dx%d, %s, %s:"
             % (args.model, args.batch_size, result["devices"], world.size, args.input_size,
                args.input_size, args.dtype, "AMP" if args.amp else
                "loss scale " + args.loss_scale),
             "  %-34s %9s %12s %13s" % ("", "images/s", "ms per step", "host ms/step"),
             "  %-34s %9.1f %12.1f %13.2f" % ("ours (gluon_tricks step)", result["ours"],
                                               result["ms_per_step"], result["host_ms"])]
    if args.compare_gluoncv:
        lines.append("  %-34s %9.1f %12.1f %13.2f" % (
            "GluonCV (model_zoo + its loop)", result["gluoncv"], result["gluoncv_ms_per_step"],
            result["gluoncv_host_ms"]))
        lines.append("  ratio ours / GluonCV: %.2f" % result["ratio"])
    if args.rec:
        lines.append("  end to end from %s: %.1f images/s (input pipeline alone %.1f, step "
                     "alone %.1f): %s-bound" % (args.rec, result["end_to_end"], result["input"],
                                                result["ours"], result["bound"]))
    return "\n".join(lines)


# --- the two sides ------------------------------------------------------------------------------

class _Synthetic:
    """Stands for the training set in `resolve`: one batch for every rank, `num_classes`."""

    def __init__(self, images, num_classes):
        self.images, self.num_classes = images, num_classes

    def __len__(self):
        return self.images


class _Ours:
    """Our network and the training loop's own step, built as `train` builds them."""

    def __init__(self, args, flags, ctx, world):
        from gluon_tricks.training.loop import build_state
        from gluon_tricks.training.run_config import resolve
        from gluon_tricks.training.targets import smooth_one_hot
        run = resolve(flags, world, ctx, _Synthetic(args.batch_size * len(ctx) * world.size,
                                                    args.classes))
        state = build_state(run, ctx, world)
        world.broadcast_parameters(state.net)
        self.trainer, self.step = state.trainer, state.step
        self.classes = args.classes
        self.one_hot = smooth_one_hot

    def __call__(self, data, label):
        self.trainer.set_learning_rate(0.01)  # the loop sets the schedule's value every batch
        self.step(data, self.one_hot(label, self.classes, 0.0), label)

    def host_part(self, data, label):
        """Issuing the step; the wait for the backward pass on CPUs is device time, excluded."""
        before = self.step.settle_seconds
        self(data, label)
        return self.step.settle_seconds - before

    def finish(self, world):
        self.step.read(world)  # what the loop does every --log-interval batches


class _GluonCV:
    """GluonCV's network of the same name and the loop of its train_imagenet.py: split, record,
    forward, per-device backward, trainer.step (its LR scheduler inside the optimiser), and the
    accuracy metric updated every batch."""

    def __init__(self, args, ctx, world):
        import mxnet as mx
        from gluoncv.model_zoo import get_model
        from gluoncv.utils import LRScheduler, LRSequential
        from mxnet import gluon
        mx.random.seed(0)
        self.net = get_model(args.model, classes=args.classes, pretrained=False)
        self.net.initialize(mx.init.MSRAPrelu(), ctx=ctx)
        if args.dtype != "float32":
            self.net.cast(args.dtype)
        self.net.hybridize(static_alloc=True, static_shape=True)
        steps = 10 ** 6
        schedule = LRSequential([
            LRScheduler("linear", base_lr=0, target_lr=0.01, nepochs=0, iters_per_epoch=steps),
            LRScheduler("step", base_lr=0.01, target_lr=0, nepochs=120, iters_per_epoch=steps,
                        step_epoch=[30, 60, 90], step_factor=0.1, power=2)])
        settings = {"wd": 1e-4, "momentum": 0.9, "lr_scheduler": schedule}
        if args.dtype != "float32":
            settings["multi_precision"] = True
        if world.size > 1:
            self.trainer = world.hvd.DistributedTrainer(self.net.collect_params(), "nag",
                                                        settings)
        else:
            self.trainer = gluon.Trainer(self.net.collect_params(), "nag", settings,
                                         kvstore="device")
        world.broadcast_parameters(self.net)
        self.loss = gluon.loss.SoftmaxCrossEntropyLoss()
        self.metric = mx.metric.Accuracy()
        self.ctx, self.dtype = ctx, args.dtype

    def _issue(self, data, label):
        from mxnet import autograd, gluon
        data = gluon.utils.split_and_load(data, self.ctx, batch_axis=0)
        label = gluon.utils.split_and_load(label, self.ctx, batch_axis=0)
        with autograd.record():
            outputs = [self.net(x.astype(self.dtype, copy=False)) for x in data]
            losses = [self.loss(yhat, y.astype(self.dtype, copy=False))
                      for yhat, y in zip(outputs, label)]
        for loss in losses:
            loss.backward()
        self.trainer.step(data[0].shape[0] * len(data))
        return label, outputs

    def __call__(self, data, label):
        label, outputs = self._issue(data, label)
        self.metric.update(label, outputs)

    def host_part(self, data, label):
        """The loop's own work: issuing, then the metric's host side after the device is done
        (its wait for the outputs is device time, excluded)."""
        label, outputs = self._issue(data, label)
        wait_start = time.perf_counter()
        for out in outputs:
            out.wait_to_read()
        waited = time.perf_counter() - wait_start
        self.metric.update(label, outputs)
        return waited

    def finish(self, world):
        self.metric.get()


# --- timing -------------------------------------------------------------------------------------

def _throughput(side, data, label, warmup, steps, world):
    """(images/s over all ranks, ms per step) with the device kept busy: steps issued back to
    back, the device drained only at the end."""
    import mxnet as mx
    for _ in range(warmup):
        side(data, label)
    side.finish(world)
    mx.nd.waitall()
    world.sum([0.0], name="bench_start")  # ranks start together
    start = time.perf_counter()
    for _ in range(steps):
        side(data, label)
    side.finish(world)
    mx.nd.waitall()
    seconds = time.perf_counter() - start
    seconds = float(max(world.sum([seconds], name="bench_seconds")[0] / world.size, 1e-9))
    return steps * data.shape[0] * world.size / seconds, 1000.0 * seconds / steps


def _host_ms(side, data, label, steps):
    """Median ms the host spends issuing a step, the device idle before it and its waits not
    counted."""
    import numpy as np
    import mxnet as mx
    times = []
    for _ in range(steps):
        mx.nd.waitall()
        start = time.perf_counter()
        waited = side.host_part(data, label) or 0.0
        times.append(time.perf_counter() - start - waited)
    mx.nd.waitall()
    return 1000.0 * float(np.median(times))


def _synthetic_batch(args, num_devices):
    import mxnet as mx
    import numpy as np
    rng = np.random.default_rng(0)
    batch = args.batch_size * num_devices
    data = mx.nd.array(rng.normal(size=(batch, 3, args.input_size, args.input_size)),
                       dtype="float32")
    label = mx.nd.array(rng.integers(0, args.classes, batch), dtype="float32")
    return data, label


def _end_to_end(args, ours, num_devices, world):
    """(images/s of the input pipeline alone, of the pipeline feeding our step)."""
    import mxnet as mx
    from gluon_tricks.data.bench import WARMUP_BATCHES, endless_batches
    from gluon_tricks.data.sources import DataSource
    source = DataSource.from_rec(args.rec, args.idx)
    batch = args.batch_size * num_devices
    if len(source) < batch:
        raise UserError("%s has %d images, fewer than one batch of %d"
                        % (args.rec, len(source), batch))
    images = batch * args.steps
    rates = {}
    for name in ("input", "end_to_end"):
        batches = endless_batches(source, args.num_workers, batch, args.input_size,
                                  with_labels=True, rank=world.rank, num_ranks=world.size)
        try:
            for _ in range(max(args.warmup, WARMUP_BATCHES)):
                data, label = next(batches)
                if name == "end_to_end":
                    ours(data, label)
            ours.finish(world)
            mx.nd.waitall()
            seen, start = 0, time.perf_counter()
            while seen < images:
                data, label = next(batches)
                if name == "end_to_end":
                    ours(data, label)
                else:
                    data.wait_to_read()
                seen += data.shape[0]
            ours.finish(world)
            mx.nd.waitall()
            seconds = time.perf_counter() - start
        finally:
            batches.close()
        rates[name] = seen * world.size / seconds
    return rates["input"], rates["end_to_end"]


def loss_curve(args, flags, world, every=10):
    """{"loss_start", "loss_end"}: the mean training loss of the first and the last `every` of
    --steps steps of our step on one synthetic batch (the network memorises it), for comparing
    FP16 with FP32. Steps skipped by dynamic loss scaling carry no loss."""
    from gluon_tricks.devices import process_devices
    ctx = process_devices(args.num_gpus, world.local_rank, world.size)
    data, label = _synthetic_batch(args, len(ctx))
    ours = _Ours(args, flags, ctx, world)
    means = []
    for index in range(args.steps):
        ours(data, label)
        if (index + 1) % every == 0 or index + 1 == args.steps:
            stats = ours.step.read(world)
            means.append(stats.loss_sum / max(stats.samples * world.size, 1))
    return {"loss_start": means[0], "loss_end": means[-1], "steps": args.steps,
            "loss_scale": ours.step.scaler.scale}


def bench_train(args, flags, world):
    """{"ours", "ms_per_step", "host_ms"[, "gluoncv", "gluoncv_ms_per_step", "gluoncv_host_ms",
    "ratio"][, "input", "end_to_end", "bound"], "devices"}: the best round of each side."""
    from gluon_tricks.devices import process_devices
    ctx = process_devices(args.num_gpus, world.local_rank, world.size)
    data, label = _synthetic_batch(args, len(ctx))
    sides = {"ours": _Ours(args, flags, ctx, world)}
    if args.compare_gluoncv:
        sides["gluoncv"] = _GluonCV(args, ctx, world)
    best = {}
    for round_index in range(args.rounds):
        for name, side in sides.items():
            warmup = args.warmup if round_index == 0 else 1
            rate, ms = _throughput(side, data, label, warmup, args.steps, world)
            host = _host_ms(side, data, label, max(3, args.steps // 2))
            old = best.get(name)
            best[name] = (max(rate, old[0]) if old else rate, min(ms, old[1]) if old else ms,
                          min(host, old[2]) if old else host)
    result = {"devices": len(ctx), "ours": best["ours"][0], "ms_per_step": best["ours"][1],
              "host_ms": best["ours"][2]}
    if args.compare_gluoncv:
        result.update(gluoncv=best["gluoncv"][0], gluoncv_ms_per_step=best["gluoncv"][1],
                      gluoncv_host_ms=best["gluoncv"][2],
                      ratio=best["ours"][0] / best["gluoncv"][0])
    if args.rec:
        result["input"], result["end_to_end"] = _end_to_end(args, sides["ours"], len(ctx), world)
        result["bound"] = "input" if result["input"] < result["ours"] else "compute"
    return result
