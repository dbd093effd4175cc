#!/usr/bin/env bash
# The first hour on a GPU machine: does the GPU path of gluon-tricks work, and how fast is it?
#
#   scripts/gpu_check.sh                 # all checks; a pass/fail table; JSON in $OUT
#   DRY_RUN=1 NGPUS=8 scripts/gpu_check.sh   # print the commands only
#
# Checks: `bench train` in FP32, FP16 + static loss scale, FP16 + dynamic loss scale and --amp,
# on 1 GPU and on all GPUs (one process with --num-gpus N, and horovodrun -np N); a 200-step
# FP16-vs-FP32 loss comparison on synthetic data; `horovodrun --check-build`.
# Settings (environment): NGPUS (default: nvidia-smi's count), MODEL (resnet50_v1d), BATCH
# (per GPU, 64), STEPS (timed steps, 20), OUT (gpu_check.json), GLUON_TRICKS (the command),
# PYTHON (for the table), LOSS_TOLERANCE (relative, 0.1).
set -u

DRY_RUN=${DRY_RUN:-0}
MODEL=${MODEL:-resnet50_v1d}
BATCH=${BATCH:-64}
STEPS=${STEPS:-20}
OUT=${OUT:-gpu_check.json}
GT=${GLUON_TRICKS:-gluon-tricks}
PYTHON=${PYTHON:-python3}
LOSS_TOLERANCE=${LOSS_TOLERANCE:-0.1}
if [ -z "${NGPUS:-}" ]; then
    NGPUS=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
fi
NGPUS=${NGPUS:-0}
if [ "$DRY_RUN" != 1 ] && [ "$NGPUS" -lt 1 ]; then
    echo "gpu_check.sh: no GPU found (nvidia-smi -L lists none); set NGPUS or use DRY_RUN=1" >&2
    exit 2
fi
[ "$NGPUS" -ge 1 ] || NGPUS=1

NAMES=()
COMMANDS=()
add() { NAMES+=("$1"); COMMANDS+=("$2"); }

BENCH="$GT bench train --model $MODEL --batch-size $BATCH --steps $STEPS --json"
PRECISIONS=("fp32|--dtype float32"
            "fp16-static|--dtype float16 --loss-scale 1024"
            "fp16-dynamic|--dtype float16 --loss-scale dynamic"
            "amp|--amp")
GPU_COUNTS=(1)
[ "$NGPUS" -gt 1 ] && GPU_COUNTS+=("$NGPUS")
for precision in "${PRECISIONS[@]}"; do
    name=${precision%%|*}
    flags=${precision#*|}
    for n in "${GPU_COUNTS[@]}"; do
        add "$name ${n}gpu" "$BENCH --num-gpus $n $flags"
    done
    if [ "$NGPUS" -gt 1 ]; then
        add "$name horovod-${NGPUS}" \
            "horovodrun -np $NGPUS -H localhost:$NGPUS $BENCH --num-gpus 1 $flags"
    fi
done
CURVE="$GT bench train --model resnet18_v1b --input-size 64 --batch-size 32 --num-gpus 1 --steps 200 --loss-curve --json"
add "loss fp32 200 steps" "$CURVE --dtype float32"
add "loss fp16 200 steps" "$CURVE --dtype float16 --loss-scale dynamic"
add "horovod build" "horovodrun --check-build"

if [ "$DRY_RUN" = 1 ]; then
    for i in "${!NAMES[@]}"; do
        printf '# %s\n%s\n' "${NAMES[$i]}" "${COMMANDS[$i]}"
    done
    exit 0
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
for i in "${!NAMES[@]}"; do
    echo "== ${NAMES[$i]}: ${COMMANDS[$i]}" >&2
    bash -c "${COMMANDS[$i]}" >"$WORK/$i.out" 2>"$WORK/$i.err"
    echo $? >"$WORK/$i.status"
    tail -n 3 "$WORK/$i.err" >&2
done

# One table and one JSON file: each check's status and the JSON its command printed.
printf '%s\n' "${NAMES[@]}" >"$WORK/names"
printf '%s\n' "${COMMANDS[@]}" >"$WORK/commands"
"$PYTHON" - "$WORK" "${#NAMES[@]}" "$OUT" "$LOSS_TOLERANCE" <<'EOF'
import json, sys
work, count, out, tolerance = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
names = open(work + "/names").read().splitlines()
commands = open(work + "/commands").read().splitlines()
checks = []
for i in range(count):
    status = int(open("%s/%d.status" % (work, i)).read())
    text = open("%s/%d.out" % (work, i)).read()
    result = None
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            result = json.loads(line)
            break
    checks.append({"name": names[i], "command": commands[i], "status": status,
                   "passed": status == 0, "result": result,
                   "error": open("%s/%d.err" % (work, i)).read().strip().splitlines()[-1:]})
curves = {c["name"]: c["result"] for c in checks if c["name"].startswith("loss ") and c["result"]}
fp32, fp16 = curves.get("loss fp32 200 steps"), curves.get("loss fp16 200 steps")
compare = {"name": "loss fp16 vs fp32", "command": "(the two loss checks)", "status": None,
           "passed": bool(fp32 and fp16 and fp16["loss_end"] < fp16["loss_start"] and
                          abs(fp16["loss_end"] - fp32["loss_end"]) <=
                          tolerance * max(fp32["loss_start"], 1e-12)),
           "result": {"fp32": fp32, "fp16": fp16, "tolerance": tolerance}, "error": []}
checks.append(compare)
print("%-28s %-6s %s" % ("check", "result", "numbers"))
for c in checks:
    r = c["result"] or {}
    numbers = ", ".join("%s=%.4g" % (k, v) for k, v in sorted(r.items())
                        if isinstance(v, (int, float)))
    print("%-28s %-6s %s" % (c["name"], "pass" if c["passed"] else "FAIL",
                             numbers or " ".join(c["error"])))
with open(out, "w") as f:
    json.dump(checks, f, indent=1)
print("written: %s" % out)
sys.exit(0 if all(c["passed"] for c in checks) else 1)
EOF
