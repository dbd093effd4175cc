"""scripts/reproduce_numbers.sh names the commands behind every number the docs quote: each
section's page and heading exist, each command parses with today's flags, and the tables
committed beside the logs are what the committed code makes of those logs."""
import os
import re
import shlex
import subprocess
import sys

import pytest

from gluon_tricks.cli import build_parser
from gluon_tricks.figures import reference

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "reproduce_numbers.sh")


def _run_script(*args, **env):
    return subprocess.run(["bash", SCRIPT, *args], capture_output=True, text=True,
                          env=dict(os.environ, **env), cwd=ROOT, timeout=60)


def test_every_section_names_a_page_and_heading_that_exist():
    listing = _run_script("--list")
    assert listing.returncode == 0, listing.stderr
    sections = [line.split(":", 1) for line in listing.stdout.splitlines()]
    assert [name for name, _ in sections] == ["demo", "ablation", "finetune", "probe", "twin",
                                               "detection", "segmentation", "bench",
                                               "reference"]
    for name, where in sections:
        quoted = re.findall(r'(\S+\.md) "([^"]+)"', where)
        assert quoted, "section %s names no page and heading" % name
        for page, heading in quoted:
            with open(os.path.join(ROOT, page)) as f:
                headings = [line for line in f if line.startswith("#")]
            assert any(heading in line for line in headings), (name, page, heading)


def test_every_command_parses_with_todays_flags(tmp_path):
    dry = _run_script(DRY_RUN="1", OUT_DIR=str(tmp_path), GLUONCV_SCRIPT="/gcv/train_imagenet.py",
                      DIGITS_CSV="/skl/digits.csv.gz",
                      GLUONCV_DETECTION_SCRIPT="/gcv/train_faster_rcnn.py",
                      GLUONCV_SEGMENTATION_SCRIPT="/gcv/segmentation/train.py")
    assert dry.returncode == 0, dry.stderr
    commands = [shlex.split(line) for line in dry.stdout.splitlines()
                if line and not line.startswith("#")]
    ours = [c[c.index("gluon_tricks") + 1:] for c in commands if "gluon_tricks" in c]
    scripts = [word for c in commands for word in c if word.startswith("scripts/")]
    assert len(ours) >= 9 and len(scripts) >= 5
    for argv in ours:
        build_parser(only=argv[0]).parse_args(argv)  # SystemExit (a failure) on a stale flag
    for path in scripts:
        assert os.path.isfile(os.path.join(ROOT, path)), path
    assert any("--gluoncv-script" in c for c in commands)
    assert any("sklearn-digits" in c for c in commands)
    assert any("scripts/detection_twin.py" in c for c in commands)
    assert any("scripts/segmentation_twin.py" in c for c in commands)


def test_unknown_section_and_existing_results_are_refused(tmp_path):
    refused = _run_script("tables", OUT_DIR=str(tmp_path))
    assert refused.returncode == 2
    assert refused.stderr.strip().startswith("reproduce_numbers: error: unknown section 'tables'")
    (tmp_path / "reference").mkdir()
    (tmp_path / "reference" / "kept.txt").write_text("earlier")
    refused = _run_script("reference", OUT_DIR=str(tmp_path))
    assert refused.returncode == 2 and "exists" in refused.stderr
    assert (tmp_path / "reference" / "kept.txt").read_text() == "earlier"


def _report(*args, cwd=ROOT):
    done = subprocess.run([sys.executable, "-m", "gluon_tricks", "report", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_committed_ablation_table_is_what_the_code_makes_of_its_logs():
    folder = os.path.join(ROOT, "logs", "cpu_ablation")
    rows = [name for row in range(1, 7) for seed in range(3)
            for name in sorted(os.listdir(folder))
            if re.fullmatch(r"%d_.*_seed%d\.log" % (row, seed), name)]
    assert len(rows) == 18
    with open(os.path.join(folder, "report.md")) as f:
        assert _report("--group-seeds", *rows, cwd=folder) == f.read()


def test_committed_finetune_table_is_what_the_code_makes_of_its_logs():
    runs = ("scratch", "finetune", "finetune_frozen", "pretrain_first_half")
    logs = ["logs/finetune_demo/%s.log" % name for name in runs]
    with open(os.path.join(ROOT, "logs", "finetune_demo", "report.md")) as f:
        assert _report(*logs) == f.read()


@pytest.mark.filterwarnings("ignore")
def test_committed_gluoncv_tables_are_what_the_code_makes_of_its_logs():
    folder = os.path.join(ROOT, "logs", "gluoncv")
    with open(os.path.join(folder, reference.TABLES_FILE)) as f:
        assert reference.tables_markdown(reference.load_runs([folder])) == f.read()
