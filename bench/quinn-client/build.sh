#!/usr/bin/env bash
# Builds bench/quinn-client (the quinn baseline of `pnpm bench quic`) with Debian's Rust toolchain
# (cargo, rustc 1.63) against Debian's packaged crates (librust-quinn-dev 0.9 and what it needs),
# offline: .cargo/config.toml replaces crates.io by /usr/share/cargo/registry, as Debian's packaging
# does. Installs the packages when missing (root; apt-get). Prints the binary's path on stdout.
#   bash bench/quinn-client/build.sh [--test]   (--test: run the crate's unit tests too)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
packages=(cargo rustc librust-quinn-dev librust-rustls-dev librust-ring-dev librust-tokio-dev)

fail() { echo "quinn-client build: $*" >&2; exit 1; }

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  [[ $(id -u) == 0 ]] || fail "missing Debian packages (${missing[*]}): run as root to install them"
  command -v apt-get >/dev/null || fail "missing Debian packages (${missing[*]}) and no apt-get"
  echo "quinn-client build: installing ${missing[*]}" >&2
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2; then
    apt-get update >&2 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2 ||
      fail "apt-get could not install ${missing[*]}"
  fi
fi

# Debian's cargo, never a rustup toolchain from PATH; a CARGO_HOME of our own so no user config applies
cargo=/usr/bin/cargo
[[ -x $cargo ]] || fail "$cargo not found (Debian package cargo)"
export CARGO_HOME="$here/target/cargo-home"
export CARGO_TARGET_DIR="$here/target"
export RUSTC=/usr/bin/rustc
cd "$here"
# no committed Cargo.lock: it is resolved against whatever versions bookworm ships today
"$cargo" build --release --offline --quiet >&2 || fail "cargo build failed (see above)"
if [[ ${1:-} == --test ]]; then
  "$cargo" test --release --offline --quiet >&2 || fail "cargo test failed (see above)"
fi
echo "$here/target/release/quinn-client"
