#!/usr/bin/env bash
# The paper's ablation (Tables 5-6) in miniature, on the embedded demo data and a 2-core CPU:
# baseline ResNet-A -> + ResNet-D -> + cosine -> + label smoothing -> + mixup -> + distillation
# from a larger teacher (trained first with cosine + label smoothing), each row adding one trick.
# Every row runs once per seed (SEEDS, default "0 1 2"; one teacher, seed 0, serves them all), so
# the report gives each row's mean and standard deviation and says which changes exceed the noise.
# It shows the machinery and the direction of each effect on a toy set, not ImageNet's numbers.
#   scripts/cpu_ablation.sh [OUT_DIR]     (default runs/cpu_ablation/results)
# Every run trains in RUNS_DIR/<run>/ (default runs/cpu_ablation/work): its checkpoints and its log
# side by side, so that relaunching the script resumes each run from its newest checkpoint and
# continues its own log. OUT_DIR gets the logs, logits, report and figures once every run has
# finished (made in OUT_DIR.partial, then renamed); an OUT_DIR that exists is refused, so a rerun
# never adds to earlier results (the committed ones are logs/cpu_ablation/).
# Stopping the script (Ctrl-C, kill, timeout) stops the training or evaluation it is running.
# Environment: EPOCHS (default 10), SEEDS (default "0 1 2"), RUNS_DIR, PYTHON (default
# .venv/bin/python).
set -euo pipefail
SCRIPT_NAME=cpu_ablation
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
cd "$(dirname "$0")/.."
out=$(abspath "${1:-runs/cpu_ablation/results}")
runs=$(abspath "${RUNS_DIR:-runs/cpu_ablation/work}")
epochs=${EPOCHS:-10}
read -r -a seeds <<< "${SEEDS:-0 1 2}"
python=${PYTHON:-.venv/bin/python}
case $python in */*) python=$(abspath "$python") ;; esac
command -v "$python" >/dev/null || die "$python not found; run 'make venv' first"
[[ $epochs =~ ^[1-9][0-9]*$ ]] || die "EPOCHS must be a positive whole number, not '$epochs'"
[ "${#seeds[@]}" -gt 0 ] || die "SEEDS must name at least one seed"
for seed in "${seeds[@]}"; do
  [[ $seed =~ ^[0-9]+$ ]] || die "SEEDS must be whole numbers, not '$seed'"
done
[ ! -e "$out" ] || die "$out exists: name a new folder (scripts/cpu_ablation.sh OUT_DIR)" \
  "or remove it; its results are not added to"
mkdir -p "$runs"

# Shared by every row: the demo data at 32x32, batch 64, lr 0.1, 2 warmup epochs, zero gamma and
# no bias decay (the "efficient" base of Tables 5-6).
common=(--input-size 32 --batch-size 64 --lr 0.1 --num-epochs "$epochs" --warmup-epochs 2
        --last-gamma --no-wd -j 2 --log-interval 10 --save-frequency 4
        --lr-decay-epoch "$((epochs / 2)),$((epochs * 3 / 4))")

# newest FOLDER MODEL: the checkpoint of MODEL with the highest epoch in FOLDER.
newest() {
  local files=("$1/$2"-*.params)
  [ -e "${files[0]}" ] || die "no checkpoint of $2 in $1"
  printf '%s\n' "${files[-1]}"  # <model>-<4-digit epoch>.params: the glob sorts them by epoch
}

names=()
train() {  # NAME MODEL FLAGS... --seed S: train (or resume) the run, then save its logits
  local name=$1 model=$2
  shift 2
  names+=("$name")
  echo "== $name"
  run_child "$python" -m gluon_tricks train --model "$model" "${common[@]}" "$@" \
    --save-dir "$runs/$name" --logging-file "$runs/$name/$name.log" > /dev/null
  local params
  params=$(newest "$runs/$name" "$model")
  run_child "$python" -m gluon_tricks eval --model "$model" --input-size 32 -j 2 \
    --params "$params" --save-logits "$runs/$name/$name.logits.npz"
}

train teacher_resnet34_v1d resnet34_v1d --lr-mode cosine --label-smoothing --seed 0
teacher=$(newest "$runs/teacher_resnet34_v1d" resnet34_v1d)
for seed in "${seeds[@]}"; do
  s=_seed$seed
  train "1_baseline_resnet18_v1$s" resnet18_v1 --seed "$seed"
  train "2_resnet18_v1d$s"         resnet18_v1d --seed "$seed"
  train "3_cosine$s"               resnet18_v1d --lr-mode cosine --seed "$seed"
  train "4_label_smoothing$s"      resnet18_v1d --lr-mode cosine --label-smoothing --seed "$seed"
  train "5_mixup$s"                resnet18_v1d --lr-mode cosine --label-smoothing --mixup \
        --mixup-off-epoch 2 --seed "$seed"
  train "6_distillation$s"         resnet18_v1d --lr-mode cosine --label-smoothing \
        --teacher resnet34_v1d --teacher-params "$teacher" --temperature 20 --hard-weight 0.5 \
        --seed "$seed"
done

# Every run has finished: the results, made beside OUT_DIR, then published under its name.
partial=$out.partial
rm -rf "$partial"
mkdir -p "$partial"
for name in "${names[@]}"; do
  cp "$runs/$name/$name".{log,log.jsonl,logits.npz} "$partial/"
done
cd "$partial"
gt=("$python" -m gluon_tricks)
rows=()  # row by row, each row's seeds together, as the grouped report reads them
for row in 1 2 3 4 5 6; do
  for seed in "${seeds[@]}"; do rows+=("$row"_*_seed"$seed".log); done
done
first=_seed${seeds[0]}  # the lr and gap figures draw the first seed's runs
run_child "${gt[@]}" report --group-seeds "${rows[@]}" > report.md
run_child "${gt[@]}" report --group-seeds --json "${rows[@]}" > report_seeds.json
run_child "${gt[@]}" report --json "${rows[@]}" teacher_resnet34_v1d.log > report.json
run_child "${gt[@]}" plot lr -o fig3a_lr.png
run_child "${gt[@]}" plot lr --log "2_resnet18_v1d$first.log" "3_cosine$first.log" \
  -o fig3a_lr_logged.png
# the curves: each row's mean over its seeds, and their min-max band
run_child "${gt[@]}" plot curves --group-seeds [23]_*_seed*.log -o fig3b_curves.png
run_child "${gt[@]}" plot curves --group-seeds "${rows[@]}" -o ablation_curves.png
logits=("3_cosine$first.logits.npz" "4_label_smoothing$first.logits.npz")
run_child "${gt[@]}" plot gap-theory "${logits[@]}" -o fig4a_gap_theory.png  # their K and eps
run_child "${gt[@]}" plot gap "${logits[@]}" -o fig4b_gap.png
cd - > /dev/null
mv "$partial" "$out"
echo "== results in $out"
cat "$out/report.md"
