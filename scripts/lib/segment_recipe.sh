# shellcheck shell=bash
# The shared body of the Table 9 recipes (scripts/table9_fcn_*.sh): FCN on ADE20K with the
# backbone a Table 5/6 recipe trained. A recipe states its row and calls
#   segment_recipe BACKBONE_RECIPE MODEL EPOCHS FLAGS... "$@"
# which builds
#   gluon-tricks segment train --model fcn --backbone MODEL --backbone-params PARAMS
#     [--backbone-recipe BACKBONE_RECIPE] --dataset ade20k --dataset-root $ADE_ROOT
#     --checkname <recipe> --save-dir $OUT_DIR/<recipe> --ngpus $NGPUS
#     [--workers $WORKERS] FLAGS... "$@"
# PARAMS: $OUT_DIR/BACKBONE_RECIPE/MODEL-EPOCHS.params (that recipe's last checkpoint) unless
# BACKBONE_PARAMS names a file; BACKBONE_RECIPE "-": no recipe of this kit trains the backbone
# (BACKBONE_PARAMS is then required, and no --backbone-recipe is passed). One process on one
# GPU by default: GluonCV's published run normalises each batch of 16 over its 4 GPUs together
# (synchronised BatchNorm), as one device with the 16 images does; segment train does not
# synchronise BatchNorm over devices. The command runs as the recipe's child, or is printed with
# DRY_RUN=1; arguments given to a recipe come last and win.
#
# Environment:
#   ADE_ROOT         the folder holding ADEChallengeData2016 (default ~/.mxnet/datasets/ade)
#   OUT_DIR          one folder per recipe (default: runs/ in the repository); relaunching a
#                    recipe resumes from its newest checkpoint there
#   BACKBONE_PARAMS  the classifier's .params (default: the backbone recipe's last checkpoint)
#   WORKERS          data-loading processes (--workers; default: gluon-tricks' own, 16)
#   NGPUS            GPUs the batch is split over (--ngpus; default 1); with more, each GPU
#                    normalises only its own share of the batch (not GluonCV's synchronised BN)
#   DRY_RUN=1        print the resolved command (one shell-quoted line) instead of running it

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  echo "segment_recipe.sh is sourced by the scripts/table9_fcn_*.sh recipes; run one of those" >&2
  exit 2
fi

RECIPE_NAME=$(basename "$0" .sh)
RECIPE_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SCRIPT_NAME=$RECIPE_NAME
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

OUT_DIR=$(abspath "${OUT_DIR:-$RECIPE_REPO/runs}")

# segment_recipe BACKBONE_RECIPE MODEL EPOCHS FLAGS...: run (or print) this recipe's command.
segment_recipe() {
  local backbone_recipe=$1 model=$2 epochs=$3 dry params
  shift 3
  case ${DRY_RUN:-0} in
    0 | "") dry=0 ;;
    1) dry=1 ;;
    *) die "DRY_RUN must be 1 (print the command) or 0/unset (run it), not '$DRY_RUN'" ;;
  esac
  if [ -n "${WORKERS:-}" ] && ! [[ $WORKERS =~ ^[0-9]+$ ]]; then
    die "WORKERS must be a whole number (data-loading processes), not '$WORKERS'"
  fi
  local ngpus=${NGPUS:-1}
  [[ $ngpus =~ ^[1-9][0-9]*$ ]] || die "NGPUS must be a positive whole number, not '$ngpus'"
  if [ -n "${BACKBONE_PARAMS:-}" ]; then
    params=$(abspath "$BACKBONE_PARAMS")
  elif [ "$backbone_recipe" = - ]; then
    [ "$dry" = 1 ] || die "no recipe here trains this row's backbone: set BACKBONE_PARAMS to" \
      "a $model classifier's .params"
    params="<BACKBONE_PARAMS>"
  else
    params="$OUT_DIR/$backbone_recipe/$model-$(printf %04d "$epochs").params"
  fi
  local root
  root=$(abspath "${ADE_ROOT:-$HOME/.mxnet/datasets/ade}")
  if [ "$dry" = 0 ]; then
    [ -f "$params" ] || die "no backbone weights at $params: train scripts/$backbone_recipe.sh" \
      "first or set BACKBONE_PARAMS"
    [ -d "$root/ADEChallengeData2016" ] || die "no ADEChallengeData2016 in $root: set ADE_ROOT" \
      "to the folder holding it"
  fi
  local save="$OUT_DIR/$RECIPE_NAME"
  local cmd=(gluon-tricks segment train --model fcn --backbone "$model" --backbone-params "$params")
  if [ "$backbone_recipe" != - ]; then cmd+=(--backbone-recipe "$backbone_recipe"); fi
  cmd+=(--dataset ade20k --dataset-root "$root" --checkname "$RECIPE_NAME" --save-dir "$save"
        --ngpus "$ngpus")
  if [ -n "${WORKERS:-}" ]; then cmd+=(--workers "$WORKERS"); fi
  cmd+=("$@")
  if [ "$dry" = 1 ]; then
    shell_join "${cmd[@]}"
    return 0
  fi
  command -v gluon-tricks >/dev/null \
    || die "gluon-tricks not found: activate the environment of scripts/install_env.sh"
  echo "==> $RECIPE_NAME: $(shell_join "${cmd[@]}")" >&2
  run_child "${cmd[@]}"
}
