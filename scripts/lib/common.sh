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
