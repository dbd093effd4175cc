"""One training step on this process's devices, for the loop and `bench train`: forward, (scaled)
backward, gradient reduction, update. Statistics stay on the device until `read()`, so the host
runs ahead (the waits that remain: docs/performance.md, "The training step")."""
import time
from dataclasses import dataclass

import mxnet as mx
from mxnet import autograd, gluon

from gluon_tricks.errors import UserError
from gluon_tricks.training.loss_scale import LossScaler
from gluon_tricks.training.losses import soft_targets

_CHUNK = 200  # arrays per multi_sum_sq call (its kernel takes a bounded list)


def squared_norm(arrays, ctx):
    """The sum of squares of every element of `arrays`, a 1-element float32 array on `ctx`:
    finite exactly when every element is (or above 1e19, far past any divergence)."""
    arrays = [a if a.context == ctx else a.as_in_context(ctx) for a in arrays]
    parts = [mx.nd.multi_sum_sq(*arrays[i:i + _CHUNK], num_arrays=len(arrays[i:i + _CHUNK]))
             .astype("float32").sum() for i in range(0, len(arrays), _CHUNK)]
    return mx.nd.add_n(*parts) if len(parts) > 1 else parts[0]


def all_finite(arrays, ctx):
    """A 1-element array on `ctx`: 1.0 when every element of every array is finite, else 0.0."""
    return mx.nd.contrib.isfinite(squared_norm(arrays, ctx))


@dataclass
class StepStats:
    """Sums since the previous `read()`, finite flags agreed by every rank, the loss scale now."""
    batches: int
    samples: int
    loss_sum: float
    correct: int
    loss_finite: bool
    grads_finite: bool
    weights_finite: bool
    loss_scale: float
    skipped: int

    @property
    def finite(self):
        return self.loss_finite and self.grads_finite and self.weights_finite

    def what_diverged(self):
        """The quantities that were not finite, e.g. 'the gradients and the weights'."""
        names = [name for name, ok in (("the loss", self.loss_finite),
                                       ("the gradients", self.grads_finite),
                                       ("the weights", self.weights_finite)) if not ok]
        if len(names) > 1:
            return ", ".join(names[:-1]) + " and " + names[-1]
        return names[0] if names else "nothing"


class TrainStep:
    """Training steps on `ctx`, statistics kept on the device until `read()`.

    `scaler`: a LossScaler (static 1 when None); `amp=True`: mxnet.contrib.amp's dynamic scaling
    instead (amp.init_trainer() already called). `settle_gradients` waits for the backward pass
    (on CPUs: a host running ahead changes oneDNN's arithmetic, breaking bitwise resumes);
    `settle_seconds` sums the time waited."""

    def __init__(self, net, trainer, loss_fn, ctx, dtype="float32", scaler=None, teacher=None,
                 temperature=1.0, amp=False, settle_gradients=False):
        self.net, self.trainer, self.loss_fn = net, trainer, loss_fn
        self.ctx = list(ctx)
        self.dtype = dtype
        self.scaler = scaler or LossScaler()
        self.teacher, self.temperature = teacher, temperature
        self.amp = amp
        self.settle_gradients = settle_gradients
        self.settle_seconds = 0.0
        self.params = [p for p in net.collect_params().values() if p.grad_req != "null"]
        self._reset()

    def _reset(self):
        home = self.ctx[0]
        self._loss = mx.nd.zeros((1,), ctx=home)
        self._correct = mx.nd.zeros((1,), ctx=home)
        self._grads_finite = mx.nd.ones((1,), ctx=home)
        self._batches = self._samples = 0
        self._skipped_before = self.scaler.skipped

    def __call__(self, data, target, hard):
        """One step: `data` (B, 3, H, W), `target` (B, K) distributions, `hard` (B,) labels for
        the accuracy; on the host, split over the devices here."""
        ctx, batch = self.ctx, data.shape[0]
        data_parts = gluon.utils.split_and_load(data, ctx, even_split=False)
        target_parts = gluon.utils.split_and_load(target, ctx, even_split=False)
        hard_parts = gluon.utils.split_and_load(hard, ctx, even_split=False)
        # The teacher's soft targets are computed outside autograd.
        teacher_parts = ([soft_targets(self.teacher(x.astype(self.dtype, copy=False))
                                       .astype("float32"), self.temperature)
                          for x in data_parts] if self.teacher is not None
                         else [None] * len(data_parts))
        scale = self.scaler.scale
        with autograd.record():
            outputs = [self.net(x.astype(self.dtype, copy=False)).astype("float32", copy=False)
                       for x in data_parts]
            losses = [self.loss_fn(out, y) if soft is None else self.loss_fn(out, y, soft)
                      for out, y, soft in zip(outputs, target_parts, teacher_parts)]
            if self.amp:
                from mxnet.contrib import amp
                with amp.scale_loss(losses, self.trainer) as scaled:
                    backward = scaled
            else:
                backward = [loss * scale for loss in losses] if scale != 1.0 else losses
        autograd.backward(backward)
        if self.settle_gradients:
            start = time.perf_counter()
            for param in self.params:
                param.grad(ctx[0]).wait_to_read()
            self.settle_seconds += time.perf_counter() - start
        if not self.scaler.dynamic:
            # AMP skips bad updates itself; a static scale S divides by S through the batch size
            self._accumulate(outputs, losses, hard_parts, count_loss=True)
            self.trainer.step(batch if self.amp else batch * scale)
            return
        self.trainer.allreduce_grads()
        # every device and rank now holds the same gradients: one check, read now (as AMP does)
        grads_finite = self.grads_finite()
        apply = self.scaler.record(bool(grads_finite.asscalar()))
        if not apply and self.scaler.exhausted:
            self._grads_finite *= grads_finite  # not finite even unscaled: diverged
        # A skipped step leaves the loss out: its overflow was handled.
        self._accumulate(outputs, losses, hard_parts, count_loss=apply)
        if apply:
            self.trainer.update(batch * scale)  # the gradients divided by the scale

    def _accumulate(self, outputs, losses, hard_parts, count_loss):
        """Add the batch's correct count and (with `count_loss`) loss sum on the device."""
        home = self.ctx[0]
        with autograd.pause():
            for out, loss, hard in zip(outputs, losses, hard_parts):
                loss_sum = loss.sum()
                correct = (out.argmax(axis=1) == hard.astype("float32", copy=False)).sum()
                if out.context != home:
                    loss_sum, correct = loss_sum.as_in_context(home), correct.as_in_context(home)
                self._correct += correct
                if count_loss:
                    self._loss += loss_sum
            self._batches += 1
            self._samples += sum(o.shape[0] for o in outputs)

    def grads_finite(self):
        """A device flag: 1.0 when the norm of the reduced gradients (first device) is finite."""
        return all_finite([p.grad(self.ctx[0]) for p in self.params], self.ctx[0])

    def weights_finite(self):
        """A device flag: 1.0 when every weight (first device) is finite."""
        return all_finite([p.data(self.ctx[0]) for p in self.net.collect_params().values()],
                          self.ctx[0])

    def read(self, world=None):
        """The statistics since the previous read, on the host (the one sync point), the weights
        checked too; flags and loss summed over ranks so all see one verdict. Resets them."""
        if self._batches and not self.scaler.dynamic:
            # an earlier step's bad gradient shows in the weights (NaN and inf survive updates)
            self._grads_finite *= self.grads_finite()
        flags = mx.nd.concat(self._loss, self._correct, 1 - mx.nd.contrib.isfinite(self._loss),
                             1 - self._grads_finite, 1 - self.weights_finite(), dim=0)
        loss, correct, bad_loss, bad_grads, bad_weights = (float(v) for v in flags.asnumpy())
        batches, samples = self._batches, self._samples
        skipped = self.scaler.skipped - self._skipped_before
        if world is not None and world.size > 1:
            loss, bad_loss, bad_grads, bad_weights = world.sum(
                [loss, bad_loss, bad_grads, bad_weights], name="step_stats")
        self._reset()
        return StepStats(batches=batches, samples=samples, loss_sum=loss, correct=int(correct),
                         loss_finite=bad_loss == 0,
                         grads_finite=bad_grads == 0, weights_finite=bad_weights == 0,
                         loss_scale=self.scaler.scale, skipped=skipped)


class Diverged(UserError):
    """The loss, the gradients or the weights became NaN or infinite."""


class EpochTotals:
    """An epoch's totals over `TrainStep.read()`s; a non-finite read raises Diverged."""

    def __init__(self):
        self.correct = self.samples = self.skipped = 0
        self.loss_sum = 0.0

    def add(self, stats, epoch, first, last):
        """Add one read covering batches first..last of `epoch`; returns it."""
        if not stats.finite:
            where = "batch %d" % last if first >= last else "batches %d-%d" % (first, last)
            raise Diverged("%s became NaN or infinite at epoch %d, %s: training stopped"
                           % (stats.what_diverged(), epoch, where))
        self.correct += stats.correct
        self.samples += stats.samples
        self.loss_sum += stats.loss_sum
        self.skipped += stats.skipped
        return stats

    @property
    def accuracy(self):
        """Correct / seen on this rank, as mx.metric.Accuracy counts (NaN before any)."""
        return self.correct / self.samples if self.samples else float("nan")


def average_batch_norm_over_devices(net):
    """Set every device's BatchNorm running statistics to their mean, as save_parameters writes
    them (summed on the CPU, divided), so validation measures the network a checkpoint holds."""
    for param in net.collect_params().values():
        copies = param.list_data() if param.grad_req == "null" else []
        if len(copies) > 1:
            mean = mx.nd.add_n(*[copy.copyto(mx.cpu()) for copy in copies]) / len(copies)
            for copy in copies:
                mean.copyto(copy)
