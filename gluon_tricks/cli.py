"""The `gluon-tricks` command: a table of subcommands, each living in the module that owns it.

Every subcommand module defines `add_arguments(parser)` and `run(args) -> int`. Modules are imported
only when their subcommand runs (or when `--help` lists them), so `gluon-tricks report` does not
pay for MXNet's start-up.
"""
import argparse
import importlib
import os
import sys

from gluon_tricks import __version__
from gluon_tricks.errors import UserError, error_summary

# name -> (module, one-line help). The order is the order of `gluon-tricks --help`.
COMMANDS = {
    "demo": ("gluon_tricks.demo", "train a ResNet-D with every trick on the embedded data (CPU)"),
    "models": ("gluon_tricks.models.table", "parameters and multiply-adds of every ResNet variant"),
    "demo-data": ("gluon_tricks.data.demo_data", "write the embedded demo data set and pack it"),
    "pack": ("gluon_tricks.data.pack", "pack an image folder into RecordIO (.rec/.idx/.lst)"),
    "bench": ("gluon_tricks.bench_train", "benchmarks: `bench data` (input pipeline images/s), "
              "`bench train` (the training step, next to GluonCV's)"),
    "train": ("gluon_tricks.training.command",
              "train with the paper's tricks (1 process or Horovod)"),
    "detect": ("gluon_tricks.detect", "Faster R-CNN on Pascal VOC from a backbone trained here "
               "(`detect train`, `detect eval`)"),
    "segment": ("gluon_tricks.segment", "FCN on ADE20K from a backbone trained here "
                "(`segment train`, `segment eval`)"),
    "eval": ("gluon_tricks.evaluate", "top-1/top-5 error of a checkpoint; save logits"),
    "export": ("gluon_tricks.export", "a trained network as MXNet symbol+params or ONNX, checked"),
    "predict": ("gluon_tricks.predict", "top-k classes of images from weights or an export"),
    "plot": ("gluon_tricks.figures.plot_command", "draw the paper's figures from logs and logits"),
    "report": ("gluon_tricks.figures.report", "the ablation table from training logs"),
}

TRACEBACK_ENV = "GLUON_TRICKS_TRACEBACK"


class _HelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default, unless the text already names it."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (not action.option_strings or default is None or default is False or default == ""
                or default is argparse.SUPPRESS or "default" in text):
            return text
        return text + " (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """An argument parser that shows defaults in its help and takes no abbreviated flags (so
    `--lr-mod` is an error, not `--lr-mode`); subcommand parsers are of this class too."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)


class _LazySubcommand:
    """Imports a subcommand's module the first time it is needed."""

    def __init__(self, module_name):
        self.module_name = module_name
        self._module = None

    @property
    def module(self):
        if self._module is None:
            self._module = importlib.import_module(self.module_name)
        return self._module


def build_parser(only=None):
    """The top-level parser; with `only`, just that subcommand is given its arguments."""
    parser = Parser(
        prog="gluon-tricks",
        description="Bag of Tricks for Image Classification (He et al., CVPR 2019), reproduced "
                    "with MXNet Gluon, GluonCV and Horovod.")
    parser.add_argument("--version", action="version", version="gluon-tricks " + __version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module_name, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        command = _LazySubcommand(module_name)
        command_parser.set_defaults(_command=command)
        if only is None or name == only:
            command.module.add_arguments(command_parser)
    return parser


def main(argv=None):
    """Parse, run, and turn every failure into one line on stderr and a non-zero status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    chosen = next((a for a in argv if a in COMMANDS), None)
    try:
        # Only the chosen subcommand's module is imported; `--help` alone imports none.
        args = build_parser(only=chosen or "").parse_args(argv)
        return int(args._command.module.run(args) or 0)
    except UserError as error:
        print("gluon-tricks: error: %s" % error, file=sys.stderr)
        return getattr(error, "exit_code", 2)  # 2; a run stopped by a signal says its own
    except KeyboardInterrupt:
        print("gluon-tricks: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as error:  # pylint: disable=broad-except
        if os.environ.get(TRACEBACK_ENV):
            raise
        print("gluon-tricks: internal error: %s: %s (set %s=1 to see the traceback)"
              % (type(error).__name__, error_summary(error), TRACEBACK_ENV), file=sys.stderr)
        return 1
