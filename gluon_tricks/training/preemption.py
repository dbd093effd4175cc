"""Stopping and saving in the middle of an epoch: on a signal, and every few minutes.

SIGTERM (SLURM, Kubernetes, spot reclaim), SIGINT (Ctrl-C) and SIGUSR1 (SLURM's `--signal`
warning) only set a flag: the step in progress finishes, then all ranks agree through one small
allreduce that some rank was signalled (or that the save interval has passed on rank 0), rank 0
writes a mid-epoch checkpoint, and a signal ends the run with PREEMPTED_EXIT_CODE. The next run
resumes from that batch exactly (every random draw is keyed by (seed, epoch, batch)). A second
Ctrl-C interrupts at once.
"""
import signal
import time

from gluon_tricks.errors import UserError

PREEMPTED_EXIT_CODE = 75  # EX_TEMPFAIL: "try again later", what a requeueing scheduler wants
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)


class Preempted(UserError):
    """The run stopped on a signal after saving a checkpoint; exit with PREEMPTED_EXIT_CODE."""
    exit_code = PREEMPTED_EXIT_CODE


class RunControl:
    """Per-step decisions shared by every rank: save now (interval), stop now (signal)."""

    def __init__(self, world, save_interval_minutes=0.0, clock=time.monotonic):
        self.world = world
        self.interval = 60.0 * save_interval_minutes if save_interval_minutes else 0.0
        self.clock = clock
        self.last_save = clock()
        self.signalled = None  # the number of the first signal received
        self._previous = {}

    # -- signals
    def install(self):
        """Catch the stop signals (main thread only; elsewhere they keep their handlers)."""
        try:
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._on_signal)
        except ValueError:  # not the main thread
            self.uninstall()
        return self

    def uninstall(self):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _on_signal(self, signum, frame):
        if self.signalled is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop without waiting
        if self.signalled is None:
            self.signalled = signum

    # -- decisions, after each step
    def after_step(self):
        """(save, stop) agreed by every rank: one allreduce of two numbers under Horovod."""
        due = bool(self.interval) and self.world.is_root and (
            self.clock() - self.last_save >= self.interval)
        votes = [float(self.signalled is not None), float(due)]
        if self.world.size > 1:
            votes = self.world.sum(votes, name="run_control")
        stop, save = votes[0] > 0, votes[1] > 0
        return save or stop, stop

    def saved(self):
        """A checkpoint was just written: the interval starts again."""
        self.last_save = self.clock()

    def signal_name(self):
        return signal.Signals(self.signalled).name if self.signalled else "a signal on another rank"
