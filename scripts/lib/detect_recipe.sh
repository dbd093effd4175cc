# shellcheck shell=bash
# The shared body of the paper's Table 8 recipes (scripts/table8_faster_rcnn_*.sh): Faster R-CNN
# on Pascal VOC (trainval 2007+2012, test 2007) with GluonCV's published recipe
# (logs/gluoncv/detection/faster_rcnn_resnet50_v1b_voc.sh: 4 images a batch, one a GPU, lr 0.001,
# x0.1 at epochs 14 and 20, 20 epochs; `detect train`'s defaults) on a backbone trained by one of
# this kit's classification recipes. A recipe states its row and calls
#   detect_recipe NETWORK BACKBONE_RECIPE BACKBONE_EPOCHS FLAGS... "$@"
# which builds
#   horovodrun -np $NP -H $HOSTS [$HOROVODRUN_ARGS] gluon-tricks detect train --horovod
#     --num-gpus 1 --batch-size 4/NP --network NETWORK --dataset voc --dataset-root $VOC_DIR
#     --backbone-params PARAMS --backbone-recipe BACKBONE_RECIPE
#     --save-prefix $OUT_DIR/<recipe>/ [-j $WORKERS] FLAGS... "$@"
# and runs it as lib/recipe.sh runs a classification recipe (a TERM reaches the ranks, which
# checkpoint; exit status 75 when they stopped on a signal; relaunching resumes), or prints it
# when DRY_RUN=1. BACKBONE_RECIPE "-": no recipe of this kit trains the backbone (BACKBONE_PARAMS
# is then required, and no --backbone-recipe is passed).
#
# Environment (scripts/README.md):
#   NP, HOSTS        ranks and hosts (default 4 and localhost:4: GluonCV's 4 GPUs)
#   VOC_DIR          the VOCdevkit folder (VOC2007, VOC2012), or a folder holding it
#   OUT_DIR          one folder per recipe (default: runs/ in the repository), where the
#                    classification recipes left their checkpoints too
#   BACKBONE_PARAMS  the backbone's weights (default: the last checkpoint of
#                    scripts/BACKBONE_RECIPE.sh under OUT_DIR, NETWORK-BACKBONE_EPOCHS.params)
#   WORKERS          data-loading processes per rank (-j; default: gluon-tricks' own, 4)
#   HOROVODRUN_ARGS  more horovodrun options, split on spaces
#   DRY_RUN=1        print the resolved command (one shell-quoted line) instead of running it

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  echo "detect_recipe.sh is sourced by the scripts/table8_*.sh recipes; run one of those" >&2
  exit 2
fi

RECIPE_NAME=$(basename "$0" .sh)
RECIPE_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SCRIPT_NAME=$RECIPE_NAME
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

OUT_DIR=$(abspath "${OUT_DIR:-$RECIPE_REPO/runs}")
DETECT_TOTAL_BATCH=4  # GluonCV's published VOC run: 4 GPUs, one image each

# detect_recipe NETWORK BACKBONE_RECIPE BACKBONE_EPOCHS FLAGS...: see the top.
detect_recipe() {
  local network=$1 backbone_recipe=$2 backbone_epochs=$3
  shift 3
  local np=${NP:-4} hosts=${HOSTS:-localhost:4} dry entry slots=0 params voc
  [[ $np =~ ^[1-9][0-9]*$ ]] \
    || die "NP must be a positive whole number (ranks, one GPU each), not '$np'"
  [[ $hosts =~ ^[^,:[:space:]]+(:[1-9][0-9]*)?(,[^,:[:space:]]+(:[1-9][0-9]*)?)*$ ]] \
    || die "HOSTS must look like localhost:4 or host1:4,host2:4 (host:slots), not '$hosts'"
  local entries
  IFS=, read -ra entries <<<"$hosts"
  for entry in "${entries[@]}"; do
    if [[ $entry == *:* ]]; then slots=$((slots + ${entry##*:})); else slots=$((slots + 1)); fi
  done
  ((np <= slots)) || die "NP=$np ranks but HOSTS=$hosts has $slots slots"
  ((DETECT_TOTAL_BATCH % np == 0)) \
    || die "NP=$np does not divide GluonCV's batch of $DETECT_TOTAL_BATCH (use NP=1, 2 or 4)"
  case ${DRY_RUN:-0} in
    0 | "") dry=0 ;;
    1) dry=1 ;;
    *) die "DRY_RUN must be 1 (print the command) or 0/unset (run it), not '$DRY_RUN'" ;;
  esac
  if [ -n "${WORKERS:-}" ] && ! [[ $WORKERS =~ ^[0-9]+$ ]]; then
    die "WORKERS must be a whole number (data-loading processes per rank), not '$WORKERS'"
  fi
  if [ -n "${VOC_DIR:-}" ]; then
    voc=$(abspath "$VOC_DIR")
    [ "$dry" = 1 ] || [ -d "$voc" ] || die "VOC_DIR=$VOC_DIR is not a folder"
  else
    [ "$dry" = 1 ] || die "no data: set VOC_DIR (the VOCdevkit folder, or a folder holding it)"
    voc="<VOC_DIR>"
  fi
  if [ -n "${BACKBONE_PARAMS:-}" ]; then
    params=$(abspath "$BACKBONE_PARAMS")
  elif [ "$backbone_recipe" = - ] && [ "$dry" = 1 ]; then
    params="<BACKBONE_PARAMS>"
  elif [ "$backbone_recipe" = - ]; then
    die "no recipe of this kit trains the $network backbone of this row: set BACKBONE_PARAMS"
  else
    params=$(printf '%s/%s/%s-%04d.params' "$OUT_DIR" "$backbone_recipe" "$network" \
      "$backbone_epochs")
  fi
  if [ "$dry" = 0 ] && [ ! -f "$params" ]; then
    die "no backbone weights at $params: run scripts/$backbone_recipe.sh first or set" \
      "BACKBONE_PARAMS"
  fi

  local save="$OUT_DIR/$RECIPE_NAME" launcher_args
  read -ra launcher_args <<<"${HOROVODRUN_ARGS:-}"
  local cmd=(horovodrun -np "$np" -H "$hosts" ${launcher_args[@]+"${launcher_args[@]}"}
    gluon-tricks detect train --horovod --num-gpus 1
    --batch-size $((DETECT_TOTAL_BATCH / np)) --network "$network" --dataset voc
    --dataset-root "$voc" --backbone-params "$params")
  if [ "$backbone_recipe" != - ]; then cmd+=(--backbone-recipe "$backbone_recipe"); fi
  cmd+=(--save-prefix "$save/")
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
  run_preemptible "$save/.gluon-tricks.preempted" "${cmd[@]}"
}
