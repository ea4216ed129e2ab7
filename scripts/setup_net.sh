#!/usr/bin/env bash
# Test-bed network for kbx: veth pairs between the root namespace and named namespaces.
#
#   setup_net.sh up     [quic|ab|fix] [--queues N]   create (idempotent; `up` twice is fine)
#   setup_net.sh down   [quic|ab|fix]                remove what `up` made (fine when nothing is up)
#   setup_net.sh status [quic|ab|fix]                one JSON object on stdout; exit 0 when fully up, 3 otherwise
#   setup_net.sh exec   NS CMD [ARGS...]             run CMD inside namespace NS with bpffs at /sys/fs/bpf
#
# Topologies (the default is quic):
#   quic  veth0 10.0.0.10/24 (root)      <-> veth1 10.0.0.11/24 (netns ns1)
#   ab    vethA_dst 10.0.1.2/24 (root)   <-> vethA_src 10.0.1.1/24 (netns feed)
#         vethB_dst 10.0.2.2/24 (root)   <-> vethB_src 10.0.2.1/24 (netns feed)
#   fix   fix0 10.0.3.1/24 (root)        <-> fix1 10.0.3.2/24 (netns exch)
# Every end gets a permanent neighbour entry for its peer (XDP redirection starves ARP) and TX
# checksum offload off (veth would otherwise send partial checksums).
#
# bpffs inside a namespace: `ip netns exec` unshares the mount namespace and mounts a fresh sysfs
# on /sys for every command it runs, so a bpffs mounted at /sys/fs/bpf inside one `ip netns exec`
# is gone for the next. `up` therefore mounts one bpffs per namespace at /run/kbx/bpffs/NS in the
# root mount namespace (visible to root-namespace tools too), and `setup_net.sh exec NS cmd…`
# bind-mounts it onto /sys/fs/bpf before exec'ing cmd, so pins persist across commands in NS.
#
# Exit codes: 0 ok, 1 failure (e.g. not root), 2 usage error, 3 status: not (fully) up.
set -euo pipefail

readonly BPFFS_BASE=/run/kbx/bpffs
readonly STATE_DIR=/run/kbx/setup_net
readonly PROG=${0##*/}

die() {
  echo "$PROG: $*" >&2
  exit 1
}

usage() {
  sed -n '3,7p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

note() {
  echo "$PROG: $*" >&2
}

# Run `ip` in namespace $1 ("" = root namespace).
nsip() {
  local ns=$1
  shift
  if [[ -z $ns ]]; then ip "$@"; else ip -n "$ns" "$@"; fi
}

# Run a command in namespace $1 ("" = root namespace).
nsrun() {
  local ns=$1
  shift
  if [[ -z $ns ]]; then "$@"; else ip netns exec "$ns" "$@"; fi
}

ns_exists() {
  ip netns list 2>/dev/null | awk '{print $1}' | grep -xF -- "$1" >/dev/null
}

link_exists() {
  local ns=$1 dev=$2
  if [[ -n $ns ]] && ! ns_exists "$ns"; then return 1; fi
  nsip "$ns" link show dev "$dev" >/dev/null 2>&1
}

link_is_veth() {
  nsip "$1" -d link show dev "$2" 2>/dev/null | grep -E '^\s+veth( |$)' >/dev/null
}

link_queues() {
  nsip "$1" -d link show dev "$2" 2>/dev/null | awk '{for (i = 1; i < NF; i++) if (q == "" && $i == "numrxqueues") q = $(i + 1)} END {print q}'
}

link_mac() {
  nsip "$1" -br link show dev "$2" 2>/dev/null | awk '{print $3}'
}

link_operstate() {
  nsip "$1" -br link show dev "$2" 2>/dev/null | awk '{print $2}'
}

link_has_addr() {
  nsip "$1" -4 -br addr show dev "$2" 2>/dev/null | awk '{for (i = 3; i <= NF; i++) print $i}' | grep -xF -- "$3" >/dev/null
}

link_tx_checksum() {
  nsrun "$1" ethtool -k "$2" 2>/dev/null | awk -F': ' '/^tx-checksumming:/ && v == "" {v = $2} END {print v}'
}

# "PERMANENT <mac>" when a permanent entry for ip $3 exists on dev $2.
neigh_state() {
  nsip "$1" neigh show "$3" dev "$2" 2>/dev/null | awk '{for (i = 1; i <= NF; i++) if ($i == "lladdr") mac = $(i + 1); state = $NF} END {if (NR) print state, mac}'
}

bpffs_mounted() {
  mountpoint -q "$BPFFS_BASE/$1" 2>/dev/null && [[ $(stat -f -c %T "$BPFFS_BASE/$1") == bpf_fs ]]
}

# Topology tables. A pair: "devA|nsA|addrA|devB|nsB|addrB" ("" = root namespace).
load_topology() {
  case $1 in
    quic)
      NAMESPACES=(ns1)
      PAIRS=("veth0||10.0.0.10/24|veth1|ns1|10.0.0.11/24")
      ;;
    ab)
      NAMESPACES=(feed)
      PAIRS=("vethA_dst||10.0.1.2/24|vethA_src|feed|10.0.1.1/24"
        "vethB_dst||10.0.2.2/24|vethB_src|feed|10.0.2.1/24")
      ;;
    fix)
      NAMESPACES=(exch)
      PAIRS=("fix0||10.0.3.1/24|fix1|exch|10.0.3.2/24")
      ;;
    *)
      echo "$PROG: unknown topology '$1' (expected quic, ab or fix)" >&2
      exit 2
      ;;
  esac
}

require_root() {
  [[ $EUID -eq 0 ]] || die "must run as root: try sudo $0 ${ORIG_ARGS[*]}"
  command -v ip >/dev/null || die "iproute2 (ip) is not installed"
  command -v ethtool >/dev/null || die "ethtool is not installed (apt-get install ethtool)"
}

lock() {
  mkdir -p "$STATE_DIR"
  exec 9>"$STATE_DIR/.lock"
  flock 9
}

# Delete link $2 from namespace $1 if it exists and is a veth (never touches other link types).
delete_veth() {
  local ns=$1 dev=$2
  link_exists "$ns" "$dev" || return 0
  if ! link_is_veth "$ns" "$dev"; then
    die "${ns:-root}/$dev exists and is not a veth: refusing to touch it"
  fi
  nsip "$ns" link del dev "$dev"
}

ensure_namespace() {
  local ns=$1
  if ! ns_exists "$ns"; then
    ip netns add "$ns"
    touch "$STATE_DIR/netns-$ns"
  fi
  ip -n "$ns" link set lo up
  mkdir -p "$BPFFS_BASE/$ns"
  bpffs_mounted "$ns" || mount -t bpf bpf "$BPFFS_BASE/$ns"
}

pair_ok() {
  local devA=$1 nsA=$2 devB=$3 nsB=$4 queues=$5
  link_exists "$nsA" "$devA" && link_exists "$nsB" "$devB" || return 1
  link_is_veth "$nsA" "$devA" && link_is_veth "$nsB" "$devB" || return 1
  [[ $(link_queues "$nsA" "$devA") == "$queues" && $(link_queues "$nsB" "$devB") == "$queues" ]]
}

ensure_pair() {
  local devA nsA addrA devB nsB addrB
  IFS='|' read -r devA nsA addrA devB nsB addrB <<<"$1"
  local queues=$2
  if ! pair_ok "$devA" "$nsA" "$devB" "$nsB" "$queues"; then
    # Half-made or different queue count: start this pair over. Strays left in the root
    # namespace by an interrupted run are removed too.
    delete_veth "$nsA" "$devA"
    delete_veth "$nsB" "$devB"
    delete_veth "" "$devA"
    delete_veth "" "$devB"
    ip link add "$devA" numrxqueues "$queues" numtxqueues "$queues" type veth \
      peer name "$devB" numrxqueues "$queues" numtxqueues "$queues"
    [[ -z $nsB ]] || ip link set dev "$devB" netns "$nsB"
    [[ -z $nsA ]] || ip link set dev "$devA" netns "$nsA"
  fi
  nsip "$nsA" addr replace "$addrA" dev "$devA"
  nsip "$nsB" addr replace "$addrB" dev "$devB"
  nsip "$nsA" link set dev "$devA" up
  nsip "$nsB" link set dev "$devB" up
  nsrun "$nsA" ethtool -K "$devA" tx off >/dev/null
  nsrun "$nsB" ethtool -K "$devB" tx off >/dev/null
  local macA macB
  macA=$(link_mac "$nsA" "$devA")
  macB=$(link_mac "$nsB" "$devB")
  nsip "$nsA" neigh replace "${addrB%/*}" lladdr "$macB" dev "$devA" nud permanent
  nsip "$nsB" neigh replace "${addrA%/*}" lladdr "$macA" dev "$devB" nud permanent
}

cmd_up() {
  require_root
  lock
  local ns pair
  for ns in "${NAMESPACES[@]}"; do ensure_namespace "$ns"; done
  for pair in "${PAIRS[@]}"; do ensure_pair "$pair" "$QUEUES"; done
  note "$TOPOLOGY is up (queues: $QUEUES)"
}

cmd_down() {
  require_root
  lock
  local pair devA nsA addrA devB nsB addrB ns
  for pair in "${PAIRS[@]}"; do
    IFS='|' read -r devA nsA addrA devB nsB addrB <<<"$pair"
    delete_veth "$nsA" "$devA"
    delete_veth "$nsB" "$devB"
    delete_veth "" "$devA"
    delete_veth "" "$devB"
  done
  for ns in "${NAMESPACES[@]}"; do
    if bpffs_mounted "$ns"; then umount "$BPFFS_BASE/$ns"; fi
    [[ -d $BPFFS_BASE/$ns ]] && rmdir "$BPFFS_BASE/$ns" 2>/dev/null || true
    if [[ -e $STATE_DIR/netns-$ns ]]; then
      if ns_exists "$ns"; then ip netns del "$ns"; fi
      rm -f "$STATE_DIR/netns-$ns"
    elif ns_exists "$ns"; then
      note "left namespace $ns in place: $PROG did not create it"
    fi
  done
  note "$TOPOLOGY is down"
}

json_str() {
  local s=${1//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}

json_bool() {
  if "$@"; then printf true; else printf false; fi
}

# Prints one link's JSON object; returns 0 when the link is fully configured.
link_status() {
  local ns=$1 dev=$2 addr=$3 peer_ns=$4 peer_dev=$5 peer_addr=$6
  local nsjson exists=false veth=false state=null mac=null queues=null has_addr=false tx=null
  local neigh_ok=false neigh_json=null ok=1
  if [[ -n $ns ]]; then nsjson=$(json_str "$ns"); else nsjson=null; fi
  if link_exists "$ns" "$dev"; then
    exists=true
    link_is_veth "$ns" "$dev" && veth=true
    state=$(json_str "$(link_operstate "$ns" "$dev")")
    mac=$(json_str "$(link_mac "$ns" "$dev")")
    queues=$(link_queues "$ns" "$dev")
    queues=${queues:-null}
    link_has_addr "$ns" "$dev" "$addr" && has_addr=true
    local t
    t=$(link_tx_checksum "$ns" "$dev")
    [[ -n $t ]] && tx=$(json_str "$t")
    local n peer_mac
    n=$(neigh_state "$ns" "$dev" "${peer_addr%/*}")
    peer_mac=$(link_mac "$peer_ns" "$peer_dev" || true)
    if [[ -n $n ]]; then
      neigh_json="{\"ip\":$(json_str "${peer_addr%/*}"),\"state\":$(json_str "${n%% *}"),\"mac\":$(json_str "${n#* }")}"
      [[ ${n%% *} == PERMANENT && -n $peer_mac && ${n#* } == "$peer_mac" ]] && neigh_ok=true
    fi
    [[ $veth == true && $state == '"UP"' && $has_addr == true && $tx == '"off"' && $neigh_ok == true ]] && ok=0
  fi
  printf '{"name":%s,"netns":%s,"exists":%s,"veth":%s,"operstate":%s,"mac":%s,"queues":%s,"address":%s,"hasAddress":%s,"txChecksumming":%s,"neighbour":%s,"neighbourOk":%s}' \
    "$(json_str "$dev")" "$nsjson" "$exists" "$veth" "$state" "$mac" "$queues" "$(json_str "$addr")" "$has_addr" "$tx" "$neigh_json" "$neigh_ok"
  return $ok
}

cmd_status() {
  require_root
  local all_ok=true any=false first=true ns pair devA nsA addrA devB nsB addrB
  local ns_json='' links_json=''
  for ns in "${NAMESPACES[@]}"; do
    local exists=false managed=false mounted=false
    if ns_exists "$ns"; then exists=true; fi
    [[ -e $STATE_DIR/netns-$ns ]] && managed=true
    bpffs_mounted "$ns" && mounted=true
    [[ $exists == true && $mounted == true ]] || all_ok=false
    [[ $managed == true || $mounted == true ]] && any=true
    $first || ns_json+=','
    first=false
    ns_json+="{\"name\":$(json_str "$ns"),\"exists\":$exists,\"createdBySetupNet\":$managed,\"bpffs\":$(json_str "$BPFFS_BASE/$ns"),\"bpffsMounted\":$mounted}"
  done
  first=true
  for pair in "${PAIRS[@]}"; do
    IFS='|' read -r devA nsA addrA devB nsB addrB <<<"$pair"
    local a b
    if a=$(link_status "$nsA" "$devA" "$addrA" "$nsB" "$devB" "$addrB"); then :; else all_ok=false; fi
    if b=$(link_status "$nsB" "$devB" "$addrB" "$nsA" "$devA" "$addrA"); then :; else all_ok=false; fi
    link_exists "$nsA" "$devA" && any=true
    link_exists "$nsB" "$devB" && any=true
    $first || links_json+=','
    first=false
    links_json+="$a,$b"
  done
  local state
  if $all_ok; then state=up; elif $any; then state=partial; else state=down; fi
  printf '{"topology":%s,"state":%s,"up":%s,"namespaces":[%s],"links":[%s]}\n' \
    "$(json_str "$TOPOLOGY")" "$(json_str "$state")" "$([[ $state == up ]] && echo true || echo false)" "$ns_json" "$links_json"
  [[ $state == up ]] && return 0 || return 3
}

cmd_exec() {
  [[ $# -ge 2 ]] || usage
  local ns=$1
  shift
  [[ $EUID -eq 0 ]] || die "must run as root: try sudo $0 exec $ns $*"
  ns_exists "$ns" || die "no network namespace '$ns' (run: $0 up)"
  # In the fresh mount namespace of `ip netns exec`, put bpffs on /sys/fs/bpf: the namespace's
  # persistent instance when `up` made one, else a new (empty, per-command) instance.
  exec ip netns exec "$ns" sh -c '
    dir=$1; shift
    if ! mountpoint -q /sys/fs/bpf; then
      if mountpoint -q "$dir"; then mount --bind "$dir" /sys/fs/bpf; else mount -t bpf bpf /sys/fs/bpf; fi
    fi
    exec "$@"' kbx-netns-exec "$BPFFS_BASE/$ns" "$@"
}

main() {
  [[ $# -ge 1 ]] || usage
  local action=$1
  shift
  case $action in
    -h | --help | help) usage ;;
    exec)
      cmd_exec "$@"
      return
      ;;
    up | down | status) ;;
    *)
      echo "$PROG: unknown action '$action'" >&2
      usage
      ;;
  esac
  TOPOLOGY=quic
  QUEUES=1
  local topology_set=false
  while [[ $# -gt 0 ]]; do
    case $1 in
      --queues)
        [[ $# -ge 2 && $2 =~ ^[0-9]+$ && $2 -ge 1 && $2 -le 64 ]] || { echo "$PROG: --queues needs a number from 1 to 64" >&2; exit 2; }
        QUEUES=$2
        shift 2
        ;;
      --queues=*)
        QUEUES=${1#--queues=}
        [[ $QUEUES =~ ^[0-9]+$ && $QUEUES -ge 1 && $QUEUES -le 64 ]] || { echo "$PROG: --queues needs a number from 1 to 64" >&2; exit 2; }
        shift
        ;;
      -*)
        echo "$PROG: unknown option '$1'" >&2
        exit 2
        ;;
      *)
        $topology_set && { echo "$PROG: more than one topology given" >&2; exit 2; }
        TOPOLOGY=$1
        topology_set=true
        shift
        ;;
    esac
  done
  load_topology "$TOPOLOGY"
  case $action in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
  esac
}

ORIG_ARGS=("$@")
main "$@"
