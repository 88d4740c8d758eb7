#!/usr/bin/env bash
# Record files (test/map-layouts.txt: what each versioned map name stands for) only
# grow: no commit in their git history, and no uncommitted edit, changes or removes a
# line. A name's record must never change, since pins are adopted by name.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! git rev-parse --git-dir > /dev/null 2>&1; then
  echo "append-only: not a git checkout, so the history of $* is not checked" >&2
  exit 0
fi
if [ "$(git rev-parse --is-shallow-repository)" = true ]; then
  echo "append-only: a shallow clone holds only part of the history of $*: checking that part" >&2
fi
status=0
for file in "$@"; do
  # --text and no drivers: a .gitattributes that marks the file binary or filters its diff hides nothing.
  removed=$({
    git log -p --text --no-textconv --no-ext-diff --diff-merges=separate --format= -- "$file"
    git diff --text --no-textconv --no-ext-diff HEAD -- "$file"
  } | grep -E '^-' | grep -vE '^--- (a/|/dev/null)' || true)
  if [ -n "$removed" ]; then
    printf '%s: a line was changed or removed (add a new version instead):\n%s\n' "$file" "$removed" >&2
    status=1
  fi
done
exit $status
