"""The run scaffolding of a transfer command (`detect train`, `segment train`): the classifier's
RunGuard (save-dir lock, verified checkpoint to continue, refusal of one written with other
flags, stop signals, mid-epoch checkpoints, ranks agreeing) around the command's own loop.

A command describes its run as a TransferRun (its resolved flags plus the few numbers the guard
reads), its trained objects as a TransferState, and trains inside `with GuardedRun(...)`.
"""
import os
import shutil
from dataclasses import dataclass, field
from typing import Any, ClassVar, List

from gluon_tricks.errors import UserError
from gluon_tricks.training import checkpoint
from gluon_tricks.training.run_guard import RunGuard
from gluon_tricks.training.train_log import TrainLog


@dataclass(frozen=True)
class TransferRun:
    """What the RunGuard reads of a transfer run. `config`: the command's resolved flags (the
    log's Namespace line and the checkpoint's JSON hold them); a checkpoint written with another
    value of any of them, except those of `free_on_resume`, is refused."""
    SAVE_FLAG: ClassVar[str] = "--save-prefix"

    model: str  # the checkpoints' name in save_dir
    save_dir: str
    logging_file: str
    config: dict
    free_on_resume: tuple
    iters_per_epoch: int  # batches of one rank per epoch
    process_batch_size: int  # images of one rank's batch
    world_size: int = 1
    num_devices: int = 1
    fresh_start: bool = False
    save_interval_minutes: float = 0.0
    keep_checkpoints: int = 0
    resume: bool = False  # a checkpoint must exist
    resume_params: str = ""  # transfer commands start from no GluonCV checkpoint files
    # Whether BatchNorm running statistics train (and so differ by device mid-epoch, saved per
    # rank); False for a frozen-BN detector.
    per_rank_statistics: bool = False

    @property
    def global_batch_size(self):
        return self.process_batch_size * self.world_size

    def as_dict(self):
        return dict(self.config, model=self.model, world_size=self.world_size,
                    num_devices=self.num_devices, process_batch_size=self.process_batch_size,
                    global_batch_size=self.global_batch_size,
                    iters_per_epoch=self.iters_per_epoch)

    def resume_fields(self):
        return [name for name in self.as_dict() if name not in self.free_on_resume]

    def kept_files(self):
        return ()


@dataclass
class TransferState:
    """What a checkpoint holds: the network and its trainer (on `ctx`)."""
    net: Any
    trainer: Any
    ctx: List[Any]
    loss_scaler: Any = None
    notes: List[str] = field(default_factory=list)  # for the log once it is open


class GuardedRun:
    """`with GuardedRun(run, world, state, signals) as session:` takes the lock, picks, checks
    and loads the checkpoint to continue (into `state`), opens the log (rank 0 writes) with the
    run's Namespace line, and catches the stop signals; on leaving, releases them all. A run
    refused before its log was opened removes the save dir it created.

    session.finished: the checkpoint has done every epoch (no log is opened);
    session.start: (epoch, batch) training starts at; session.log; session.guard (its
    agreed_batches and save, its `progress` dict saved with every checkpoint);
    session.broadcast_parameters() once before training."""

    def __init__(self, run, world, state, signals=None, epochs=None):
        self.run, self.world, self.state = run, world, state
        self.epochs = epochs  # the run's epochs, to tell a finished checkpoint
        self.guard = RunGuard(run, world, signals)
        self.guard.signals.install()
        self.log = None
        self.start = (0, 0)
        self.finished = False
        self._made = False

    def __enter__(self):
        try:
            self._made = self.world.is_root and not os.path.isdir(self.run.save_dir)
            if self.world.is_root:
                checkpoint.check_writable(self.run.save_dir)
            self.guard.start()
            notes = list(self.guard.notes)
            self.start = self.guard.load(self.state)
            if self.epochs is not None and self.start[0] >= self.epochs:
                self.finished = True
                if self.world.is_root:
                    for note in notes:
                        print(note)
                return self
            self.log = TrainLog(self.run.logging_file, enabled=self.world.is_root)
            self.log.namespace(self.run.as_dict())
            for note in self.state.notes:
                self.log.info(note)
            self.guard.attach(self.log)
        except BaseException as error:
            self.__exit__(type(error), error, None)
            raise
        return self

    def broadcast_parameters(self):
        """Every rank starts from rank 0's weights; after a mid-epoch checkpoint, each device
        gets its own BatchNorm statistics back (per_rank_statistics)."""
        self.world.broadcast_parameters(self.state.net)
        self.guard.after_broadcast(self.state)

    def __exit__(self, kind, error, traceback):
        if (kind is not None and issubclass(kind, UserError) and self._made
                and self.log is None):
            shutil.rmtree(self.run.save_dir, ignore_errors=True)
        self.guard.close()
        if self.log is not None:
            self.log.close()
            self.log = None
        return False


def run_with_signals(train, args):
    """`train(args, world, signals)` with the stop signals caught from before start-up (a signal
    then ends the run at its first step), and the world finished afterwards."""
    from gluon_tricks.training.distributed import World
    from gluon_tricks.training.preemption import StopSignals
    signals = StopSignals().install()
    try:
        world = World.from_environment()
        result = train(args, world, signals)
    finally:
        signals.uninstall()
    world.finish()
    return result
