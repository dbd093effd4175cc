"""Training logs name the code behind their numbers: the git commit, marked +dirty on changes."""
import shutil
import subprocess

import pytest

from gluon_tricks.provenance import code_version


def _git(root, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=root,
                   check=True, capture_output=True)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git (the Docker image has none)")
def test_commit_then_dirty(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "a.py").write_text("x = 1\n")
    _git(repo, "add", "a.py")
    _git(repo, "commit", "-q", "-m", "one")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                          text=True, check=True).stdout.strip()
    assert code_version(str(repo)) == head
    (repo / "b.py").write_text("untracked files do not change the code that ran\n")
    assert code_version(str(repo)) == head
    (repo / "a.py").write_text("x = 2\n")
    assert code_version(str(repo)) == head + "+dirty"


def test_no_checkout_or_no_git(tmp_path, monkeypatch):
    plain = tmp_path / "plain"
    plain.mkdir()
    assert code_version(str(plain)).endswith("(no git checkout)")
    monkeypatch.setenv("PATH", str(tmp_path))  # no git at all, as in the Docker image
    assert code_version(str(plain)).endswith("(no git checkout)")


@pytest.mark.parametrize("fmt", ["text", "jsonl"])
def test_the_training_log_records_it(tmp_path, fmt):
    from gluon_tricks.figures import logparse
    from gluon_tricks.training.train_log import TrainLog
    path = str(tmp_path / "run.log")
    log = TrainLog(path, enabled=True)
    log.namespace({"model": "resnet18_v1d", "seed": 0})
    log.close()
    expected = code_version()
    if fmt == "text":
        assert "code_version=%r" % expected in open(path).readline()
    else:
        assert logparse.load_logs([path], print)[0].config["code_version"] == expected
