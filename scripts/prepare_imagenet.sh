#!/usr/bin/env bash
# Prepares ImageNet (ILSVRC2012) for the recipes: class folders, then RecordIO files written by
#   gluon-tricks pack SRC_DIR OUT_PREFIX --resize 480 --quality 95 --workers N
# as REC_DIR/train.{rec,idx} and REC_DIR/val.{rec,idx}, the files the recipes read with REC_DIR.
# Nothing is downloaded: the files come from image-net.org (an account is needed).
#
# Input, one of:
#   IMAGENET_DIR  a folder with the official files: ILSVRC2012_img_train.tar (a tar per class
#                 inside), ILSVRC2012_img_val.tar (50,000 JPEGs, flat) and, for the validation
#                 labels, ILSVRC2012_devkit_t12.tar.gz; or instead of the devkit, VAL_LABELS=FILE
#                 with lines "ILSVRC2012_val_00000001.JPEG n01751748" (Kaggle's LOC_val_solution.csv
#                 works too)
#   IMAGE_DIR     existing image folders IMAGE_DIR/train/<class>/ and IMAGE_DIR/val/<class>/
# Output:
#   REC_DIR       where the .rec/.idx files go (required)
#   WORK_DIR      where IMAGENET_DIR's tar files are unpacked (default REC_DIR/images); kept
#                 afterwards: it is a valid DATA_DIR for the recipes, delete it to free ~145 GB
# Options: WORKERS (pack processes; default all cores), RESIZE (shorter side, default 480),
#   QUALITY (JPEG quality, default 95), PYTHON (reads the devkit, needs scipy; default python3),
#   DRY_RUN=1 (print the commands, one a line, change nothing).
# Rerunning after an interruption continues: finished classes and steps are skipped.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

SCRIPT_NAME=prepare_imagenet
# shellcheck source=lib/common.sh
source "$here/lib/common.sh"

# run CMD...: run it (stopped with the script: common.sh's run_child), or print it (one
# shell-quoted line) when dry.
run() {
  if [ "$dry" = 1 ]; then
    shell_join "$@"
  else
    run_child "$@"
  fi
}
say() { if [ "$dry" = 1 ]; then echo "# $*"; else echo "==> prepare_imagenet: $*" >&2; fi; }

case ${DRY_RUN:-0} in
  0 | "") dry=0 ;;
  1) dry=1 ;;
  *) die "DRY_RUN must be 1 (print the commands) or 0/unset (run them), not '$DRY_RUN'" ;;
esac
workers=${WORKERS:-$(nproc 2>/dev/null || echo 4)}
resize=${RESIZE:-480}
quality=${QUALITY:-95}
for pair in "WORKERS=$workers" "RESIZE=$resize" "QUALITY=$quality"; do
  [[ ${pair#*=} =~ ^[1-9][0-9]*$ ]] \
    || die "${pair%%=*} must be a positive whole number, not '${pair#*=}'"
done
python=${PYTHON:-python3}

if [ -z "${IMAGENET_DIR:-}" ] && [ -z "${IMAGE_DIR:-}" ]; then
  die "set IMAGENET_DIR (ILSVRC2012_img_train.tar, ILSVRC2012_img_val.tar, devkit) or IMAGE_DIR" \
    "(train/ and val/ class folders), and REC_DIR"
fi
if [ -n "${REC_DIR:-}" ]; then
  rec_dir=$(abspath "$REC_DIR")
elif [ "$dry" = 1 ]; then
  rec_dir="<REC_DIR>"
else
  die "set REC_DIR: the folder for train.rec/.idx and val.rec/.idx"
fi
if [ -n "${IMAGENET_DIR:-}" ] && [ -n "${IMAGE_DIR:-}" ]; then
  die "set IMAGENET_DIR (the official tar files) or IMAGE_DIR (class folders), not both"
fi

if [ -n "${IMAGE_DIR:-}" ]; then
  train_src=$(abspath "$IMAGE_DIR")/train
  val_src=$(abspath "$IMAGE_DIR")/val
  if [ "$dry" = 0 ]; then
    [ -d "$train_src" ] && [ -d "$val_src" ] \
      || die "IMAGE_DIR=$IMAGE_DIR needs train/ and val/ folders (one folder per class inside)"
  fi
else
  imagenet=$(abspath "$IMAGENET_DIR")
  train_tar=$imagenet/ILSVRC2012_img_train.tar
  val_tar=$imagenet/ILSVRC2012_img_val.tar
  if [ -n "${VAL_LABELS:-}" ]; then
    labels=$(abspath "$VAL_LABELS")
  elif [ -f "$imagenet/ILSVRC2012_devkit_t12.tar" ]; then
    labels=$imagenet/ILSVRC2012_devkit_t12.tar
  else
    labels=$imagenet/ILSVRC2012_devkit_t12.tar.gz
  fi
  if [ "$dry" = 0 ]; then
    for f in "$train_tar" "$val_tar"; do
      [ -f "$f" ] || die "no such file: $f (IMAGENET_DIR holds the official ILSVRC2012 tar files)"
    done
    [ -f "$labels" ] || die "no validation labels: put ILSVRC2012_devkit_t12.tar.gz in" \
      "IMAGENET_DIR or set VAL_LABELS=FILE (lines 'ILSVRC2012_val_00000001.JPEG n01751748')"
  fi
  work=$(abspath "${WORK_DIR:-$rec_dir/images}")
  train_src=$work/train
  val_src=$work/val
fi
if [ "$dry" = 0 ]; then
  command -v gluon-tricks >/dev/null \
    || die "gluon-tricks not found: activate the environment of scripts/install_env.sh"
fi

# 1-2. The official tar files into class folders (IMAGENET_DIR only).
if [ -n "${IMAGENET_DIR:-}" ]; then
  if [ -e "$work/.train_done" ]; then
    say "train: $train_src is complete, skipped"
  else
    say "train: each class tar C.tar inside $train_tar into $train_src/C/"
    if [ "$dry" = 0 ]; then
      mkdir -p "$train_src"
      classes=$(tar -tf "$train_tar" | grep '\.tar$') || die "$train_tar holds no class tar files"
      total=$(wc -l <<<"$classes")
      count=0
      while IFS= read -r member; do
        class=$train_src/${member%.tar}
        count=$((count + 1))
        if [ ! -d "$class" ]; then  # else done by an earlier run
          # Unpacked beside its final name, renamed when whole: no half class survives a crash.
          rm -rf "$class.partial" && mkdir "$class.partial"
          tar -xOf "$train_tar" "$member" | tar -xf - -C "$class.partial"
          mv "$class.partial" "$class"
        fi
        if ((count % 100 == 0)); then say "train: $count of $total classes"; fi
      done <<<"$classes"
      touch "$work/.train_done"
    fi
  fi
  if [ -e "$work/.val_done" ]; then
    say "val: $val_src is complete, skipped"
  else
    say "val: $val_tar into $val_src, sorted into class folders by $labels"
    [ "$dry" = 1 ] || mkdir -p "$val_src"
    run tar -xf "$val_tar" -C "$val_src"
    run "$python" "$here/lib/imagenet_val.py" "$labels" "$val_src" "$train_src"
    [ "$dry" = 1 ] || touch "$work/.val_done"
  fi
fi

# 3. Class folders into RecordIO, the training set then the validation set.
[ "$dry" = 1 ] || mkdir -p "$rec_dir"
for split in train val; do
  src=$train_src
  [ "$split" = train ] || src=$val_src
  if [ -e "$rec_dir/.${split}_packed" ]; then
    say "$split: $rec_dir/$split.rec is complete, skipped (delete it and .${split}_packed to redo)"
    continue
  fi
  run gluon-tricks pack "$src" "$rec_dir/$split" --resize "$resize" --quality "$quality" \
    --workers "$workers"
  [ "$dry" = 1 ] || touch "$rec_dir/.${split}_packed"
done
say "done: REC_DIR=$rec_dir holds train.rec/.idx and val.rec/.idx"
