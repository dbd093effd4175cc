"""Shared fixtures: a fixed MXNet/numpy seed per test, and the CLI runner."""
import random

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def fixed_seeds():
    import mxnet as mx
    mx.random.seed(7)
    np.random.seed(7)
    random.seed(7)


@pytest.fixture
def cli(capsys):
    """Run `gluon-tricks ARGS...` in-process; returns (exit status, stdout, stderr)."""
    from gluon_tricks.cli import main

    def run(*args):
        status = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return status, out, err
    return run
