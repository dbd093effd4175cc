# shellcheck shell=bash
# Shell helpers shared by the scripts (lib/recipe.sh, prepare_imagenet.sh, cpu_ablation.sh,
# docker_check.sh). The sourcing script sets SCRIPT_NAME, the prefix of its error line.

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  echo "common.sh is sourced by the scripts in scripts/; run one of those" >&2
  exit 2
fi

# die MESSAGE...: one line on stderr, "<script>: error: MESSAGE", and exit status 2.
die() {
  echo "${SCRIPT_NAME:-$(basename "$0" .sh)}: error: $*" >&2
  exit 2
}

# abspath PATH: PATH made absolute against the current directory (not resolved).
abspath() {
  case $1 in
    /*) printf '%s\n' "$1" ;;
    *) printf '%s\n' "$PWD/$1" ;;
  esac
}

# shell_quote WORD: one word for the shell, quoted only when needed (Python's shlex.quote's rule).
shell_quote() {
  if [[ $1 =~ ^[A-Za-z0-9_@%+=:,./-]+$ ]]; then
    printf '%s' "$1"
  else
    printf "'%s'" "${1//\'/\'\\\'\'}"
  fi
}

# shell_join WORD...: the words as one shell-quoted line.
shell_join() {
  local word sep=""
  for word in "$@"; do
    printf '%s' "$sep"
    shell_quote "$word"
    sep=" "
  done
  printf '\n'
}

# run_child CMD...: run CMD as a child and wait for it; CMD's exit status is returned. A TERM,
# INT or HUP sent to the script (kill, timeout, Ctrl-C, a closed terminal) stops CMD with TERM
# first, then the script with that signal: nothing keeps running after the script has ended.
# (A background child ignores SIGINT in a script, hence TERM for all three.)
_RUN_CHILD_PID=""
_run_child_stop() {
  if [ -n "$_RUN_CHILD_PID" ]; then
    kill -TERM "$_RUN_CHILD_PID" 2>/dev/null || true
    wait "$_RUN_CHILD_PID" 2>/dev/null || true
  fi
  trap - "$1"
  kill -s "$1" "$$"
}
run_child() {
  local signal status=0
  for signal in TERM INT HUP; do
    # shellcheck disable=SC2064  # the signal's name is fixed now, on purpose
    trap "_run_child_stop $signal" "$signal"
  done
  "$@" &
  _RUN_CHILD_PID=$!
  wait "$_RUN_CHILD_PID" || status=$?
  _RUN_CHILD_PID=""
  return "$status"
}

# run_preemptible MARKER CMD...: run CMD (horovodrun) as a child and return its exit status, or
# 75 (EX_TEMPFAIL: "requeue me") when the run wrote MARKER, i.e. its ranks stopped on a signal
# after a checkpoint (horovodrun itself exits 1 whenever a rank exits non-zero, 75 included).
# A TERM, INT, HUP or USR1 sent to the script is passed on to CMD as TERM (horovodrun then stops
# its ranks with TERM, and they checkpoint), and the script waits for CMD to end.
_PREEMPTIBLE_PID=""
_preemptible_forward() {
  if [ -n "$_PREEMPTIBLE_PID" ]; then kill -TERM "$_PREEMPTIBLE_PID" 2>/dev/null || true; fi
}
run_preemptible() {
  local marker=$1 status signal
  shift
  rm -f "$marker"
  for signal in TERM INT HUP USR1; do trap _preemptible_forward "$signal"; done
  "$@" &
  _PREEMPTIBLE_PID=$!
  while :; do
    status=0
    wait "$_PREEMPTIBLE_PID" || status=$?
    # above 128: a trapped signal cut the wait short, or CMD died of a signal
    if [ "$status" -le 128 ] || ! kill -0 "$_PREEMPTIBLE_PID" 2>/dev/null; then break; fi
  done
  _PREEMPTIBLE_PID=""
  for signal in TERM INT HUP USR1; do trap - "$signal"; done
  if [ "$status" -ne 0 ] && [ -f "$marker" ]; then
    echo "${SCRIPT_NAME:-$(basename "$0" .sh)}: the ranks stopped on a signal after a" \
      "checkpoint ($(head -c 300 "$marker")); exit status 75: run the same command again to" \
      "continue" >&2
    return 75
  fi
  return "$status"
}
