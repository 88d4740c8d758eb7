#!/usr/bin/env bash
# clang-format over the C and C++ sources of bpf/ and native/src/, with the given
# options: -i to format, --dry-run --Werror to check. Version 14 (scripts/setup.sh
# installs it): other versions format some constructs differently.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(find bpf native/src -path bpf/build -prune -o -type f \( -name '*.c' -o -name '*.h' -o -name '*.cc' \) -print | sort)
exec clang-format-14 "$@" "${files[@]}"
