"""What keeps a multi-day run safe, around the training loop, and the one writer of its
checkpoints: the save-dir lock, the checkpoint to resume (verified and compatible) chosen and
loaded before anything is written, a free-space check, stop signals, and checkpoints at epoch
ends and in the middle of an epoch (every few minutes, or on a stop signal).

The loop calls `start()` and then `load(state)` once the network exists, both before it opens its
log; `attach(log)` once the log is open; `agreed_batches(epoch, batches, first)` around the
batches of each epoch (the ranks agree before each step whether to save and stop); `save(epoch)`
when an epoch's checkpoint is due; and `close()` at the end, whatever happens.

`run` is the classifier's RunConfig or a transfer command's TransferRun (training/transfer_run.py):
what the guard reads of it is save_dir, logging_file, model (the checkpoints' name), fresh_start,
resume, resume_params (a GluonCV file to start from; '' for none), iters_per_epoch, num_devices,
world_size, process_batch_size, global_batch_size, save_interval_minutes, keep_checkpoints,
as_dict(), resume_fields(), kept_files(), SAVE_FLAG and per_rank_statistics. `state` has net,
trainer, ctx and loss_scaler (a LossScaler, or None).
"""
import logging
import os

import mxnet as mx

from gluon_tricks import files
from gluon_tricks.data.workers import DataWaitStopped
from gluon_tricks.errors import UserError
from gluon_tricks.training import checkpoint
from gluon_tricks.training.preemption import Preempted, RunControl, StopSignals
from gluon_tricks.training.savedir_lock import RunLock

_REFUSED = "refused: "  # a rank's view of the resume point when its own checks refused the run
DATA_LOGGER = "gluon_tricks.data"  # worker deaths, corrupt images: into the training log too


class RunGuard:
    def __init__(self, run, world, signals=None):
        self.run, self.world = run, world
        self.signals = signals if signals is not None else StopSignals()  # caught from the start
        self.resumed_at = None  # (epoch, batch) this process starts training at
        self.lock = RunLock(run.save_dir, run.logging_file) if world.is_root else None
        self.notes = []  # lines for the log, which is not open yet when they are found
        self.record = None  # the checkpoint this run continues
        self.progress = {}  # what the run tracks across epochs (a best mAP), saved with each
        self.control = None
        self.state = self.log = None
        self._data_handlers = []

    def start(self):
        """Every check that can refuse the run, before anything is written: the lock, the
        checkpoint to continue (verified, compatible, the same on every rank). Releases the
        lock if one fails."""
        try:
            refusal = None
            try:
                self._pick_resume_point()
            except UserError as error:
                refusal = error
            self._agree_on_resume_point(refusal)
            if self.record is not None:
                checkpoint.check_same_ranks(self.record, self.run)
                checkpoint.check_compatible(self.record, self.run)
        except BaseException:
            self.close()
            raise

    def _pick_resume_point(self):
        if self.lock is not None:
            self.notes += self.lock.acquire()
            checkpoint.remove_stale_temp_files(self.run.save_dir, self.notes.append)
            checkpoint.remove_orphan_files(self.run.save_dir, self.run.model,
                                           self.run.kept_files(), self.notes.append)
            checkpoint.remove_preempted_marker(self.run.save_dir)
        if not self.run.resume_params:
            self.record = checkpoint.resume_point(self.run.save_dir, self.run.model,
                                                  self.notes.append, self.run.fresh_start,
                                                  self.run.SAVE_FLAG)
            if self.record is None and self.run.resume:
                raise UserError("--resume: no checkpoint of %s in %s"
                                % (self.run.model, self.run.save_dir))

    def _agree_on_resume_point(self, refusal):
        """Every rank picked the checkpoint to continue in its own view of --save-dir: they must
        all have picked the same file with the same SHA-256 (node-local disks, or NFS attribute
        caching hiding the newest checkpoint from a node, would have them train out of step), or
        every rank stops with one line naming what each saw. A refusal on one rank stops all."""
        if self.world.size == 1:
            if refusal is not None:
                raise refusal
            return
        if refusal is not None:
            seen = _REFUSED + str(refusal)
        elif self.record is None:
            seen = "no checkpoint (a fresh start)"
        else:
            seen = "%s (SHA-256 %s)" % (os.path.basename(self.record["path"]),
                                       files.digest(self.record["path"])[1][:16])
        views = self.world.gather_text(seen, name="resume_point")
        if refusal is not None:
            raise refusal
        refused = [(rank, view) for rank, view in enumerate(views) if view.startswith(_REFUSED)]
        if refused:
            raise UserError("rank %d %s" % refused[0])
        if len(set(views)) > 1:
            raise UserError("the ranks do not see the same checkpoint to continue in %s "
                            "%s (%s): every rank must see the same files (one shared folder; "
                            "NFS attribute caching can hide the newest files from a node)"
                            % (self.run.SAVE_FLAG, self.run.save_dir, "; ".join(
                                "rank %d: %s" % item for item in enumerate(views))))

    def load(self, state):
        """Check the free space and load the checkpoint to continue (or GluonCV's files) into
        `state`; returns (first epoch, first batch of that epoch). Lines for the log are kept
        for `attach`."""
        self.state = state
        self.resumed_at = self._load(state)
        return self.resumed_at

    def _load(self, state):
        if self.world.is_root:
            files.require_free_space(self.run.save_dir, checkpoint.checkpoint_bytes(state.net),
                                     "a checkpoint")
        run = self.run
        if run.resume_params:
            params = os.path.expanduser(run.resume_params)
            checkpoint.load_params(state.net, params, state.ctx)
            checkpoint.load_gluoncv_states(state.trainer, os.path.expanduser(run.resume_states),
                                           run.trust_pickled_states, run.momentum, run.wd,
                                           lambda line: self.notes.append("warning: " + line))
            self.notes.append("resumed from %s at epoch %d" % (run.resume_params,
                                                               run.resume_epoch))
            return run.resume_epoch, 0
        if self.record is None:
            return 0, 0
        epoch, step = checkpoint.load_checkpoint(self.record, state.net, state.trainer, state.ctx)
        if state.loss_scaler is not None:
            state.loss_scaler.load_state(checkpoint.loss_scaler_state(self.record))
        self.progress = dict(self.record.get("progress") or {})
        batch = self.record.get("batch", 0)
        self.notes.append("resumed from %s: %d epochs%s done, step %d" % (
            self.record["path"], epoch, " and %d batches" % batch if batch else "", step))
        return epoch, batch

    def agreed_batches(self, epoch, batches, first_batch):
        """The batches of `epoch` from `first_batch` on, each yielded once every rank has agreed
        to take the step (after its data arrived, before any gradient is exchanged), and a last
        agreement after the epoch's last step: each may checkpoint (interval, signal) and stop."""
        done = first_batch
        batches = iter(batches)
        while True:
            try:
                item = next(batches)
            except StopIteration:
                break
            except DataWaitStopped:  # a stop signal while this rank waited for data
                self.step_done(epoch, done, stop_here=True)  # the others agree, then stop
                raise
            self.step_done(epoch, done)
            yield item
            done += 1
        self.step_done(epoch, done)

    def stopped_in_validation(self, epoch):
        """A stop signal while one process waited for validation data: checkpoint the epoch's
        trained weights (as after its last batch) and stop. (Ranks wait for validation's end.)"""
        self.step_done(epoch, self.run.iters_per_epoch, stop_here=True)  # raises Preempted

    def attach(self, log):
        """The log is open: write the lines kept so far, send the data loader's warnings to it
        too, and catch the stop signals."""
        self.log = log
        for note in self.notes:
            log.info(note)
        data_logger = logging.getLogger(DATA_LOGGER)
        for handler in log.logger.handlers:
            data_logger.addHandler(handler)
            self._data_handlers.append(handler)
        self.control = RunControl(self.world, self.run.save_interval_minutes,
                                  signals=self.signals).install()

    def save(self, epoch, batches=0, stopping=False):
        """The one writer of checkpoints, called by every rank: after `epoch` epochs and `batches`
        batches of the next (mid-epoch: with every rank's BatchNorm statistics). Rank 0 writes;
        returns the JSON path (None on other ranks)."""
        path = statistics = None
        if batches and self._statistics_differ():
            statistics = self._gather_statistics()  # every rank takes part
        if self.world.is_root:
            run, state = self.run, self.state
            path = checkpoint.save_checkpoint(
                run.save_dir, state.net, state.trainer, run.model, epoch,
                epoch * run.iters_per_epoch + batches, run, batch=batches,
                rank_statistics=statistics, progress=self.progress,
                loss_scaler=state.loss_scaler.state() if state.loss_scaler is not None else None)
            if batches:
                self.log.info("[Epoch %d] checkpoint at batch %d: %s (%s)" % (
                    epoch, batches, path, "stopping on " + self.control.signal_name()
                    if stopping else "every %g minutes" % run.save_interval_minutes))
            checkpoint.prune_checkpoints(run.save_dir, run.model, run.keep_checkpoints,
                                         self.log.info)
        self.control.saved()
        return path

    def step_done(self, epoch, batches, stop_here=False):
        """With `batches` of `epoch` done: all ranks agree whether to save (interval, signal)
        and stop. Nothing is saved where this process started (nothing new to save)."""
        save, stop = self.control.agree(stop_here)
        save = save and (stop or batches > 0)  # at batch 0 the epoch's end was just agreed on
        fresh = (epoch, batches) == self.resumed_at
        path = self.save(epoch, batches, stop) if save and not fresh else None
        if stop:
            if fresh:
                message = ("stopped by %s before the first step (epoch %d, batch %d): nothing "
                           "new to save; run the same command again to start"
                           % (self.control.signal_name(), epoch, batches))
            else:
                message = ("stopped by %s at epoch %d after batch %d; %s; run the same command "
                           "again to continue from there"
                           % (self.control.signal_name(), epoch, batches,
                              "checkpoint " + path if path else "rank 0 wrote the checkpoint"))
            if self.world.is_root:  # for a launcher that cannot see the ranks' exit status
                checkpoint.write_preempted_marker(self.run.save_dir, message)
            if self.world.size > 1:
                self.world.sum([0.0], name="preempted")  # rank 0 has written: leave together
            raise Preempted(message)

    def _statistics_differ(self):
        """Whether devices hold their own BatchNorm running statistics mid-epoch."""
        return self.run.per_rank_statistics and (self.world.size > 1 or self.run.num_devices > 1)

    def _gather_statistics(self):
        """(ranks, values): the BatchNorm running statistics of each rank's every device, which
        differ mid-epoch (they are averaged at the end of an epoch only)."""
        params = checkpoint.running_statistics(self.state.net)
        flat = mx.nd.concat(*[data.reshape(-1).astype("float32").as_in_context(mx.cpu())
                              for p in params for data in p.list_data()], dim=0).reshape(1, -1)
        if self.world.size == 1:
            return flat
        return self.world.hvd.allgather(flat, name="running_statistics")

    def after_broadcast(self, state):
        """Once rank 0's weights are everyone's: each device's own running statistics back."""
        if self.record is not None and self._statistics_differ():
            checkpoint.load_rank_statistics(self.record, state.net, self.world.rank,
                                            self.world.size)

    def close(self):
        self.signals.uninstall()
        data_logger = logging.getLogger(DATA_LOGGER)
        for handler in self._data_handlers:
            data_logger.removeHandler(handler)
        self._data_handlers = []
        if self.lock is not None:
            self.lock.release()
