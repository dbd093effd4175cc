"""scripts/gpu_check.sh on the CPU: DRY_RUN=1 prints every check's command, each a valid
`gluon-tricks` command line; a run (with stand-ins for gluon-tricks and horovodrun) prints the
pass/fail table and writes the JSON, failing what failed. Each check of the dry run is also run
against a stand-in script that prints nothing, which it must fail."""
import json
import os
import pathlib
import shlex
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu_check.sh"


PRECISIONS = ("fp32", "fp16-static", "fp16-dynamic", "amp")
EVERY_MACHINE = {"loss fp32 200 steps", "loss fp16 200 steps", "horovod build"}


def _run(env_extra, cwd, script=SCRIPT):
    env = dict(os.environ, **env_extra)
    return subprocess.run(["bash", str(script)], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def _checks(stdout):
    """{name: command} from DRY_RUN's '# name' / 'command' pairs."""
    lines = stdout.strip().splitlines()
    assert len(lines) % 2 == 0 and all(line.startswith("# ") for line in lines[::2]), stdout
    return {lines[i][2:]: lines[i + 1] for i in range(0, len(lines), 2)}


def check_four_gpus_dry_run(tmp_path, script=SCRIPT):
    """Every precision on 1 GPU, 4 GPUs and Horovod, each a valid `bench train` command line."""
    from gluon_tricks.cli import build_parser
    result = _run({"DRY_RUN": "1", "NGPUS": "4", "MODEL": "resnet18_v1b"}, tmp_path, script)
    assert result.returncode == 0, result.stderr
    checks = _checks(result.stdout)
    expected = {"%s %s" % (p, where) for p in PRECISIONS for where in ("1gpu", "4gpu",
                                                                        "horovod-4")}
    assert set(checks) == expected | EVERY_MACHINE
    assert checks["horovod build"] == "horovodrun --check-build"
    assert checks["amp horovod-4"].startswith("horovodrun -np 4 -H localhost:4 gluon-tricks ")
    for name, command in checks.items():
        words = shlex.split(command)
        if "gluon-tricks" not in words:
            continue
        argv = words[words.index("gluon-tricks") + 1:]
        args = build_parser(only="bench").parse_args(argv)  # exits on an unknown flag
        assert args.what == "train" and args.json and args.model in ("resnet18_v1b",)
        assert args.num_gpus == (4 if "4gpu" in name else 1)
        if name.startswith("loss "):
            assert args.loss_curve and args.steps == 200
    assert "--dtype float16 --loss-scale 1024" in checks["fp16-static 4gpu"]


def check_one_gpu_dry_run(tmp_path, script=SCRIPT):
    """One GPU: every precision on it, and no multi-GPU or Horovod rows."""
    result = _run({"DRY_RUN": "1", "NGPUS": "1"}, tmp_path, script)
    assert result.returncode == 0, result.stderr
    assert set(_checks(result.stdout)) == {"%s 1gpu" % p for p in PRECISIONS} | EVERY_MACHINE


def test_dry_run_lists_every_check_with_valid_flags(tmp_path):
    check_four_gpus_dry_run(tmp_path)


def test_one_gpu_has_no_multi_gpu_rows(tmp_path):
    check_one_gpu_dry_run(tmp_path)


@pytest.mark.parametrize("check", [check_four_gpus_dry_run, check_one_gpu_dry_run])
@pytest.mark.parametrize("stand_in", ["exit 0", "echo '# fp32 1gpu'", "echo; echo"])
def test_the_checks_fail_on_a_script_that_prints_nothing_or_too_little(tmp_path, check,
                                                                       stand_in):
    script = tmp_path / "stand_in.sh"
    script.write_text("#!/usr/bin/env bash\n%s\n" % stand_in)
    with pytest.raises(AssertionError):
        check(tmp_path, script)


def test_a_run_prints_a_table_and_writes_json(tmp_path):
    """Stand-ins: 'gluon-tricks' prints what bench train would (and fails for --amp, as a GPU
    without AMP support would), horovodrun runs its command (or passes --check-build)."""
    fake = tmp_path / "fake_gluon_tricks.py"
    fake.write_text(
        "import json, sys\n"
        "argv = sys.argv[1:]\n"
        "if '--amp' in argv: sys.exit('amp is broken here')\n"
        "if '--loss-curve' in argv:\n"
        "    end = 0.52 if 'float16' in argv else 0.5\n"
        "    print(json.dumps({'loss_start': 2.3, 'loss_end': end}))\n"
        "else:\n"
        "    print(json.dumps({'ours': 100.0, 'ms_per_step': 640.0, 'host_ms': 3.0}))\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "horovodrun").write_text(
        "#!/bin/bash\n[ \"$1\" = --check-build ] && exit 0\nshift 4\nexec \"$@\"\n")
    (bin_dir / "horovodrun").chmod(0o755)
    out = tmp_path / "check.json"
    result = _run({"NGPUS": "2", "OUT": str(out), "PYTHON": sys.executable,
                   "GLUON_TRICKS": "%s %s" % (sys.executable, fake),
                   "PATH": "%s:%s" % (bin_dir, os.environ["PATH"])}, tmp_path)
    assert result.returncode == 1, result.stderr  # the --amp rows failed
    table = result.stdout
    assert "fp32 2gpu" in table and "written: %s" % out in table
    checks = {c["name"]: c for c in json.load(open(out))}
    assert [n for n, c in checks.items() if not c["passed"]] == [
        "amp 1gpu", "amp 2gpu", "amp horovod-2"]
    assert checks["amp 1gpu"]["error"] == ["amp is broken here"]
    assert checks["fp16-dynamic horovod-2"]["result"]["ours"] == 100.0
    assert checks["loss fp16 vs fp32"]["passed"]  # |0.52 - 0.5| <= 0.1 x 2.3
    for line in table.splitlines()[1:-1]:
        name = line[:28].strip()
        assert line[28:34].strip() == ("pass" if checks[name]["passed"] else "FAIL")
