"""What keeps a multi-day run safe, around the training loop, and the one writer of its
checkpoints: the save-dir lock, the checkpoint to resume (verified and compatible) chosen and
loaded before anything is written, a free-space check, stop signals, and checkpoints at epoch
ends and in the middle of an epoch (every few minutes, or on a stop signal).

The loop calls `start()` and then `load(state)` once the network exists, both before it opens its
log; `attach(log)` once the log is open, `step_done(epoch, batches)` after every step, `save(epoch)`
when an epoch's checkpoint is due, and `close()` at the end, whatever happens.
"""
import logging
import os

import mxnet as mx

from gluon_tricks import files
from gluon_tricks.errors import UserError
from gluon_tricks.training import checkpoint
from gluon_tricks.training.preemption import Preempted, RunControl
from gluon_tricks.training.savedir_lock import RunLock

DATA_LOGGER = "gluon_tricks.data"  # worker deaths, corrupt images: into the training log too


class RunGuard:
    def __init__(self, run, world):
        self.run, self.world = run, world
        self.lock = RunLock(run.save_dir, run.logging_file) if world.is_root else None
        self.notes = []  # lines for the log, which is not open yet when they are found
        self.record = None  # the checkpoint this run continues
        self.control = None
        self.state = self.log = None
        self._data_handlers = []

    def start(self):
        """Every check that can refuse the run, before anything is written: the lock, the
        checkpoint to continue (verified, compatible). Releases the lock if one fails."""
        try:
            if self.lock is not None:
                self.notes += self.lock.acquire()
                checkpoint.remove_stale_temp_files(self.run.save_dir, self.notes.append)
            if not self.run.resume_params:
                self.record = checkpoint.resume_point(self.run.save_dir, self.run.model,
                                                      self.notes.append, self.run.fresh_start)
                if self.record is None and self.run.resume:
                    raise UserError("--resume: no checkpoint of %s in %s"
                                    % (self.run.model, self.run.save_dir))
                if self.record is not None:
                    checkpoint.check_same_ranks(self.record, self.run)
                    checkpoint.check_compatible(self.record, self.run)
        except BaseException:
            self.close()
            raise

    def load(self, state):
        """Check the free space and load the checkpoint to continue (or GluonCV's files) into
        `state`; returns (first epoch, first batch of that epoch). Lines for the log are kept
        for `attach`."""
        self.state = state
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
        state.step.scaler.load_state(checkpoint.loss_scaler_state(self.record))
        batch = self.record.get("batch", 0)
        self.notes.append("resumed from %s: %d epochs%s done, step %d" % (
            self.record["path"], epoch, " and %d batches" % batch if batch else "", step))
        return epoch, batch

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
        self.control = RunControl(self.world, self.run.save_interval_minutes).install()

    def save(self, epoch, batches=0, stopping=False):
        """The one writer of checkpoints, called by every rank: after `epoch` epochs and `batches`
        batches of the next (mid-epoch: with every rank's BatchNorm statistics). Rank 0 writes;
        returns the JSON path (None on other ranks)."""
        path = statistics = None
        if batches and (self.world.size > 1 or self.run.num_devices > 1):
            statistics = self._gather_statistics()  # every rank takes part
        if self.world.is_root:
            run, state = self.run, self.state
            path = checkpoint.save_checkpoint(
                run.save_dir, state.net, state.trainer, run.model, epoch,
                epoch * run.iters_per_epoch + batches, run, batch=batches,
                rank_statistics=statistics, loss_scaler=state.step.scaler.state())
            if batches:
                self.log.info("[Epoch %d] checkpoint at batch %d: %s (%s)" % (
                    epoch, batches, path, "stopping on " + self.control.signal_name()
                    if stopping else "every %g minutes" % run.save_interval_minutes))
            checkpoint.prune_checkpoints(run.save_dir, run.model, run.keep_checkpoints,
                                         self.log.info)
        self.control.saved()
        return path

    def step_done(self, epoch, batches):
        """After each step: all ranks agree whether to save (interval, signal) and stop."""
        save, stop = self.control.after_step()
        path = self.save(epoch, batches, stop) if save else None
        if stop:
            if self.world.size > 1:
                self.world.sum([0.0], name="preempted")  # rank 0 has written: leave together
            raise Preempted("stopped by %s at epoch %d after batch %d; %s; run the same command "
                            "again to continue from there"
                            % (self.control.signal_name(), epoch, batches,
                               "checkpoint " + path if path else "rank 0 wrote the checkpoint"))

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
        if self.record is not None and (self.world.size > 1 or self.run.num_devices > 1):
            checkpoint.load_rank_statistics(self.record, state.net, self.world.rank,
                                            self.world.size)

    def close(self):
        if self.control is not None:
            self.control.uninstall()
        data_logger = logging.getLogger(DATA_LOGGER)
        for handler in self._data_handlers:
            data_logger.removeHandler(handler)
        self._data_handlers = []
        if self.lock is not None:
            self.lock.release()
