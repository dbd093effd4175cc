"""Figures and reports from files: training logs (this project's and GluonCV's) and saved logits.

The data flows logparse -> tricks (with gluon_tricks.paper's rows) -> report (tables) and
gap/plots -> plot_command (figures). Nothing is imported here: `gluon-tricks report` must start
without MXNet.
"""
