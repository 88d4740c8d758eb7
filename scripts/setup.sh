#!/usr/bin/env bash
# Prepares this machine to build, test and run xlb; safe to run again.
# Debian/Ubuntu as root: installs missing packages, mounts bpffs, installs npm
# dependencies and builds the BPF objects, the native addon and the TypeScript.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(clang clang-format-14 llvm libbpf-dev libelf-dev zlib1g-dev bpftool iproute2 ethtool xdp-tools make g++ pkg-config procps util-linux bird2 etcd-server etcd-client vagrant openssh-server chromium prometheus tcpdump)

say() { printf 'setup: %s\n' "$*" >&2; }
fail() { say "$*"; exit 1; }

command -v node >/dev/null || fail "Node.js 20 or newer is missing (https://nodejs.org or your distribution's nodejs package)"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || fail "Node.js $(node --version) is too old: xlb needs 20 or newer"

missing=()
if command -v dpkg-query >/dev/null; then
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
else
  for tool in clang llc bpftool ip ethtool make g++ pkg-config; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  [ -e /usr/include/bpf/libbpf.h ] || missing+=("libbpf headers")
  [ ${#missing[@]} -eq 0 ] || fail "not a Debian/Ubuntu system; install these yourself: ${missing[*]}"
fi

if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || fail "missing packages: ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}"
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # bird2, etcd-server and openssh-server are for the labs and tests, which start
  # their own instances, and prometheus for its promtool: keep the packages from
  # starting system-wide services.
  guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && guard=1
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ -z "$guard" ] || rm -f /usr/sbin/policy-rc.d
fi

if [ "$(id -u)" -eq 0 ]; then
  mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
else
  say "not root: skipping the bpffs mount; loading XDP programs needs root"
fi
[ -e /sys/kernel/btf/vmlinux ] || say "warning: no /sys/kernel/btf/vmlinux; the kernel lacks BTF"

# npm dependencies: reinstall only when the lock file changed.
if [ ! -e node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

make -s -C bpf
if [ ! -e native/build/Makefile ] || [ native/binding.gyp -nt native/build/Makefile ]; then
  (cd native && ../node_modules/.bin/node-gyp configure --loglevel=warn >/dev/null)
fi
(cd native && ../node_modules/.bin/node-gyp build --loglevel=warn >/dev/null)
node_modules/.bin/tsc -p tsconfig.json
say "ready"
