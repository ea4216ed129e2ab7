// quic-flood's and quic-sink's bindings to libkbx.so: the QUIC engine (native/include/kbx_quic.h documents
// every call; native/src/quic_*.c) and the layouts and limits it shares with TypeScript. The only place
// @kbx/quic reaches its C; native.unit.test.ts checks every struct and constant here against the header.
// Control-path calls only: the per-packet loop runs in C and TypeScript makes one call per time slice.
import { koffi, nativeLibraryPath, openLibrary } from '@kbx/ffi'
import type { KbxErrorRecordValue } from '@kbx/ffi'
import { LogLinearLayout } from '@kbx/stats'

export type KbxQuicIdentityPtr = { readonly __opaque: 'kbx_quic_identity' }
export type KbxQuicFloodPtr = { readonly __opaque: 'kbx_quic_flood' }
export type KbxQuicSinkPtr = { readonly __opaque: 'kbx_quic_sink' }

/** Agave's limit on a transaction (PACKET_DATA_SIZE). */
export const KBX_QUIC_MAX_TX_SIZE = 1232
/** kbx_quic.h "Bounded memory": the flooder's rotation and the sink's per-connection stream total. */
export const KBX_QUIC_STREAMS_PER_CONNECTION = 131072
export const KBX_QUIC_SINK_STREAMS_PER_CONNECTION = 262144
export const KBX_QUIC_RUN_SLICE = 0
export const KBX_QUIC_RUN_DONE = 1
/** Limits and defaults the engine applies (kbx_quic.h); the command lines take theirs from here. */
export const KBX_QUIC_MAX_ALPN_LEN = 255
export const KBX_QUIC_MAX_CONNECTIONS = 64
export const KBX_QUIC_MAX_SERVERS = 32
export const KBX_QUIC_MAX_TOTAL_CONNECTIONS = 256
export const KBX_QUIC_MAX_IDENTITIES = 64
export const KBX_QUIC_SERVER_CLOSES = 8
export const KBX_QUIC_CLOSE_REASON_LEN = 96
export const KBX_QUIC_SINK_PEER_KEYS = 64
export const KBX_QUIC_DEFAULT_IDLE_TIMEOUT_MS = 30000
export const KBX_QUIC_DEFAULT_HANDSHAKE_TIMEOUT_MS = 5000
export const KBX_QUIC_DEFAULT_MAX_BACKOFF_MS = 5000
export const KBX_QUIC_SINK_DEFAULT_MAX_STREAMS = 512
export const KBX_QUIC_SINK_DEFAULT_MAX_CONNECTIONS = 1024
/** xdp io: the UMEM handed to the flooder (frames, and the smallest frame that holds a whole packet). */
export const KBX_QUIC_TX_BATCH = 64
export const KBX_QUIC_DEFAULT_FRAMES = 4096
export const KBX_QUIC_MIN_FRAMES = 512
export const KBX_QUIC_MAX_FRAMES = 262144
export const KBX_QUIC_MAX_DATAGRAM = 1452
export const KBX_QUIC_FRAME_HEADERS = 42
export const KBX_QUIC_MIN_FRAME_SIZE = KBX_QUIC_FRAME_HEADERS + KBX_QUIC_MAX_DATAGRAM
/** kbx_quic_io and kbx_quic_streams. */
export const KBX_QUIC_IO = { socket: 0, xdp: 1 } as const
export const KBX_QUIC_STREAMS = { uni: 0, bidi: 1 } as const
export const KBX_QUIC_FANOUT = { all: 0, spread: 1 } as const
/** kbx_quic_server_state, by value. */
export const KBX_QUIC_SERVER_STATES = ['unused', 'active', 'removing', 'removed'] as const
/** kbx_quic_conn_info.state, by value. */
export const KBX_QUIC_CONN_STATES = ['waiting', 'connecting', 'established', 'closed'] as const

export const KbxQuicFloodConfig = koffi.struct('kbx_quic_flood_config', {
  io: 'uint32_t',
  streams: 'uint32_t',
  local_ip: 'uint32_t',
  remote_ip: 'uint32_t',
  local_port: 'uint32_t',
  remote_port: 'uint32_t',
  connections: 'uint32_t',
  idle_timeout_ms: 'uint32_t',
  keep_alive_ms: 'uint32_t',
  handshake_timeout_ms: 'uint32_t',
  reconnect: 'uint32_t',
  max_backoff_ms: 'uint32_t',
  rate: 'uint64_t',
  count: 'uint64_t',
  xsk: 'uint64_t',
  umem: 'uint64_t',
  src_mac: koffi.array('uint8_t', 8),
  dst_mac: koffi.array('uint8_t', 8),
  max_tx_size: 'uint32_t',
  busy_poll_us: 'uint32_t',
  streams_per_connection: 'uint32_t',
  fanout: 'uint32_t',
  max_servers: 'uint32_t',
  max_connections_per_identity: 'uint32_t',
  keep_trying: 'uint32_t',
})

export interface KbxQuicFloodConfigValue {
  io: number
  streams: number
  local_ip: number
  remote_ip: number
  local_port: number
  remote_port: number
  connections: number
  idle_timeout_ms: number
  keep_alive_ms: number
  handshake_timeout_ms: number
  reconnect: number
  max_backoff_ms: number
  rate: number
  count: number
  /** xdp io: the XskSocket's and its Umem's native addresses (they stay the caller's); 0 for socket io */
  xsk: number
  umem: number
  src_mac: number[]
  dst_mac: number[]
  /** test only: 0 = KBX_QUIC_MAX_TX_SIZE */
  max_tx_size?: number
  /** poll for up to this long after the last packet while ACKs are due (0: sleep when idle) */
  busy_poll_us?: number
  /** rotate a connection after this many streams (0: KBX_QUIC_STREAMS_PER_CONNECTION) */
  streams_per_connection?: number
  /** kbx_quic_fanout */
  fanout?: number
  /** server slots (0: 1) */
  max_servers?: number
  /** 0: no limit */
  max_connections_per_identity?: number
  /** nonzero: no failure is fatal, every connection reconnects with backoff */
  keep_trying?: number
}

export const KbxQuicServerAddr = koffi.struct('kbx_quic_server_addr', {
  ip: 'uint32_t',
  port: 'uint32_t',
  dst_mac: koffi.array('uint8_t', 8),
})

/** struct kbx_quic_flood_stats, all u64, in order. */
export const KBX_QUIC_FLOOD_STATS_FIELDS = [
  'tx_sent', 'tx_acked', 'tx_unacked_closed', 'tx_bytes_sent', 'tx_bytes_acked', 'packets_sent',
  'packets_received', 'wire_bytes_sent', 'wire_bytes_received', 'stream_frames_lost', 'pto_count', 'cwnd',
  'bytes_in_flight', 'rtt_min_ns', 'rtt_smoothed_ns', 'rtt_latest_ns', 'handshake_ns', 'handshakes',
  'connect_attempts', 'connections_closed', 'connections_open', 'blocked_streams_ns', 'blocked_flow_ns',
  'send_errors', 'rx_ignored', 'gso_batches', 'tx_ring_full', 'last_close_error',
  'rotations', 'connections_refused', 'rx_frames', 'rx_handed_off', 'rx_handoff_received', 'rx_handoff_dropped',
] as const

/** struct kbx_quic_flood_stats as koffi sees it (the layout test compares it with C; reads use the list). */
export const KbxQuicFloodStats = koffi.struct(
  'kbx_quic_flood_stats',
  Object.fromEntries(KBX_QUIC_FLOOD_STATS_FIELDS.map((f) => [f, 'uint64_t'])),
)

/** Send->ack latencies: kbx_histogram.h buckets with 2^KBX_QUIC_LATENCY_SUB_BITS per power of two over u64 ns. */
export const KBX_QUIC_LATENCY_SUB_BITS = 7
export const KBX_QUIC_LATENCY_LAYOUT = new LogLinearLayout(KBX_QUIC_LATENCY_SUB_BITS, 64)
/** struct kbx_quic_latency, which kbx_quic_flood_take_latency fills. */
export const KbxQuicLatency = koffi.struct('kbx_quic_latency', {
  count: 'uint64_t',
  sum_ns: 'uint64_t',
  min_ns: 'uint64_t',
  max_ns: 'uint64_t',
  buckets: koffi.array('uint64_t', KBX_QUIC_LATENCY_LAYOUT.length),
})

export const KbxQuicCloseRecord = koffi.struct('kbx_quic_close_record', {
  code: 'uint64_t',
  count: 'uint64_t',
  reason: koffi.array('char', KBX_QUIC_CLOSE_REASON_LEN, 'Array'),
})

/** struct kbx_quic_server_stats: one server of the fan-out (kbx_quic_flood_take_servers). */
export const KbxQuicServerStats = koffi.struct('kbx_quic_server_stats', {
  ip: 'uint32_t',
  port: 'uint32_t',
  state: 'uint32_t',
  connections_open: 'uint32_t',
  tx_sent: 'uint64_t',
  tx_acked: 'uint64_t',
  tx_unacked_closed: 'uint64_t',
  handshakes: 'uint64_t',
  connect_attempts: 'uint64_t',
  connections_closed: 'uint64_t',
  blocked_streams_ns: 'uint64_t',
  closes_dropped: 'uint64_t',
  closes: koffi.array(KbxQuicCloseRecord, KBX_QUIC_SERVER_CLOSES),
  latency: KbxQuicLatency,
})

export const KbxQuicConnInfo = koffi.struct('kbx_quic_conn_info', {
  server: 'uint32_t',
  identity: 'uint32_t',
  state: 'uint32_t',
  local_port: 'uint32_t',
  handshakes: 'uint64_t',
  tx_acked: 'uint64_t',
})

export const KbxQuicSinkConfig = koffi.struct('kbx_quic_sink_config', {
  local_ip: 'uint32_t',
  local_port: 'uint32_t',
  max_streams_uni: 'uint32_t',
  max_streams_bidi: 'uint32_t',
  idle_timeout_ms: 'uint32_t',
  max_connections: 'uint32_t',
  busy_poll_us: 'uint32_t',
  max_streams_per_connection: 'uint32_t',
  agave_qos: 'uint32_t',
  max_streams_per_ms: 'uint32_t',
  max_connections_per_ipaddr_per_min: 'uint32_t',
  reuse_port: 'uint32_t',
})

export interface KbxQuicSinkConfigValue {
  local_ip: number
  local_port: number
  max_streams_uni: number
  max_streams_bidi: number
  idle_timeout_ms: number
  max_connections: number
  /** poll for up to this long after the last packet (0: sleep when idle) */
  busy_poll_us?: number
  /** unidirectional streams one connection may ever open (0: KBX_QUIC_SINK_STREAMS_PER_CONNECTION) */
  max_streams_per_connection?: number
  /** nonzero: Agave's stake-weighted QoS (kbx_quic.h "Agave's QoS") */
  agave_qos?: number
  /** agave_qos: the sink's capacity in streams per ms (0: KBX_QUIC_QOS_DEFAULT_MAX_STREAMS_PER_MS) */
  max_streams_per_ms?: number
  /** agave_qos: new connections per IP per minute (0: KBX_QUIC_QOS_CONNECTIONS_PER_IPADDR_PER_MIN) */
  max_connections_per_ipaddr_per_min?: number
  /** nonzero: SO_REUSEPORT (several sinks, one per worker, on one port) */
  reuse_port?: number
}

/** struct kbx_quic_sink_stats, all u64, in order. */
export const KBX_QUIC_SINK_STATS_FIELDS = [
  'connections_accepted', 'connections_open', 'connections_closed', 'handshakes', 'handshake_failures',
  'transactions', 'bytes', 'rejected', 'streams_uni', 'streams_bidi', 'packets_received', 'packets_sent',
  'packets_dropped', 'client_certificates', 'connections_stream_limited',
  // agave_qos: Agave's StreamerStats names
  'connection_rate_limited_per_ipaddr', 'refused_connections_too_many_open_connections',
  'connection_added_from_staked_peer', 'connection_added_from_unstaked_peer', 'connection_add_failed',
  'connection_add_failed_staked_node', 'connection_add_failed_unstaked_node', 'throttled_streams',
  'throttled_staked_streams', 'throttled_unstaked_streams', 'open_staked_connections', 'open_unstaked_connections',
  'staked_stream_load_ema', 'staked_throttling_enabled', 'last_admitted_max_streams',
] as const

/** The sink's counters named as Agave's StreamerStats names them (reported under data.qos). */
export const KBX_QUIC_SINK_QOS_FIELDS = KBX_QUIC_SINK_STATS_FIELDS.slice(
  KBX_QUIC_SINK_STATS_FIELDS.indexOf('connection_rate_limited_per_ipaddr'),
  KBX_QUIC_SINK_STATS_FIELDS.indexOf('staked_throttling_enabled') + 1,
)

/** Agave's QoS limits (kbx_quic.h "Agave's QoS"). */
export const KBX_QUIC_QOS_UNSTAKED_STREAMS = 128
export const KBX_QUIC_QOS_MAX_STAKED_STREAMS = 512
export const KBX_QUIC_QOS_CONNECTIONS_PER_UNSTAKED_PEER = 8
export const KBX_QUIC_QOS_CONNECTIONS_PER_STAKED_PEER = 16
export const KBX_QUIC_QOS_CONNECTIONS_PER_IPADDR_PER_MIN = 8
export const KBX_QUIC_QOS_DEFAULT_MAX_STREAMS_PER_MS = 500
export const KBX_QUIC_QOS_IDLE_TIMEOUT_MS = 2000
export const KBX_QUIC_QOS_MAX_STAKES = 1000000
export const KBX_QUIC_APP_ERROR_TOO_MANY = 4

/** struct kbx_quic_sink_stats as koffi sees it. */
export const KbxQuicSinkStats = koffi.struct(
  'kbx_quic_sink_stats',
  Object.fromEntries(KBX_QUIC_SINK_STATS_FIELDS.map((f) => [f, 'uint64_t'])),
)

/** Workers (kbx_quic.h "Workers"): one thread per engine. */
export const KBX_QUIC_MAX_WORKERS = 16
export const KBX_QUIC_WORKER_SLICE_MS = 5
export const KBX_QUIC_HANDOFF_SLOTS = 512
export const KBX_QUIC_WORKERS_KIND = { flood: 0, sink: 1 } as const
export const KBX_QUIC_WORKER_RUNNING = 0
export const KBX_QUIC_WORKER_DONE = 1
export type KbxQuicWorkersPtr = { readonly __opaque: 'kbx_quic_workers' }

koffi.opaque('kbx_quic_workers')
koffi.opaque('kbx_quic_identity')
koffi.opaque('kbx_quic_flood')
koffi.opaque('kbx_quic_sink')

export interface LibKbxQuic {
  kbx_quic_identity_create(keypair: Buffer | null, out: [KbxQuicIdentityPtr | null]): number
  kbx_quic_identity_destroy(id: KbxQuicIdentityPtr): void
  kbx_quic_identity_public_key(id: KbxQuicIdentityPtr, out: Buffer): void
  kbx_quic_identity_certificate_der(id: KbxQuicIdentityPtr, buf: Buffer, cap: number): number
  kbx_quic_identity_write_pem(id: KbxQuicIdentityPtr, cert: string, key: string): number
  kbx_quic_flood_create(
    config: KbxQuicFloodConfigValue,
    alpn: string,
    ids: KbxQuicIdentityPtr[],
    idCount: number,
    txs: Buffer,
    lens: Uint32Array,
    count: number,
    out: [KbxQuicFloodPtr | null],
  ): number
  kbx_quic_flood_local_port(f: KbxQuicFloodPtr): number
  kbx_quic_flood_set_servers(f: KbxQuicFloodPtr, addrs: Buffer, n: number): number
  kbx_quic_flood_take_servers(f: KbxQuicFloodPtr, servers: Buffer, cap: number, conns: Buffer, connsCap: number, connCount: Uint32Array): number
  kbx_quic_flood_run(f: KbxQuicFloodPtr, maxMs: number): number
  kbx_quic_flood_stop_sending(f: KbxQuicFloodPtr): void
  kbx_quic_flood_stats(f: KbxQuicFloodPtr, out: Buffer): void
  kbx_quic_flood_take_latency(f: KbxQuicFloodPtr, out: Buffer): void
  kbx_quic_flood_destroy(f: KbxQuicFloodPtr): void
  kbx_quic_sink_create(
    config: KbxQuicSinkConfigValue,
    alpn: string,
    id: KbxQuicIdentityPtr | null,
    out: [KbxQuicSinkPtr | null],
  ): number
  kbx_quic_sink_port(s: KbxQuicSinkPtr): number
  kbx_quic_sink_run(s: KbxQuicSinkPtr, maxMs: number): number
  kbx_quic_sink_stats(s: KbxQuicSinkPtr, out: Buffer): void
  kbx_quic_sink_last_peer_key(s: KbxQuicSinkPtr, out32: Buffer): number
  kbx_quic_sink_set_stakes(s: KbxQuicSinkPtr, keys: Buffer, lamports: BigUint64Array, count: number): number
  kbx_quic_sink_peer_keys(s: KbxQuicSinkPtr, out: Buffer, cap: number): number
  kbx_quic_sink_destroy(s: KbxQuicSinkPtr): void
  kbx_quic_sink_link(sinks: KbxQuicSinkPtr[], n: number): number
  kbx_quic_flood_link(floods: KbxQuicFloodPtr[], n: number): number
  kbx_quic_workers_start(kind: number, engines: (KbxQuicFloodPtr | KbxQuicSinkPtr)[], n: number, out: [KbxQuicWorkersPtr | null]): number
  kbx_quic_workers_pause(w: KbxQuicWorkersPtr): void
  kbx_quic_workers_resume(w: KbxQuicWorkersPtr): void
  kbx_quic_workers_status(w: KbxQuicWorkersPtr, i: number, err: Partial<KbxErrorRecordValue>): number
  kbx_quic_workers_stop(w: KbxQuicWorkersPtr): void
  kbx_quic_qos_max_uni_streams(stake: bigint, totalStake: bigint): number
  kbx_quic_qos_is_staked(stake: bigint, totalStake: bigint, maxStreamsPerMs: number): number
  kbx_quic_qos_stream_capacity(stake: bigint, totalStake: bigint, maxStreamsPerMs: number, loaded: number): number | bigint
  kbx_quic_rate_limiter_allow(limiter: Buffer, burst: number, intervalNs: bigint, nowNs: bigint): number
  kbx_quic_stream_window_admit(window: Buffer, capacity: bigint, nowNs: bigint): number
}

let instance: LibKbxQuic | undefined

/** The QUIC engine's calls, bound on first use. */
export function libkbxQuic(): LibKbxQuic {
  if (instance) return instance
  const lib = openLibrary(
    'libkbx',
    [nativeLibraryPath()],
    'build the native helpers first: `make -C native` (needs libngtcp2-dev, libngtcp2-crypto-gnutls-dev)',
  )
  const f = (signature: string) => lib.func(signature)
  instance = {
    kbx_quic_identity_create: f('int kbx_quic_identity_create(const uint8_t *keypair, _Out_ kbx_quic_identity **out)'),
    kbx_quic_identity_destroy: f('void kbx_quic_identity_destroy(kbx_quic_identity *id)'),
    kbx_quic_identity_public_key: f('void kbx_quic_identity_public_key(const kbx_quic_identity *id, _Out_ uint8_t *out)'),
    kbx_quic_identity_certificate_der: f(
      'int kbx_quic_identity_certificate_der(const kbx_quic_identity *id, _Out_ uint8_t *buf, uint32_t cap)',
    ),
    kbx_quic_identity_write_pem: f(
      'int kbx_quic_identity_write_pem(const kbx_quic_identity *id, const char *cert, const char *key)',
    ),
    kbx_quic_flood_create: f(
      'int kbx_quic_flood_create(const kbx_quic_flood_config *config, const char *alpn, kbx_quic_identity **ids, uint32_t id_count, const uint8_t *txs, const uint32_t *lens, uint32_t count, _Out_ kbx_quic_flood **out)',
    ),
    kbx_quic_flood_local_port: f('uint32_t kbx_quic_flood_local_port(const kbx_quic_flood *f)'),
    kbx_quic_flood_set_servers: f('int kbx_quic_flood_set_servers(kbx_quic_flood *f, const uint8_t *addrs, uint32_t n)'),
    kbx_quic_flood_take_servers: f(
      'int kbx_quic_flood_take_servers(kbx_quic_flood *f, _Out_ uint8_t *servers, uint32_t cap, _Out_ uint8_t *conns, uint32_t conns_cap, _Out_ uint32_t *conn_count)',
    ),
    kbx_quic_flood_run: f('int kbx_quic_flood_run(kbx_quic_flood *f, uint32_t max_ms)'),
    kbx_quic_flood_stop_sending: f('void kbx_quic_flood_stop_sending(kbx_quic_flood *f)'),
    kbx_quic_flood_stats: f('void kbx_quic_flood_stats(kbx_quic_flood *f, _Out_ uint8_t *out)'),
    kbx_quic_flood_take_latency: f('void kbx_quic_flood_take_latency(kbx_quic_flood *f, _Out_ uint8_t *out)'),
    kbx_quic_flood_destroy: f('void kbx_quic_flood_destroy(kbx_quic_flood *f)'),
    kbx_quic_sink_create: f(
      'int kbx_quic_sink_create(const kbx_quic_sink_config *config, const char *alpn, const kbx_quic_identity *id, _Out_ kbx_quic_sink **out)',
    ),
    kbx_quic_sink_port: f('uint32_t kbx_quic_sink_port(const kbx_quic_sink *s)'),
    kbx_quic_sink_run: f('int kbx_quic_sink_run(kbx_quic_sink *s, uint32_t max_ms)'),
    kbx_quic_sink_stats: f('void kbx_quic_sink_stats(kbx_quic_sink *s, _Out_ uint8_t *out)'),
    kbx_quic_sink_last_peer_key: f('int kbx_quic_sink_last_peer_key(kbx_quic_sink *s, _Out_ uint8_t *out32)'),
    kbx_quic_sink_set_stakes: f(
      'int kbx_quic_sink_set_stakes(kbx_quic_sink *s, const uint8_t *keys, const uint64_t *lamports, uint32_t count)',
    ),
    kbx_quic_sink_peer_keys: f('int kbx_quic_sink_peer_keys(kbx_quic_sink *s, _Out_ uint8_t *out, uint32_t cap)'),
    kbx_quic_sink_destroy: f('void kbx_quic_sink_destroy(kbx_quic_sink *s)'),
    kbx_quic_sink_link: f('int kbx_quic_sink_link(kbx_quic_sink **sinks, uint32_t n)'),
    kbx_quic_flood_link: f('int kbx_quic_flood_link(kbx_quic_flood **floods, uint32_t n)'),
    // blocking calls on purpose: pause waits at most one time slice (KBX_QUIC_WORKER_SLICE_MS) per worker
    kbx_quic_workers_start: f('int kbx_quic_workers_start(uint32_t kind, void **engines, uint32_t n, _Out_ kbx_quic_workers **out)'),
    kbx_quic_workers_pause: f('void kbx_quic_workers_pause(kbx_quic_workers *w)'),
    kbx_quic_workers_resume: f('void kbx_quic_workers_resume(kbx_quic_workers *w)'),
    kbx_quic_workers_status: f('int kbx_quic_workers_status(kbx_quic_workers *w, uint32_t i, _Out_ kbx_error *err)'),
    kbx_quic_workers_stop: f('void kbx_quic_workers_stop(kbx_quic_workers *w)'),
    kbx_quic_qos_max_uni_streams: f('uint32_t kbx_quic_qos_max_uni_streams(uint64_t stake, uint64_t total_stake)'),
    kbx_quic_qos_is_staked: f('int kbx_quic_qos_is_staked(uint64_t stake, uint64_t total_stake, uint32_t max_streams_per_ms)'),
    kbx_quic_qos_stream_capacity: f(
      'uint64_t kbx_quic_qos_stream_capacity(uint64_t stake, uint64_t total_stake, uint32_t max_streams_per_ms, int loaded)',
    ),
    kbx_quic_rate_limiter_allow: f(
      'int kbx_quic_rate_limiter_allow(_Inout_ uint8_t *limiter, uint32_t burst, uint64_t interval_ns, uint64_t now_ns)',
    ),
    kbx_quic_stream_window_admit: f('int kbx_quic_stream_window_admit(_Inout_ uint8_t *window, uint64_t capacity, uint64_t now_ns)'),
  }
  return instance
}
