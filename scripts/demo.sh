#!/usr/bin/env bash
# The main job on the built-in test bed (topology `quic`: veth0 in the root namespace ↔ veth1 in ns1):
# xdp-load attaches the steering program to veth0 and pins it; an AF_XDP socket on veth0 receives
# through the pinned maps what an AF_XDP socket on veth1 sends; JSON lines on stdout; then tear down.
set -euo pipefail
cd "$(dirname "$0")/.."

count=${KBX_DEMO_COUNT:-200000}
rate=${KBX_DEMO_RATE:-100k}
xdp_load=(node bin/xdp-load.js)
tsx=(node --import tsx)
rxlog=$(mktemp)

bash scripts/setup_net.sh up quic >&2
cleanup() {
  [ -n "${rx_pid:-}" ] && kill "$rx_pid" 2>/dev/null || true
  "${xdp_load[@]}" unload veth0 >/dev/null 2>&1 || true
  bash scripts/setup_net.sh down quic >&2 || true
  rm -f "$rxlog"
}
trap cleanup EXIT

"${xdp_load[@]}" load veth0 bpf/build/xdp_xsk_redirect.o --mode native
"${xdp_load[@]}" status veth0 --json

"${tsx[@]}" examples/xsk-demo.ts rx --iface veth0 --pinned --count "$count" --duration 20 >"$rxlog" &
rx_pid=$!
for _ in $(seq 100); do grep -q '"event":"start"' "$rxlog" && break; sleep 0.1; done

bash scripts/setup_net.sh exec ns1 "${tsx[@]}" examples/xsk-demo.ts tx --iface veth1 --dst 10.0.0.10 --count "$count" --rate "$rate"
wait "$rx_pid"
rx_pid=
cat "$rxlog"
"${xdp_load[@]}" unload veth0
