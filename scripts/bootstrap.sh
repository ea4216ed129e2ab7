#!/usr/bin/env bash
# Sets up everything kbx needs on a Debian bookworm machine (as root), builds it, then runs one job:
#   bootstrap.sh demo    the main job on the built-in veth test bed
#   bootstrap.sh test    the whole test suite
#   bootstrap.sh build   set-up and build only
# Idempotent; quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

job=${1:-build}
case "$job" in demo|test|build) ;; *) echo "usage: $0 demo|test|build" >&2; exit 2 ;; esac

if [ "$(id -u)" -ne 0 ]; then
  echo "bootstrap.sh must run as root: it installs packages, creates network namespaces and loads XDP programs" >&2
  exit 1
fi

apt_packages=(
  clang llvm make gcc pkg-config libbpf-dev libxdp-dev libelf-dev zlib1g-dev
  iproute2 ethtool bpftool tshark
  libngtcp2-dev libngtcp2-crypto-gnutls-dev libgnutls28-dev ngtcp2-server ngtcp2-client libquickfix-dev g++
  libclang-rt-14-dev
  librsvg2-bin libhdrhistogram-java default-jre-headless
)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ! command -v node >/dev/null; then missing+=(nodejs npm); fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "bootstrap: node $(node --version) is too old; installing node 20 from the npm registry" >&2
  npm install -g --silent node@20 >/dev/null
  hash -r
fi
if ! command -v pnpm >/dev/null; then
  echo "bootstrap: installing pnpm" >&2
  npm install -g --silent pnpm@10 >/dev/null
  hash -r
fi

# Set-up output goes to stderr: stdout is the job's alone (the main job's is JSON lines).
pnpm install --frozen-lockfile --reporter=silent >&2
pnpm run --silent build >&2
# the libFuzzer harnesses of `pnpm fuzz` (clang with ASan/UBSan: libclang-rt-14-dev)
make -s -C native fuzz >&2
# tap compiles its plugin set (we drop its ts-node plugin for tsx) on the first run, too late for that run.
npx --no-install tap build >/dev/null

case "$job" in
  demo) exec bash scripts/demo.sh ;;
  test) exec bash scripts/test.sh ;;
  build) echo "bootstrap: built" >&2 ;;
esac
