"""The shell scripts' processes and outputs: stopping a script stops what it runs (a signal to
the script's process alone, as `kill PID` or a scheduler sends it), and scripts/cpu_ablation.sh
writes its results to a fresh folder only once every run has finished.

gluon-tricks itself is replaced by stand-ins that record what they were asked and write the files
the script expects: no training runs here."""
import os
import signal
import stat
import subprocess
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(REPO, "scripts")
ROWS = ["1_baseline_resnet18_v1", "2_resnet18_v1d", "3_cosine", "4_label_smoothing", "5_mixup",
        "6_distillation"]
SEEDS = (0, 1)  # the stand-in runs two seeds per row (the script's default is three)
RUNS = ["teacher_resnet34_v1d"] + ["%s_seed%d" % (row, seed) for seed in SEEDS for row in ROWS]

# `python -m gluon_tricks CMD ...`: train writes a checkpoint and its logs (or fails for the run
# named FAIL_RUN, or records its pid and sleeps for the run named SLEEP_RUN); eval, plot and
# report write what they are asked to.
PYTHON_STUB = r"""#!/usr/bin/env bash
set -eu
shift 2
cmd=$1
shift
echo "$cmd $*" >> "$STUB_DIR/calls"
value() {  # value FLAG ARGS...: the word after FLAG
  local flag=$1; shift
  while [ $# -gt 1 ]; do [ "$1" != "$flag" ] || { echo "$2"; return; }; shift; done
}
case $cmd in
  train)
    save=$(value --save-dir "$@"); model=$(value --model "$@"); name=$(basename "$save")
    [ "$name" != "${FAIL_RUN:-}" ] || exit 1
    if [ "$name" = "${SLEEP_RUN:-}" ]; then echo $$ > "$STUB_DIR/train.pid"; exec sleep 60; fi
    mkdir -p "$save"
    touch "$save/$model-0010.params"
    log=$(value --logging-file "$@"); echo "log of $name" >> "$log"; echo "{}" >> "$log.jsonl" ;;
  eval) echo "logits" > "$(value --save-logits "$@")" ;;
  plot) touch "$(value -o "$@")" ;;
  report) echo "report of $*" ;;
esac
"""


def executable(path, text):
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def ablation(tmp_path):
    """start(out_dir, **env) -> Popen of cpu_ablation.sh with the stand-in python."""
    python = executable(tmp_path / "python", PYTHON_STUB)

    def start(out_dir, **env):
        merged = {k: v for k, v in os.environ.items() if k not in ("EPOCHS", "RUNS_DIR")}
        merged.update(PYTHON=str(python), STUB_DIR=str(tmp_path), RUNS_DIR=str(tmp_path / "work"),
                      SEEDS=" ".join(map(str, SEEDS)))
        merged.update(env)
        return subprocess.Popen(["bash", os.path.join(SCRIPTS, "cpu_ablation.sh"), str(out_dir)],
                                env=merged, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)

    start.calls = lambda: (tmp_path / "calls").read_text().splitlines() \
        if (tmp_path / "calls").exists() else []
    return start


def finish(process):
    out, err = process.communicate(timeout=60)
    return process.returncode, out, err


def test_an_existing_output_folder_is_refused(ablation, tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    (out / "1_baseline_resnet18_v1.log").write_text("an earlier run\n")
    code, _, err = finish(ablation(out))
    assert code == 2
    assert err.startswith("cpu_ablation: error: ") and str(out) in err
    assert len(err.strip().splitlines()) == 1
    assert ablation.calls() == []  # nothing trained
    assert (out / "1_baseline_resnet18_v1.log").read_text() == "an earlier run\n"


def test_results_are_published_only_once_every_run_has_finished(ablation, tmp_path):
    out = tmp_path / "results"
    code, _, _ = finish(ablation(out, FAIL_RUN="5_mixup_seed1"))
    assert code != 0
    assert not out.exists() and not (tmp_path / "results.partial").exists()
    trained = [c.split()[0] for c in ablation.calls()]
    assert trained.count("train") == 12  # the teacher, seed 0's rows, seed 1's rows 1-5 (failed)

    code, stdout, err = finish(ablation(out))  # the relaunch finishes (the trainer resumes)
    assert code == 0, err
    published = sorted(os.listdir(out))
    for name in RUNS:
        for suffix in (".log", ".log.jsonl", ".logits.npz"):
            assert name + suffix in published
    for figure in ("fig3a_lr.png", "fig3a_lr_logged.png", "fig3b_curves.png",
                   "ablation_curves.png", "fig4a_gap_theory.png", "fig4b_gap.png"):
        assert figure in published
    # the grouped report reads each row's seeds together, row after row
    assert (out / "report.md").read_text().startswith(
        "report of --group-seeds 1_baseline_resnet18_v1_seed0.log 1_baseline_resnet18_v1_seed1.log "
        "2_resnet18_v1d_seed0.log")
    assert not (tmp_path / "results.partial").exists()
    # each run's log is its own: one line per launch of that run's training
    assert (out / "1_baseline_resnet18_v1_seed1.log").read_text() == \
        "log of 1_baseline_resnet18_v1_seed1\n" * 2
    assert (out / "5_mixup_seed1.log").read_text() == "log of 5_mixup_seed1\n"
    seeds = [c.split("--seed ")[1].split()[0] for c in ablation.calls()
             if c.startswith("train --model resnet18_v1 ")]
    assert seeds == ["0", "1", "0", "1"]  # each launch trains every seed (finished ones resume)

    code, _, err = finish(ablation(out))  # a third launch adds nothing to the published results
    assert code == 2 and "exists" in err


def wait_for(path, seconds=30):
    deadline = time.time() + seconds
    while not path.exists() or not path.read_text().strip():
        assert time.time() < deadline, "%s never appeared" % path
        time.sleep(0.05)
    return int(path.read_text())


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open("/proc/%d/stat" % pid) as f:  # a zombie has ended: only its parent has not reaped it
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def ends(pid, seconds=10):
    deadline = time.time() + seconds
    while alive(pid):
        if time.time() > deadline:
            os.kill(pid, signal.SIGKILL)
            return False
        time.sleep(0.05)
    return True


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_stopping_the_ablation_stops_its_training(ablation, tmp_path, signum):
    process = ablation(tmp_path / "results", SLEEP_RUN="2_resnet18_v1d_seed0")
    training = wait_for(tmp_path / "train.pid")
    os.kill(process.pid, signum)  # the script's process alone, not its group
    code, _, _ = finish(process)
    assert code == -signum  # the script ends by that signal
    assert ends(training), "the training process outlived the script"
    assert not (tmp_path / "results").exists()


# horovodrun's stand-in: records its pid; on TERM it records that, then (STUB_PREEMPT=1) plays
# ranks that checkpointed and exited 75 (rank 0's marker, horovodrun's own status 1), or exits 1
# at once (STUB_EXIT=1), or exits 143 (a signal killed the job without a checkpoint).
HOROVODRUN_STUB = r"""#!/usr/bin/env bash
[ -z "${STUB_EXIT:-}" ] || exit 1
save="$OUT_DIR/table2_resnet50_baseline"
on_term() {
  kill "$sleeper"
  echo TERM > "$STUB_DIR/horovodrun.got"
  if [ -n "${STUB_PREEMPT:-}" ]; then
    echo "stopped by SIGTERM at epoch 0 after batch 3" > "$save/.gluon-tricks.preempted"
    exit 1
  fi
  exit 143
}
trap on_term TERM
echo $$ > "$STUB_DIR/horovodrun.pid"
sleep 60 &
sleeper=$!
wait
"""


def _recipe(tmp_path, **extra):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    executable(bin_dir / "horovodrun", HOROVODRUN_STUB)
    executable(bin_dir / "gluon-tricks", "#!/usr/bin/env bash\nexit 1\n")
    data = tmp_path / "data"
    for split in ("train", "val"):
        (data / split / "class_a").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in ("REC_DIR", "DRY_RUN", "NP", "HOSTS")}
    env.update(PATH="%s:%s" % (bin_dir, env["PATH"]), DATA_DIR=str(data),
               OUT_DIR=str(tmp_path / "out"), STUB_DIR=str(tmp_path), **extra)
    return subprocess.Popen(["bash", os.path.join(SCRIPTS, "table2_resnet50_baseline.sh")],
                            env=env, stderr=subprocess.PIPE, text=True, start_new_session=True)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1])
def test_a_signal_to_a_recipe_reaches_horovodrun_and_a_preemption_exits_75(tmp_path, signum):
    process = _recipe(tmp_path, STUB_PREEMPT="1")
    wait_for(tmp_path / "horovodrun.pid")
    os.kill(process.pid, signum)  # the recipe's process alone, not its group
    _, err = process.communicate(timeout=30)
    assert (tmp_path / "horovodrun.got").read_text() == "TERM\n"
    assert process.returncode == 75, err
    assert "stopped on a signal after a checkpoint (stopped by SIGTERM at epoch 0" in err


def test_a_recipe_killed_without_a_checkpoint_keeps_horovodrun_s_status(tmp_path):
    process = _recipe(tmp_path)
    launcher = wait_for(tmp_path / "horovodrun.pid")
    process.terminate()
    process.communicate(timeout=30)
    assert process.returncode == 143 and ends(launcher)


def test_a_marker_left_by_an_earlier_run_does_not_turn_a_failure_into_75(tmp_path):
    save = tmp_path / "out" / "table2_resnet50_baseline"
    save.mkdir(parents=True)
    (save / ".gluon-tricks.preempted").write_text("stopped by SIGTERM yesterday\n")
    process = _recipe(tmp_path, STUB_EXIT="1")
    process.communicate(timeout=30)
    assert process.returncode == 1


def test_prepare_imagenet_stops_its_packing_with_it(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    executable(bin_dir / "gluon-tricks", '#!/usr/bin/env bash\necho $$ > "%s"\nexec sleep 60\n'
               % (tmp_path / "pack.pid"))
    for split in ("train", "val"):
        (tmp_path / "images" / split / "class_a").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in ("IMAGENET_DIR", "DRY_RUN")}
    env.update(PATH="%s:%s" % (bin_dir, env["PATH"]), IMAGE_DIR=str(tmp_path / "images"),
               REC_DIR=str(tmp_path / "rec"))
    process = subprocess.Popen(["bash", os.path.join(SCRIPTS, "prepare_imagenet.sh")], env=env,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    packing = wait_for(tmp_path / "pack.pid")
    process.terminate()
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGTERM
    assert ends(packing), "gluon-tricks pack outlived prepare_imagenet.sh"
    assert not (tmp_path / "rec" / ".train_packed").exists()
