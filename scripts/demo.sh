#!/usr/bin/env bash
# The main job on the built-in test bed, JSON lines on stdout, every bed torn down after:
# 1. xdp-load pins the steering program on veth0; an AF_XDP socket there receives through the pinned maps
#    what an AF_XDP socket on veth1 (namespace ns1) sends;
# 2. ab-arbitrate on vethA_dst/vethB_dst while ab-feed sends an impaired A/B feed from namespace feed;
# 3. quic-flood (AF_XDP, then kernel socket) against quic-sink in ns1;
# 4. fix-tcp against the FIX acceptor in namespace exch.
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
  for topology in quic ab fix; do bash scripts/setup_net.sh down "$topology" >/dev/null 2>&1 || true; done
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
bash scripts/setup_net.sh down quic >&2

# ab-arbitrate on both lines of the `ab` bed while ab-feed sends an impaired A/B feed from namespace feed.
bash scripts/setup_net.sh up ab >&2
ablog=$(mktemp)
node bin/ab-arbitrate.js vethA_dst vethB_dst --duration 5 --interval 2 >"$ablog" &
for _ in $(seq 100); do grep -q '"event":"start"' "$ablog" && break; sleep 0.1; done
bash scripts/setup_net.sh exec feed node bin/ab-feed.js vethA_src vethB_src --count 20000 --rate 10000 \
  --loss-a 0.02 --loss-b 0.02 --gap 0.001 --delay-b 50 --seed 7
wait
cat "$ablog"
rm -f "$ablog"
bash scripts/setup_net.sh down ab >&2

# quic-flood over AF_XDP (and over a kernel UDP socket, for comparison) against quic-sink in ns1.
bash scripts/setup_net.sh up quic >&2
sinklog=$(mktemp)
bash scripts/setup_net.sh exec ns1 node bin/quic-sink.js --listen 10.0.0.11:8004 --interval 1 >"$sinklog" &
for _ in $(seq 100); do grep -q '"event":"start"' "$sinklog" && break; sleep 0.1; done
node bin/quic-flood.js --iface veth0 --io xdp --duration 3 --interval 1
node bin/quic-flood.js --iface veth0 --io socket --duration 2 --interval 1
ip netns pids ns1 | xargs -r kill -INT
wait
cat "$sinklog"
rm -f "$sinklog"
bash scripts/setup_net.sh down quic >&2

# fix-tcp (userspace TCP over AF_XDP, then kernel TCP) against the FIX acceptor in namespace exch.
bash scripts/setup_net.sh up fix >&2
acclog=$(mktemp)
bash scripts/setup_net.sh exec exch node packages/fix/dist/bin-fix-acceptor.js --listen 10.0.3.2:9878 >"$acclog" &
for _ in $(seq 100); do grep -q '"event":"start"' "$acclog" && break; sleep 0.1; done
node bin/fix-tcp.js --iface fix0 --connect 10.0.3.2:9878 --sender CLIENT1 --target EXCH --orders 2000 --io xdp --reset --store "$acclog.store"
node bin/fix-tcp.js --iface fix0 --connect 10.0.3.2:9878 --sender CLIENT2 --target EXCH --orders 2000 --io socket --reset --store "$acclog.store2"
ip netns pids exch | xargs -r kill -INT
wait
rm -f "$acclog" "$acclog.store" "$acclog.store2"
bash scripts/setup_net.sh down fix >&2
