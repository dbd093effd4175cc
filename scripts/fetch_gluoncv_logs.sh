#!/usr/bin/env bash
# Download GluonCV's published training logs (and their commands) from their raw URLs, each
# verified against the checksum recorded here for the pinned commit of dmlc/web-data (Apache-2.0,
# see logs/gluoncv/README.md and logs/gluoncv/{detection,segmentation}/README.md).
#
#   scripts/fetch_gluoncv_logs.sh                 # the 23 ImageNet logs + commands in logs/gluoncv/
#   scripts/fetch_gluoncv_logs.sh resnext50_32x4d mobilenetv2_1.0.log   # others, by name
#   scripts/fetch_gluoncv_logs.sh --task detection              # those kept in logs/gluoncv/detection/
#   scripts/fetch_gluoncv_logs.sh --task segmentation fcn_resnet50_ade  # FCN ResNet-50 on ADE20K
#
# --task picks the folder: classification (gluoncv/logs/classification/imagenet/, the default),
# detection (gluoncv/logs/detection/) or segmentation (gluoncv/logs/segmentation/). A NAME without
# extension stands for NAME.log, NAME_train.log and NAME.sh (those the folder has). A file is
# checked against its SHA-256 in the folder's SHA256SUMS, else against its git blob id in
# GIT_BLOBS (the folder's tree at the commit, for files whose content is not stored here), and is
# written only once it matches; a mismatch, an unknown name or a failed download ends with one line
# on stderr and a non-zero exit.
#
# Environment:
#   OUT_DIR    where the files go (default: logs/gluoncv in the repository)
#   BASE_URL   the folder's URL (default: raw.githubusercontent.com at the pinned commit; a
#              file:// URL reads a local copy)
#   DRY_RUN=1  print the URL and target of each file (one per line) and download nothing
set -euo pipefail

NAME=fetch_gluoncv_logs
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
COMMIT=0818ee5787b3824f1bca2f4bd98ef6abe689f7db

die() {
  echo "$NAME: error: $*" >&2
  exit 2
}

task=classification
if [ "${1:-}" = --task ]; then
  [ $# -ge 2 ] || die "--task needs a value: classification, detection or segmentation"
  task=$2
  shift 2
fi
case $task in
  classification) FOLDER=gluoncv/logs/classification/imagenet KEPT="$REPO/logs/gluoncv" ;;
  detection | segmentation) FOLDER=gluoncv/logs/$task KEPT="$REPO/logs/gluoncv/$task" ;;
  *) die "--task must be classification, detection or segmentation, not '$task'" ;;
esac
SUMS="$KEPT/SHA256SUMS"
BLOBS="$KEPT/GIT_BLOBS"
BASE_URL=${BASE_URL:-https://raw.githubusercontent.com/dmlc/web-data/$COMMIT/$FOLDER}
OUT_DIR=${OUT_DIR:-$KEPT}

case ${DRY_RUN:-0} in
  0 | "") dry=0 ;;
  1) dry=1 ;;
  *) die "DRY_RUN must be 1 (print what would be fetched) or 0/unset, not '$DRY_RUN'" ;;
esac
[ -r "$SUMS" ] || die "no checksum list at $SUMS"

# The recorded SHA-256 of a file of the folder, or nothing.
recorded_sum() {
  awk -v name="$1" '$2 == name { print $1 }' "$SUMS"
}

# The recorded git blob id (SHA-1 of "blob SIZE\0" + content) of a file of the folder, or nothing.
recorded_blob() {
  [ -r "$BLOBS" ] || return 0
  awk -v name="$1" '$2 == name { print $1 }' "$BLOBS"
}

# The git blob id of a file's content (what `git hash-object FILE` prints).
blob_id() {
  { printf 'blob %d\0' "$(wc -c <"$1")"; cat "$1"; } | sha1sum | cut -d' ' -f1
}

listed() {
  [ -n "$(recorded_sum "$1")" ] || [ -n "$(recorded_blob "$1")" ]
}

# The files the arguments name: all kept here by default; NAME alone is NAME.log, NAME_train.log
# and NAME.sh.
files=()
if [ $# -eq 0 ]; then
  while read -r _ file; do
    [ -e "$KEPT/$file" ] && files+=("$file")
  done <"$SUMS"
else
  for arg in "$@"; do
    [[ $arg =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] \
      || die "'$arg' is not a file name of the folder (letters, digits, '.', '_', '-')"
    if listed "$arg"; then
      files+=("$arg")
      continue
    fi
    found=0
    for suffix in .log _train.log .sh; do
      if listed "$arg$suffix"; then
        files+=("$arg$suffix")
        found=1
      fi
    done
    [ "$found" = 1 ] || die "'$arg' is not in $FOLDER at commit ${COMMIT:0:8}" \
      "(${SUMS#"$REPO"/} lists its files)"
  done
fi

if [ "$dry" = 1 ]; then
  for file in "${files[@]}"; do
    printf '%s %s\n' "$BASE_URL/$file" "$OUT_DIR/$file"
  done
  exit 0
fi

command -v curl >/dev/null || die "curl not found (apt-get install curl)"
mkdir -p "$OUT_DIR" || die "cannot create $OUT_DIR (OUT_DIR)"
partial=""
trap '[ -z "$partial" ] || rm -f "$partial"' EXIT
for file in "${files[@]}"; do
  partial="$OUT_DIR/.$file.part"
  curl -sSfL --retry 2 -o "$partial" "$BASE_URL/$file" 2>/dev/null \
    || die "cannot download $BASE_URL/$file"
  expected=$(recorded_sum "$file")
  if [ -n "$expected" ]; then
    sum=$(sha256sum "$partial" | cut -d' ' -f1)
    [ "$sum" = "$expected" ] \
      || die "$file: SHA-256 $sum is not the recorded $expected (a changed or corrupt" \
        "download; nothing written)"
  else
    expected=$(recorded_blob "$file")
    sum=$(blob_id "$partial")
    [ "$sum" = "$expected" ] \
      || die "$file: git blob id $sum is not the recorded $expected (a changed or corrupt" \
        "download; nothing written)"
  fi
  mv -f "$partial" "$OUT_DIR/$file"
  partial=""
  echo "$OUT_DIR/$file"
done
