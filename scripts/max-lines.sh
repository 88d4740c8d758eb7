#!/usr/bin/env bash
# One concern per file: no source file under control/, bpf/ or native/src/ grows past
# 400 lines.
set -euo pipefail
cd "$(dirname "$0")/.."
limit=400
status=0
while IFS= read -r file; do
  lines=$(wc -l < "$file")
  if [ "$lines" -gt "$limit" ]; then
    echo "$file: $lines lines (at most $limit: split it by concern)" >&2
    status=1
  fi
done < <(find control bpf native/src -path bpf/build -prune -o -type f \( -name '*.ts' -o -name '*.c' -o -name '*.h' -o -name '*.cc' \) -print)
exit $status
