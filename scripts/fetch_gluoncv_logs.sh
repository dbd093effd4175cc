#!/usr/bin/env bash
# Download GluonCV's published ImageNet training logs (and their commands) from their raw URLs,
# each verified against the SHA-256 recorded in logs/gluoncv/SHA256SUMS (every file of the
# folder dmlc/web-data gluoncv/logs/classification/imagenet/ at the pinned commit; Apache-2.0,
# see logs/gluoncv/README.md).
#
#   scripts/fetch_gluoncv_logs.sh                 # the 23 logs + commands kept in logs/gluoncv/
#   scripts/fetch_gluoncv_logs.sh resnext50_32x4d mobilenetv2_1.0.log   # others, by name
#
# A NAME without extension stands for NAME.log and NAME.sh (those the folder has). A file is
# written only once its checksum is right; a mismatch, an unknown name or a failed download ends
# with one line on stderr and a non-zero exit.
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
FOLDER=gluoncv/logs/classification/imagenet
SUMS="$REPO/logs/gluoncv/SHA256SUMS"
BASE_URL=${BASE_URL:-https://raw.githubusercontent.com/dmlc/web-data/$COMMIT/$FOLDER}
OUT_DIR=${OUT_DIR:-$REPO/logs/gluoncv}

die() {
  echo "$NAME: error: $*" >&2
  exit 2
}

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

# The files the arguments name: all kept here by default; NAME alone is NAME.log and NAME.sh.
files=()
if [ $# -eq 0 ]; then
  while read -r _ file; do
    [ -e "$REPO/logs/gluoncv/$file" ] && files+=("$file")
  done <"$SUMS"
else
  for arg in "$@"; do
    [[ $arg =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] \
      || die "'$arg' is not a file name of the folder (letters, digits, '.', '_', '-')"
    if [ -n "$(recorded_sum "$arg")" ]; then
      files+=("$arg")
      continue
    fi
    found=0
    for ext in log sh; do
      if [ -n "$(recorded_sum "$arg.$ext")" ]; then
        files+=("$arg.$ext")
        found=1
      fi
    done
    [ "$found" = 1 ] || die "'$arg' is not in $FOLDER at commit ${COMMIT:0:8}" \
      "(logs/gluoncv/SHA256SUMS lists its files)"
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
  sum=$(sha256sum "$partial" | cut -d' ' -f1)
  [ "$sum" = "$(recorded_sum "$file")" ] \
    || die "$file: SHA-256 $sum is not the recorded $(recorded_sum "$file") (a changed or" \
      "corrupt download; nothing written)"
  mv -f "$partial" "$OUT_DIR/$file"
  partial=""
  echo "$OUT_DIR/$file"
done
