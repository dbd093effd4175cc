"""Training: the schedule, the tricks, the loop for one process or N Horovod ranks, checkpoints."""
