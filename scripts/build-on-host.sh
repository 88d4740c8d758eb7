#!/bin/sh
# npm's install step for xlb (a packed release, or a checkout's npm ci): builds the
# BPF objects and the native addon against this host's headers and libbpf. The
# addon is built here, not by @xlb/native's own script: npm does not run the install
# scripts of bundled dependencies under its allowScripts policy.
set -eu
cd "$(dirname "$0")/.."
missing=""
for tool in clang make g++ python3; do
  command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
[ -e /usr/include/bpf/libbpf.h ] || missing="$missing libbpf-dev"
if [ -n "$missing" ]; then
  echo "xlb: cannot build the BPF objects and the native addon on this host: missing$missing." >&2
  echo "xlb: on Debian/Ubuntu, as root: apt-get install$missing (scripts/setup.sh in the xlb sources installs everything xlb needs)." >&2
  exit 1
fi
make -s -C bpf build/xlb_balancer.bpf.o build/xlb_trace.bpf.o build/xlb_decap.bpf.o
cd node_modules/@xlb/native
node-gyp rebuild --loglevel=warn >/dev/null
