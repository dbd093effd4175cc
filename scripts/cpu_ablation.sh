#!/usr/bin/env bash
# The paper's ablation (Tables 5-6) in miniature, on the embedded demo data and a 2-core CPU:
# baseline ResNet-A -> + ResNet-D -> + cosine -> + label smoothing -> + mixup -> + distillation
# from a larger teacher (trained first with cosine + label smoothing), each row adding one trick.
# It shows the machinery and the direction of each effect on a toy set, not ImageNet's numbers.
#   scripts/cpu_ablation.sh [OUT_DIR]     (default logs/cpu_ablation; checkpoints go to runs/)
# Relaunching resumes every run from its newest checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-logs/cpu_ablation}
runs=${RUNS_DIR:-runs/cpu_ablation}
epochs=${EPOCHS:-10}
python=${PYTHON:-.venv/bin/python}
[ -x "$python" ] || { echo "cpu_ablation: $python not found; run 'make venv' first" >&2; exit 2; }
case $epochs in ''|*[!0-9]*) echo "cpu_ablation: EPOCHS must be a whole number, not '$epochs'" >&2; exit 2;; esac
mkdir -p "$out" "$runs"

# Shared by every row: the demo data at 32x32, batch 64, lr 0.1, 2 warmup epochs, zero gamma and
# no bias decay (the "efficient" base of Tables 5-6).
common=(--input-size 32 --batch-size 64 --lr 0.1 --num-epochs "$epochs" --warmup-epochs 2
        --last-gamma --no-wd -j 2 --log-interval 10 --save-frequency 4 --seed 0
        --lr-decay-epoch "$((epochs / 2)),$((epochs * 3 / 4))")

train() {  # NAME MODEL FLAGS...
  local name=$1 model=$2; shift 2
  echo "== $name"
  "$python" -m gluon_tricks train --model "$model" "${common[@]}" "$@" \
    --save-dir "$runs/$name" --logging-file "$out/$name.log" > /dev/null
  "$python" -m gluon_tricks eval --model "$model" --input-size 32 -j 2 \
    --params "$(ls "$runs/$name/$model"-*.params | sort | tail -n 1)" \
    --save-logits "$out/$name.logits.npz"
}

train teacher_resnet34_v1d   resnet34_v1d --lr-mode cosine --label-smoothing
train 1_baseline_resnet18_v1 resnet18_v1
train 2_resnet18_v1d         resnet18_v1d
train 3_cosine               resnet18_v1d --lr-mode cosine
train 4_label_smoothing      resnet18_v1d --lr-mode cosine --label-smoothing
train 5_mixup                resnet18_v1d --lr-mode cosine --label-smoothing --mixup --mixup-off-epoch 2
teacher=$(ls "$runs/teacher_resnet34_v1d"/resnet34_v1d-*.params | sort | tail -n 1)
train 6_distillation         resnet18_v1d --lr-mode cosine --label-smoothing \
      --teacher resnet34_v1d --teacher-params "$teacher" --temperature 20 --hard-weight 0.5

rows=("$out"/[1-6]_*.log)
"$python" -m gluon_tricks report "${rows[@]}" "$out/teacher_resnet34_v1d.log" > "$out/report.md"
"$python" -m gluon_tricks report --json "${rows[@]}" "$out/teacher_resnet34_v1d.log" > "$out/report.json"
"$python" -m gluon_tricks plot lr -o "$out/fig3a_lr.png"
"$python" -m gluon_tricks plot lr --log "$out/2_resnet18_v1d.log" "$out/3_cosine.log" -o "$out/fig3a_lr_logged.png"
"$python" -m gluon_tricks plot curves "$out/2_resnet18_v1d.log" "$out/3_cosine.log" -o "$out/fig3b_curves.png"
"$python" -m gluon_tricks plot curves "${rows[@]}" -o "$out/ablation_curves.png"
"$python" -m gluon_tricks plot gap-theory -o "$out/fig4a_gap_theory.png"
"$python" -m gluon_tricks plot gap "$out/3_cosine.logits.npz" "$out/4_label_smoothing.logits.npz" \
  --label "ResNet-18-D, cosine" --label "ResNet-18-D, cosine + label smoothing" -o "$out/fig4b_gap.png"
cat "$out/report.md"
