"""Stopping and saving in the middle of an epoch: on a signal, and every few minutes.

SIGTERM (SLURM, Kubernetes, spot reclaim), SIGINT (Ctrl-C) and SIGUSR1 (SLURM's `--signal`
warning) only set a flag, caught from the start of the run: the step in progress finishes (a wait
for data is cut short), then before the next step all ranks agree through one small allreduce that
some rank was signalled (or that the save interval has passed on rank 0), rank 0 writes a
mid-epoch checkpoint, and a signal ends the run with PREEMPTED_EXIT_CODE. The agreement comes
after the data of the next step and before its gradients are exchanged, so a rank stuck waiting
for data never leaves the others inside another collective. The next run
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


class StopSignals:
    """The stop signals caught as a flag, from the start of a run (a signal during start-up is
    kept for the first step's agreement instead of killing the process without a word)."""

    def __init__(self):
        self.signalled = None  # the number of the first signal received
        self._previous = {}

    def install(self):
        """Catch the stop signals (main thread only; elsewhere they keep their handlers)."""
        if self._previous:
            return self
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

    def requested(self):
        """Whether a stop signal arrived (the data loaders poll this while they wait)."""
        return self.signalled is not None

    def name(self):
        return signal.Signals(self.signalled).name if self.signalled else "a signal on another rank"


class RunControl:
    """Per-step decisions shared by every rank: save now (interval), stop now (signal)."""

    def __init__(self, world, save_interval_minutes=0.0, clock=time.monotonic, signals=None):
        self.world = world
        self.interval = 60.0 * save_interval_minutes if save_interval_minutes else 0.0
        self.clock = clock
        self.last_save = clock()
        self.signals = signals if signals is not None else StopSignals()

    @property
    def signalled(self):
        return self.signals.signalled

    # -- signals
    def install(self):
        self.signals.install()
        return self

    def uninstall(self):
        self.signals.uninstall()

    # -- decisions, before each step and after an epoch's last
    def agree(self, stop_here=False):
        """(save, stop) agreed by every rank: one allreduce of two numbers under Horovod.
        `stop_here`: this rank stops whatever the signal flag says (its data wait was stopped)."""
        due = bool(self.interval) and self.world.is_root and (
            self.clock() - self.last_save >= self.interval)
        votes = [float(stop_here or self.signalled is not None), float(due)]
        if self.world.size > 1:
            votes = self.world.sum(votes, name="run_control")
        stop, save = votes[0] > 0, votes[1] > 0
        return save or stop, stop


    def saved(self):
        """A checkpoint was just written: the interval starts again."""
        self.last_save = self.clock()

    def signal_name(self):
        return self.signals.name()
