# shellcheck shell=bash
# The shared body of the paper's recipes (scripts/table*.sh). A recipe states its paper row and
# calls `recipe TOTAL_BATCH FLAGS... "$@"`; this builds
#   horovodrun -np $NP -H $HOSTS [$HOROVODRUN_ARGS] gluon-tricks train --num-gpus 1
#     --batch-size TOTAL_BATCH/NP <data flags> --save-dir $OUT_DIR/<recipe>
#     --logging-file $OUT_DIR/<recipe>/<recipe>.log [-j $WORKERS] FLAGS... "$@"
# and runs it as the recipe's child (a TERM, INT, HUP or USR1 to the recipe, e.g. from `timeout`
# or a scheduler, reaches horovodrun as TERM, which stops its ranks; they checkpoint), or prints
# it when DRY_RUN=1. The recipe exits with horovodrun's status, or 75 when the ranks stopped on
# a signal after a checkpoint (a requeueing wrapper reruns the same command to continue). The total
# batch stays the paper's whatever NP is (one rank drives one GPU), so the linear scaling rule and
# the recipe's --lr keep their meaning.
# Arguments given to a recipe come last and win (argparse keeps the last value).
#
# Environment (scripts/README.md):
#   NP, HOSTS        ranks and hosts (default 8 and localhost:8), e.g. NP=16 HOSTS=host1:8,host2:8
#   REC_DIR          train.rec/.idx and val.rec/.idx (written by scripts/prepare_imagenet.sh), or
#   REC_TRAIN REC_TRAIN_IDX REC_VAL REC_VAL_IDX   the four RecordIO files one by one, or
#   DATA_DIR         image folders DATA_DIR/train/<class>/ and DATA_DIR/val/<class>/
#   OUT_DIR          one folder per recipe: checkpoints and logs (default: runs/ in the repository);
#                    relaunching a recipe resumes from its newest checkpoint there
#   TEACHER_PARAMS   distillation teacher weights (default: the last checkpoint of
#                    scripts/table6_teacher_resnet152_v1d.sh under OUT_DIR)
#   WORKERS          data-loading processes per rank (-j; default: gluon-tricks' own, 4)
#   HOROVODRUN_ARGS  more horovodrun options, split on spaces, e.g. "-p 12345" (ssh port)
#   DRY_RUN=1        print the resolved command (one shell-quoted line) instead of running it

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  echo "recipe.sh is sourced by the scripts/table*.sh recipes; run one of those" >&2
  exit 2
fi

RECIPE_NAME=$(basename "$0" .sh)
RECIPE_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SCRIPT_NAME=$RECIPE_NAME
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

OUT_DIR=$(abspath "${OUT_DIR:-$RECIPE_REPO/runs}")
# The teacher recipe's checkpoint after its 120th (last) epoch: <model>-<epoch>.params.
TEACHER_PARAMS=$(abspath \
  "${TEACHER_PARAMS:-$OUT_DIR/table6_teacher_resnet152_v1d/resnet152_v1d-0120.params}")

# The data flags of `gluon-tricks train` from DATA_DIR, REC_DIR or REC_TRAIN..REC_VAL_IDX, into
# the array RECIPE_DATA. Files are checked unless dry: a dry run without data shows placeholders.
recipe_data_flags() {
  local dry=$1 var flag path i
  local rec_vars=(REC_TRAIN REC_TRAIN_IDX REC_VAL REC_VAL_IDX)
  local rec_files=(train.rec train.idx val.rec val.idx)
  local rec_flags=(--rec-train --rec-train-idx --rec-val --rec-val-idx)
  local any_rec=${REC_DIR:-}
  for var in "${rec_vars[@]}"; do any_rec+=${!var:-}; done
  RECIPE_DATA=()
  if [ -n "${DATA_DIR:-}" ]; then
    [ -z "$any_rec" ] \
      || die "set DATA_DIR (image folders) or REC_DIR/REC_* (RecordIO), not both"
    path=$(abspath "$DATA_DIR")
    if [ "$dry" = 0 ]; then
      [ -d "$path/train" ] && [ -d "$path/val" ] \
        || die "DATA_DIR=$DATA_DIR needs train/ and val/ folders (a folder per class inside)"
    fi
    RECIPE_DATA=(--data-dir "$path")
    return
  fi
  if [ -z "$any_rec" ]; then
    [ "$dry" = 1 ] || die "no data: set REC_DIR (train.rec/.idx and val.rec/.idx, see" \
      "scripts/prepare_imagenet.sh) or DATA_DIR (train/ and val/ image folders)"
  fi
  local paths=()
  for i in 0 1 2 3; do
    var=${rec_vars[$i]}
    if [ -n "${!var:-}" ]; then
      paths+=("$(abspath "${!var}")")
    elif [ -n "${REC_DIR:-}" ]; then
      paths+=("$(abspath "$REC_DIR")/${rec_files[$i]}")
    elif [ "$dry" = 1 ]; then
      paths+=("<REC_DIR>/${rec_files[$i]}")
    else
      die "$var is not set (set REC_DIR for all four RecordIO files, or each REC_* variable)"
    fi
  done
  RECIPE_DATA=(--use-rec)
  for i in 0 1 2 3; do
    flag=${rec_flags[$i]}
    path=${paths[$i]}
    if [ "$dry" = 0 ] && [ ! -f "$path" ]; then
      die "no such file: $path ($flag; scripts/prepare_imagenet.sh writes it)"
    fi
    RECIPE_DATA+=("$flag" "$path")
  done
}

# recipe TOTAL_BATCH FLAGS...: run (or print) this recipe's training command; see the top.
recipe() {
  local total=$1
  shift
  local np=${NP:-8} hosts=${HOSTS:-localhost:8} dry entry slots=0 arg prev=""
  [[ $np =~ ^[1-9][0-9]*$ ]] \
    || die "NP must be a positive whole number (ranks, one GPU each), not '$np'"
  [[ $hosts =~ ^[^,:[:space:]]+(:[1-9][0-9]*)?(,[^,:[:space:]]+(:[1-9][0-9]*)?)*$ ]] \
    || die "HOSTS must look like localhost:8 or host1:8,host2:8 (host:slots), not '$hosts'"
  local entries
  IFS=, read -ra entries <<<"$hosts"
  for entry in "${entries[@]}"; do
    if [[ $entry == *:* ]]; then slots=$((slots + ${entry##*:})); else slots=$((slots + 1)); fi
  done
  ((np <= slots)) || die "NP=$np ranks but HOSTS=$hosts has $slots slots (e.g. NP=16" \
    "HOSTS=host1:8,host2:8)"
  ((total % np == 0)) || die "NP=$np does not divide the paper's total batch of $total" \
    "(use NP=1, 2, 4, 8, 16...)"
  case ${DRY_RUN:-0} in
    0 | "") dry=0 ;;
    1) dry=1 ;;
    *) die "DRY_RUN must be 1 (print the command) or 0/unset (run it), not '$DRY_RUN'" ;;
  esac
  if [ -n "${WORKERS:-}" ] && ! [[ $WORKERS =~ ^[0-9]+$ ]]; then
    die "WORKERS must be a whole number (data-loading processes per rank), not '$WORKERS'"
  fi
  recipe_data_flags "$dry"

  # A distillation recipe needs its teacher's weights before 8 ranks start and fail together.
  if [ "$dry" = 0 ]; then
    for arg in "$@"; do
      if [ "$prev" = --teacher-params ] && [ ! -f "$arg" ]; then
        die "no teacher weights at $arg: train the teacher first" \
          "(scripts/table6_teacher_resnet152_v1d.sh) or set TEACHER_PARAMS"
      fi
      prev=$arg
    done
  fi

  local save="$OUT_DIR/$RECIPE_NAME" launcher_args
  read -ra launcher_args <<<"${HOROVODRUN_ARGS:-}"
  local cmd=(horovodrun -np "$np" -H "$hosts" ${launcher_args[@]+"${launcher_args[@]}"}
    gluon-tricks train --num-gpus 1 --batch-size $((total / np)) "${RECIPE_DATA[@]}"
    --save-dir "$save" --logging-file "$save/$RECIPE_NAME.log")
  if [ -n "${WORKERS:-}" ]; then cmd+=(-j "$WORKERS"); fi
  cmd+=("$@")

  if [ "$dry" = 1 ]; then
    shell_join "${cmd[@]}"
    return 0
  fi
  command -v horovodrun >/dev/null \
    || die "horovodrun not found: activate the environment of scripts/install_env.sh" \
      "(. .venv/bin/activate) or use the Docker image"
  command -v gluon-tricks >/dev/null \
    || die "gluon-tricks not found: activate the environment of scripts/install_env.sh"
  mkdir -p "$save" || die "cannot create $save (OUT_DIR)"
  echo "==> $RECIPE_NAME: $(shell_join "${cmd[@]}")" >&2
  # gluon-tricks' rank 0 writes this marker when the ranks stop on a signal after a checkpoint
  run_preemptible "$save/.gluon-tricks.preempted" "${cmd[@]}"
}
