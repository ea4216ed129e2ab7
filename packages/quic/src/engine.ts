import { readFileSync } from 'node:fs'
import { KbxError, NetError, SystemError, UsageError, errnoOf } from '@kbx/errors'
import { kbxAddress, koffi, nativeError, readU64Fields, takeNativeFailure } from '@kbx/ffi'
import { parseIPv4, parseMac } from '@kbx/net'
import { BucketHistogram } from '@kbx/stats'
import type { XskSocket } from '@kbx/xsk'
import {
  KBX_QUIC_CONN_STATES,
  KBX_QUIC_FANOUT,
  KBX_QUIC_FLOOD_STATS_FIELDS,
  KBX_QUIC_IO,
  KBX_QUIC_MAX_SERVERS,
  KBX_QUIC_MAX_TOTAL_CONNECTIONS,
  KBX_QUIC_SERVER_CLOSES,
  KBX_QUIC_SERVER_STATES,
  KBX_QUIC_SINK_PEER_KEYS,
  KBX_QUIC_LATENCY_LAYOUT,
  KBX_QUIC_MAX_TX_SIZE,
  KBX_QUIC_MIN_FRAME_SIZE,
  KBX_QUIC_SINK_STATS_FIELDS,
  KBX_QUIC_SINK_STREAMS_PER_CONNECTION,
  KBX_QUIC_STREAMS,
  KBX_QUIC_STREAMS_PER_CONNECTION,
  KbxQuicCloseRecord,
  KbxQuicConnInfo,
  KbxQuicLatency,
  KbxQuicServerAddr,
  KbxQuicServerStats,
  libkbxQuic,
} from './native.js'
import type { Stakes } from './qos.js'
import type { KbxQuicFloodConfigValue, KbxQuicFloodPtr, KbxQuicIdentityPtr, KbxQuicSinkPtr } from './native.js'

export { KBX_QUIC_MAX_TX_SIZE, KBX_QUIC_SINK_STREAMS_PER_CONNECTION, KBX_QUIC_STREAMS_PER_CONNECTION }

export type FloodStats = Record<(typeof KBX_QUIC_FLOOD_STATS_FIELDS)[number], number>
export type SinkStats = Record<(typeof KBX_QUIC_SINK_STATS_FIELDS)[number], number>

/** An IPv4 address as the u32 whose memory holds it in network order (what C's s_addr holds). */
export function ipv4NetworkOrder(ip: string): number {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(parseIPv4(ip) >>> 0)
  return b.readUInt32LE(0)
}

/** The engine's failure as a typed error: a connection that never came up or was closed is a NetError. */
function engineError(op: string, rv: number): KbxError {
  const errno = Math.abs(rv)
  if (errno === errnoOf('ETIMEDOUT') || errno === errnoOf('ECONNRESET')) {
    const failure = takeNativeFailure(rv, op)
    return new NetError(failure.message || failure.op, {
      op: failure.op,
      errno,
      hint: 'is quic-sink (or the validator) running and reachable? see --alpn',
    })
  }
  return nativeError(rv, op)
}

/** Parses a Solana keypair file's JSON (64 numbers 0..255). */
export function parseSolanaKeypair(text: string, source = 'keypair'): Buffer {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw new UsageError(`${source}: not JSON (expected a Solana keypair: an array of 64 numbers)`)
  }
  if (!Array.isArray(value) || value.length !== 64 || !value.every((n) => Number.isInteger(n) && n >= 0 && n <= 255))
    throw new UsageError(`${source}: expected a Solana keypair: an array of 64 numbers 0..255`)
  return Buffer.from(value as number[])
}

/** A Solana keypair file (`--keypair` of quic-flood and quic-sink): unreadable or malformed is a usage error. */
export function readSolanaKeypair(path: string, option = '--keypair'): Buffer {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (e) {
    throw new UsageError(`${option} ${path}: ${(e as Error).message}`)
  }
  return parseSolanaKeypair(text, `${option} ${path}`)
}

/** An Ed25519 identity with its self-signed X.509 certificate. */
export class Identity {
  #ptr: KbxQuicIdentityPtr | null
  private constructor(ptr: KbxQuicIdentityPtr) {
    this.#ptr = ptr
  }
  /** keypair: 64 bytes (seed + public key), or undefined for a fresh identity. */
  static create(keypair?: Buffer): Identity {
    if (keypair && keypair.length !== 64) throw new UsageError('a keypair has 64 bytes')
    const out: [KbxQuicIdentityPtr | null] = [null]
    const rv = libkbxQuic().kbx_quic_identity_create(keypair ?? null, out)
    if (rv < 0 || !out[0]) {
      if (rv === -errnoOf('EINVAL')) {
        const failure = takeNativeFailure(rv, 'create Ed25519 identity')
        throw new UsageError(failure.message || 'the keypair is not an Ed25519 keypair', { op: failure.op })
      }
      throw nativeError(rv, 'create Ed25519 identity')
    }
    return new Identity(out[0])
  }
  get ptr(): KbxQuicIdentityPtr {
    if (!this.#ptr) throw new UsageError('identity is closed')
    return this.#ptr
  }
  publicKey(): Buffer {
    const b = Buffer.alloc(32)
    libkbxQuic().kbx_quic_identity_public_key(this.ptr, b)
    return b
  }
  certificateDer(): Buffer {
    const b = Buffer.alloc(4096)
    const n = libkbxQuic().kbx_quic_identity_certificate_der(this.ptr, b, b.length)
    if (n < 0) throw nativeError(n, 'export certificate')
    return b.subarray(0, n)
  }
  writePem(certPath: string, keyPath: string): void {
    const rv = libkbxQuic().kbx_quic_identity_write_pem(this.ptr, certPath, keyPath)
    if (rv < 0) throw nativeError(rv, 'write PEM')
  }
  close(): void {
    if (this.#ptr) libkbxQuic().kbx_quic_identity_destroy(this.#ptr)
    this.#ptr = null
  }
}

/** A server of the fan-out; dstMac: its next hop (xdp io; the flood's dstMac when absent). */
export interface ServerAddress {
  ip: string
  port: number
  dstMac?: string
}

/** One server's counters from the engine (cumulative; latencies since the previous take). */
export interface ServerStats {
  server: string
  state: (typeof KBX_QUIC_SERVER_STATES)[number]
  connectionsOpen: number
  sent: number
  acked: number
  unackedAtClose: number
  handshakes: number
  connectAttempts: number
  connectionsClosed: number
  blockedStreamsNs: number
  closes: { code: number; reason: string; count: number }[]
  closesNotKept: number
  latencies: BucketHistogram
  connections: { identity: number; state: (typeof KBX_QUIC_CONN_STATES)[number]; localPort: number; handshakes: number; acked: number }[]
}

/** Reads the latency struct at `offset` of `buf` (kbx_quic_latency). */
function readLatency(buf: Buffer, offset: number): BucketHistogram {
  const u64 = (field: string) => buf.readBigUInt64LE(offset + koffi.offsetof(KbxQuicLatency, field))
  const at = buf.byteOffset + offset + koffi.offsetof(KbxQuicLatency, 'buckets')
  const counts = new BigUint64Array(buf.buffer.slice(at, at + KBX_QUIC_LATENCY_LAYOUT.length * 8))
  return BucketHistogram.of(KBX_QUIC_LATENCY_LAYOUT, counts, { minNs: u64('min_ns'), maxNs: u64('max_ns'), sumNs: u64('sum_ns') })
}

function ipv4FromNetworkOrder(value: number): string {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(value >>> 0)
  return [...b].join('.')
}

export interface FloodOptions {
  io: 'socket' | 'xdp'
  streams: 'uni' | 'bidi'
  localIp: string
  /** the servers (at least one): fan-out over them; kbx_quic_flood_set_servers changes them later */
  servers: ServerAddress[]
  /** all: every transaction to every server (count and rate per server); spread: round-robin */
  fanout?: 'all' | 'spread'
  /** server slots, for servers added later (at least servers.length) */
  maxServers?: number
  /** no failure is fatal: every connection, also one never established, reconnects with backoff */
  keepTrying?: boolean
  localPort?: number
  /** per server */
  connections?: number
  maxConnectionsPerIdentity?: number
  idleTimeoutMs?: number
  keepAliveMs?: number
  handshakeTimeoutMs?: number
  reconnect?: boolean
  rate?: number
  count?: number
  /** while transactions await their ACK, poll instead of sleeping for up to this long after the last packet */
  busyPollUs?: number
  /** open a fresh connection after this many streams, once all are acked (bounds the server's memory) */
  streamsPerConnection?: number
  alpn?: string
  /** a server's connection k presents identities[k % identities.length] */
  identities: Identity[]
  transactions: Buffer[]
  /**
   * xdp io: the AF_XDP socket (and through it its UMEM, frames of at least KBX_QUIC_MIN_FRAME_SIZE bytes)
   * the engine sends and receives on. They stay the caller's: close them after the Flood.
   */
  xsk?: XskSocket
  /** xdp io: MACs of this host and the next hop */
  srcMac?: string
  dstMac?: string
  /** TEST ONLY: accept transactions up to this size instead of Agave's 1232 (to test the receiver's rejection) */
  unsafeMaxTxSize?: number
}

/** Generated mock transactions: `count` distinct payloads of `size` bytes. */
export function mockTransactions(size: number, count = 64): Buffer[] {
  if (!Number.isInteger(size) || size < 1 || size > KBX_QUIC_MAX_TX_SIZE)
    throw new UsageError(`--tx-size ${size}: a transaction is 1..${KBX_QUIC_MAX_TX_SIZE} bytes (Agave's limit)`)
  return Array.from({ length: count }, (_, i) => {
    const b = Buffer.alloc(size, i & 0xff)
    b[0] = 1 // one signature, like a real transaction's compact array
    return b
  })
}

/** The flooder: connections and the per-packet loop live in C; run() is one call per slice. */
export class Flood {
  #ptr: KbxQuicFloodPtr | null
  readonly localPort: number
  readonly #stats = Buffer.alloc(KBX_QUIC_FLOOD_STATS_FIELDS.length * 8)
  readonly #latency = Buffer.alloc(koffi.sizeof(KbxQuicLatency))
  /** xdp io: the borrowed socket, which must stay open while the engine runs */
  readonly #xsk: XskSocket | undefined
  readonly #maxServers: number
  readonly #maxConns: number
  /** kbx_quic_flood_take_servers' output: one struct per server slot, one per connection slot */
  readonly #servers: Buffer
  readonly #conns: Buffer
  private constructor(ptr: KbxQuicFloodPtr, xsk: XskSocket | undefined, maxServers: number, maxConns: number) {
    this.#ptr = ptr
    this.#xsk = xsk
    this.localPort = libkbxQuic().kbx_quic_flood_local_port(ptr)
    this.#maxServers = maxServers
    this.#maxConns = maxConns
    this.#servers = Buffer.alloc(koffi.sizeof(KbxQuicServerStats) * maxServers)
    this.#conns = Buffer.alloc(koffi.sizeof(KbxQuicConnInfo) * maxConns)
  }
  /** Local ports in use: localPort .. localPort + portCount - 1 (server slots x connections). */
  get portCount(): number {
    return this.#maxConns
  }
  static create(o: FloodOptions): Flood {
    if (o.transactions.length === 0) throw new UsageError('no transactions to send')
    const maxTxSize = o.unsafeMaxTxSize ?? KBX_QUIC_MAX_TX_SIZE
    o.transactions.forEach((t, i) => {
      if (t.length < 1 || t.length > maxTxSize)
        throw new UsageError(`transaction ${i} has ${t.length} bytes: a transaction is 1..${maxTxSize} bytes`)
    })
    if (o.io === 'xdp') {
      if (!o.xsk) throw new UsageError('xdp io needs an AF_XDP socket (FloodOptions.xsk)')
      if (o.xsk.umem.frameSize < KBX_QUIC_MIN_FRAME_SIZE + o.xsk.umem.headroom)
        throw new UsageError(`UMEM frames of ${o.xsk.umem.frameSize} bytes: the flooder writes up to ${KBX_QUIC_MIN_FRAME_SIZE}`)
    }
    const mac = (s: string | undefined): number[] => [...(s ? parseMac(s) : Buffer.alloc(6)), 0, 0]
    if (o.servers.length === 0) throw new UsageError('no server to send to')
    if (o.identities.length === 0) throw new UsageError('no identity to connect with')
    const maxServers = o.maxServers ?? o.servers.length
    if (maxServers > KBX_QUIC_MAX_SERVERS || maxServers * (o.connections ?? 1) > KBX_QUIC_MAX_TOTAL_CONNECTIONS)
      throw new UsageError(`${maxServers} servers x ${o.connections ?? 1} connections: at most ${KBX_QUIC_MAX_SERVERS} servers and ${KBX_QUIC_MAX_TOTAL_CONNECTIONS} connections`)
    const config: KbxQuicFloodConfigValue = {
      io: KBX_QUIC_IO[o.io],
      streams: KBX_QUIC_STREAMS[o.streams],
      local_ip: ipv4NetworkOrder(o.localIp),
      remote_ip: 0,
      local_port: o.localPort ?? 0,
      remote_port: 0,
      connections: o.connections ?? 1,
      idle_timeout_ms: o.idleTimeoutMs ?? 0,
      keep_alive_ms: o.keepAliveMs ?? 0,
      handshake_timeout_ms: o.handshakeTimeoutMs ?? 0,
      reconnect: o.reconnect === false ? 0 : 1,
      max_backoff_ms: 0,
      rate: o.rate ?? 0,
      count: o.count ?? 0,
      xsk: o.io === 'xdp' && o.xsk ? o.xsk.address : 0,
      umem: o.io === 'xdp' && o.xsk ? o.xsk.umem.address : 0,
      src_mac: mac(o.srcMac),
      dst_mac: mac(o.dstMac),
      max_tx_size: o.unsafeMaxTxSize ?? 0,
      busy_poll_us: o.busyPollUs ?? 0,
      streams_per_connection: o.streamsPerConnection ?? 0,
      fanout: KBX_QUIC_FANOUT[o.fanout ?? 'all'],
      max_servers: maxServers,
      max_connections_per_identity: o.maxConnectionsPerIdentity ?? 0,
      keep_trying: o.keepTrying ? 1 : 0,
    }
    const lens = Uint32Array.from(o.transactions.map((t) => t.length))
    const out: [KbxQuicFloodPtr | null] = [null]
    const rv = libkbxQuic().kbx_quic_flood_create(
      config,
      o.alpn ?? 'solana-tpu',
      o.identities.map((i) => i.ptr),
      o.identities.length,
      Buffer.concat(o.transactions),
      lens,
      lens.length,
      out,
    )
    if (rv < 0 || !out[0]) throw engineError('create QUIC flooder', rv)
    const flood = new Flood(out[0], o.io === 'xdp' ? o.xsk : undefined, maxServers, maxServers * (o.connections ?? 1))
    try {
      flood.setServers(o.servers)
    } catch (e) {
      flood.close()
      throw e
    }
    return flood
  }
  /** xdp io: joins workers' flooders whose port ranges follow each other, so each hands the others' datagrams over. */
  static link(floods: readonly Flood[]): void {
    const rv = libkbxQuic().kbx_quic_flood_link(floods.map((f) => f.ptr), floods.length)
    if (rv < 0) throw nativeError(rv, 'link QUIC flooders')
  }
  /** Makes the server set exactly `servers` (kbx_quic_flood_set_servers: removed ones drain and close gracefully). */
  setServers(servers: readonly ServerAddress[]): void {
    const size = koffi.sizeof(KbxQuicServerAddr)
    const buf = Buffer.alloc(size * Math.max(1, servers.length))
    servers.forEach((s, i) => {
      buf.writeUInt32LE(ipv4NetworkOrder(s.ip) >>> 0, i * size + koffi.offsetof(KbxQuicServerAddr, 'ip'))
      buf.writeUInt32LE(s.port, i * size + koffi.offsetof(KbxQuicServerAddr, 'port'))
      if (s.dstMac) parseMac(s.dstMac).copy(buf, i * size + koffi.offsetof(KbxQuicServerAddr, 'dst_mac'))
    })
    const rv = libkbxQuic().kbx_quic_flood_set_servers(this.ptr, buf, servers.length)
    if (rv < 0) throw nativeError(rv, 'set QUIC servers')
  }
  /** Every server's counters and connections: one native call (take: latencies start anew). */
  takeServers(): ServerStats[] {
    const lib = libkbxQuic()
    const connCount = new Uint32Array(1)
    const n = lib.kbx_quic_flood_take_servers(this.ptr, this.#servers, this.#maxServers, this.#conns, this.#maxConns, connCount)
    const size = koffi.sizeof(KbxQuicServerStats)
    const closeSize = koffi.sizeof(KbxQuicCloseRecord)
    const out: ServerStats[] = []
    for (let i = 0; i < n; i++) {
      const base = i * size
      const u32 = (f: string) => this.#servers.readUInt32LE(base + koffi.offsetof(KbxQuicServerStats, f))
      const u64 = (f: string) => Number(this.#servers.readBigUInt64LE(base + koffi.offsetof(KbxQuicServerStats, f)))
      const closes: ServerStats['closes'] = []
      for (let k = 0; k < KBX_QUIC_SERVER_CLOSES; k++) {
        const at = base + koffi.offsetof(KbxQuicServerStats, 'closes') + k * closeSize
        const count = Number(this.#servers.readBigUInt64LE(at + koffi.offsetof(KbxQuicCloseRecord, 'count')))
        if (!count) break
        const reasonAt = at + koffi.offsetof(KbxQuicCloseRecord, 'reason')
        const reason = this.#servers.subarray(reasonAt, reasonAt + koffi.sizeof(KbxQuicCloseRecord) - koffi.offsetof(KbxQuicCloseRecord, 'reason'))
        const end = reason.indexOf(0)
        closes.push({ code: Number(this.#servers.readBigUInt64LE(at)), reason: reason.subarray(0, end < 0 ? reason.length : end).toString('utf8'), count })
      }
      out.push({
        server: `${ipv4FromNetworkOrder(u32('ip'))}:${u32('port')}`,
        state: KBX_QUIC_SERVER_STATES[u32('state')] ?? 'unused',
        connectionsOpen: u32('connections_open'),
        sent: u64('tx_sent'),
        acked: u64('tx_acked'),
        unackedAtClose: u64('tx_unacked_closed'),
        handshakes: u64('handshakes'),
        connectAttempts: u64('connect_attempts'),
        connectionsClosed: u64('connections_closed'),
        blockedStreamsNs: u64('blocked_streams_ns'),
        closes,
        closesNotKept: u64('closes_dropped'),
        latencies: readLatency(this.#servers, base + koffi.offsetof(KbxQuicServerStats, 'latency')),
        connections: [],
      })
    }
    const connSize = koffi.sizeof(KbxQuicConnInfo)
    for (let i = 0; i < connCount[0]!; i++) {
      const at = (f: string) => i * connSize + koffi.offsetof(KbxQuicConnInfo, f)
      out[this.#conns.readUInt32LE(at('server'))]?.connections.push({
        identity: this.#conns.readUInt32LE(at('identity')),
        state: KBX_QUIC_CONN_STATES[this.#conns.readUInt32LE(at('state'))] ?? 'closed',
        localPort: this.#conns.readUInt32LE(at('local_port')),
        handshakes: Number(this.#conns.readBigUInt64LE(at('handshakes'))),
        acked: Number(this.#conns.readBigUInt64LE(at('tx_acked'))),
      })
    }
    return out
  }
  get ptr(): KbxQuicFloodPtr {
    if (!this.#ptr) throw new UsageError('flooder is closed')
    return this.#ptr
  }
  /** Drives the engine for up to maxMs; true when done (count sent and acked, or stopped and drained). */
  run(maxMs: number): boolean {
    if (this.#xsk?.closed) throw new UsageError('the AF_XDP socket was closed before the flooder', { hint: 'close the Flood first' })
    const rv = libkbxQuic().kbx_quic_flood_run(this.ptr, maxMs)
    if (rv < 0) throw engineError('run QUIC flooder', rv)
    return rv === 1
  }
  stopSending(): void {
    libkbxQuic().kbx_quic_flood_stop_sending(this.ptr)
  }
  stats(): FloodStats {
    libkbxQuic().kbx_quic_flood_stats(this.ptr, this.#stats)
    return readU64Fields(this.#stats, KBX_QUIC_FLOOD_STATS_FIELDS)
  }
  /** The send->ack latencies recorded since the last call (ns, one monotonic clock; exact count, sum and extremes). */
  takeLatencies(): BucketHistogram {
    libkbxQuic().kbx_quic_flood_take_latency(this.ptr, this.#latency)
    const u64 = (field: string) => this.#latency.readBigUInt64LE(koffi.offsetof(KbxQuicLatency, field))
    const buckets = this.#latency.subarray(koffi.offsetof(KbxQuicLatency, 'buckets'))
    const counts = new BigUint64Array(buckets.buffer, buckets.byteOffset, KBX_QUIC_LATENCY_LAYOUT.length)
    return BucketHistogram.of(KBX_QUIC_LATENCY_LAYOUT, counts, { minNs: u64('min_ns'), maxNs: u64('max_ns'), sumNs: u64('sum_ns') })
  }
  close(): void {
    if (this.#ptr) libkbxQuic().kbx_quic_flood_destroy(this.#ptr)
    this.#ptr = null
  }
}

export interface SinkOptions {
  localIp?: string
  localPort: number
  maxStreamsUni?: number
  maxStreamsBidi?: number
  idleTimeoutMs?: number
  /** poll instead of sleeping for up to this long after the last packet */
  busyPollUs?: number
  /** unidirectional streams one connection may ever open; then it is closed (ngtcp2 0.12.1 frees them only so) */
  maxStreamsPerConnection?: number
  /** connections open at once (default KBX_QUIC_SINK_DEFAULT_MAX_CONNECTIONS) */
  maxConnections?: number
  /** Agave's stake-weighted QoS (kbx_quic.h "Agave's QoS"); its idle timeout is 2 s unless idleTimeoutMs says */
  agaveQos?: boolean
  /** agaveQos: the sink's capacity, streams per ms (Agave's max_streams_per_ms, default 500) */
  maxStreamsPerMs?: number
  /** agaveQos: new connections per IP per minute (default 8) */
  maxConnectionsPerIpaddrPerMin?: number
  /** agaveQos: the stake table */
  stakes?: Stakes
  alpn?: string
  identity?: Identity
  /** SO_REUSEPORT: several sinks (workers) on one port, joined with Sink.link */
  reusePort?: boolean
}

export class Sink {
  #ptr: KbxQuicSinkPtr | null
  readonly port: number
  readonly #stats = Buffer.alloc(KBX_QUIC_SINK_STATS_FIELDS.length * 8)
  private constructor(ptr: KbxQuicSinkPtr) {
    this.#ptr = ptr
    this.port = libkbxQuic().kbx_quic_sink_port(ptr)
  }
  static create(o: SinkOptions): Sink {
    const out: [KbxQuicSinkPtr | null] = [null]
    const rv = libkbxQuic().kbx_quic_sink_create(
      {
        local_ip: o.localIp ? ipv4NetworkOrder(o.localIp) : 0,
        local_port: o.localPort,
        max_streams_uni: o.maxStreamsUni ?? 0,
        max_streams_bidi: o.maxStreamsBidi ?? 0,
        idle_timeout_ms: o.idleTimeoutMs ?? 0,
        max_connections: o.maxConnections ?? 0,
        busy_poll_us: o.busyPollUs ?? 0,
        max_streams_per_connection: o.maxStreamsPerConnection ?? 0,
        agave_qos: o.agaveQos ? 1 : 0,
        max_streams_per_ms: o.maxStreamsPerMs ?? 0,
        max_connections_per_ipaddr_per_min: o.maxConnectionsPerIpaddrPerMin ?? 0,
        reuse_port: o.reusePort ? 1 : 0,
      },
      o.alpn ?? 'solana-tpu',
      o.identity?.ptr ?? null,
      out,
    )
    if (rv < 0 || !out[0]) throw engineError('create QUIC sink', rv)
    const sink = new Sink(out[0])
    if (o.stakes) {
      try {
        sink.setStakes(o.stakes)
      } catch (e) {
        sink.close()
        throw e
      }
    }
    return sink
  }
  /** Joins workers' sinks on one port (reusePort), before traffic: with agaveQos every limit then holds for them all. */
  static link(sinks: readonly Sink[]): void {
    const rv = libkbxQuic().kbx_quic_sink_link(sinks.map((s) => s.ptr), sinks.length)
    if (rv < 0) throw nativeError(rv, 'link QUIC sinks')
  }
  /** Replaces the stake table (agaveQos); connections already admitted keep their limits. */
  setStakes(stakes: Stakes): void {
    const rv = libkbxQuic().kbx_quic_sink_set_stakes(this.ptr, stakes.keys, stakes.lamports, stakes.count)
    if (rv < 0) throw nativeError(rv, 'set stakes')
  }
  get ptr(): KbxQuicSinkPtr {
    if (!this.#ptr) throw new UsageError('sink is closed')
    return this.#ptr
  }
  run(maxMs: number): void {
    const rv = libkbxQuic().kbx_quic_sink_run(this.ptr, maxMs)
    if (rv < 0) throw engineError('run QUIC sink', rv)
  }
  stats(): SinkStats {
    libkbxQuic().kbx_quic_sink_stats(this.ptr, this.#stats)
    return readU64Fields(this.#stats, KBX_QUIC_SINK_STATS_FIELDS)
  }
  /** The distinct client public keys seen (the first KBX_QUIC_SINK_PEER_KEYS). */
  peerPublicKeys(): Buffer[] {
    const out = Buffer.alloc(32 * KBX_QUIC_SINK_PEER_KEYS)
    const n = libkbxQuic().kbx_quic_sink_peer_keys(this.ptr, out, KBX_QUIC_SINK_PEER_KEYS)
    return Array.from({ length: Math.max(0, n) }, (_, i) => Buffer.from(out.subarray(i * 32, i * 32 + 32)))
  }
  /** Ed25519 public key of the most recent client certificate, or undefined when none was seen. */
  lastPeerPublicKey(): Buffer | undefined {
    const key = Buffer.alloc(32)
    return libkbxQuic().kbx_quic_sink_last_peer_key(this.ptr, key) === 1 ? key : undefined
  }
  close(): void {
    if (this.#ptr) libkbxQuic().kbx_quic_sink_destroy(this.#ptr)
    this.#ptr = null
  }
}
