"""`gluon-tricks train`: parse GluonCV-compatible flags, check them, train in one process or as
one of N Horovod ranks (launched by horovodrun)."""
from gluon_tricks.training.config import add_arguments, check_flags  # noqa: F401 (the CLI's)


def run(args):
    from gluon_tricks.training.preemption import StopSignals
    signals = StopSignals().install()  # a stop signal during start-up ends the run at step one
    try:
        from gluon_tricks.training.distributed import World
        from gluon_tricks.training.loop import train  # MXNet's import: seconds
        check_flags(args)
        world = World.from_environment()
        result = train(args, world, signals)
    finally:
        signals.uninstall()
    world.finish()
    if world.is_root and result["err_top1"] is None:
        print("nothing to train: the checkpoint in %s has finished all %d epochs; %s is left "
              "as it is" % (args.save_dir, args.num_epochs, args.logging_file))
    elif world.is_root:
        print("final validation: err-top1=%.4f err-top5=%.4f; log: %s; checkpoint: %s"
              % (result["err_top1"], result["err_top5"], args.logging_file,
                 result["checkpoint"]))
    return 0
