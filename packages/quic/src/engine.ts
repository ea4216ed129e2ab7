import { readFileSync } from 'node:fs'
import { KbxError, NetError, SystemError, UsageError, errnoOf } from '@kbx/errors'
import { kbxAddress, koffi, nativeError, takeNativeFailure } from '@kbx/ffi'
import { parseIPv4, parseMac } from '@kbx/net'
import { BucketHistogram } from '@kbx/stats'
import type { XskSocket } from '@kbx/xsk'
import {
  KBX_QUIC_FLOOD_STATS_FIELDS,
  KBX_QUIC_IO,
  KBX_QUIC_LATENCY_LAYOUT,
  KBX_QUIC_MAX_TX_SIZE,
  KBX_QUIC_MIN_FRAME_SIZE,
  KBX_QUIC_SINK_STATS_FIELDS,
  KBX_QUIC_SINK_STREAMS_PER_CONNECTION,
  KBX_QUIC_STREAMS,
  KBX_QUIC_STREAMS_PER_CONNECTION,
  KbxQuicLatency,
  libkbxQuic,
} from './native.js'
import type { Stakes } from './qos.js'
import type { KbxQuicFloodConfigValue, KbxQuicFloodPtr, KbxQuicIdentityPtr, KbxQuicSinkPtr } from './native.js'

export { KBX_QUIC_MAX_TX_SIZE, KBX_QUIC_SINK_STREAMS_PER_CONNECTION, KBX_QUIC_STREAMS_PER_CONNECTION }

export type FloodStats = Record<(typeof KBX_QUIC_FLOOD_STATS_FIELDS)[number], number>
export type SinkStats = Record<(typeof KBX_QUIC_SINK_STATS_FIELDS)[number], number>

function readU64s<K extends string>(buf: Buffer, fields: readonly K[]): Record<K, number> {
  const out = {} as Record<K, number>
  fields.forEach((f, i) => (out[f] = Number(buf.readBigUInt64LE(i * 8))))
  return out
}

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

export interface FloodOptions {
  io: 'socket' | 'xdp'
  streams: 'uni' | 'bidi'
  localIp: string
  remoteIp: string
  remotePort: number
  localPort?: number
  connections?: number
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
  identity: Identity
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
  private constructor(ptr: KbxQuicFloodPtr, xsk: XskSocket | undefined) {
    this.#ptr = ptr
    this.#xsk = xsk
    this.localPort = libkbxQuic().kbx_quic_flood_local_port(ptr)
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
    const config: KbxQuicFloodConfigValue = {
      io: KBX_QUIC_IO[o.io],
      streams: KBX_QUIC_STREAMS[o.streams],
      local_ip: ipv4NetworkOrder(o.localIp),
      remote_ip: ipv4NetworkOrder(o.remoteIp),
      local_port: o.localPort ?? 0,
      remote_port: o.remotePort,
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
      reserved: 0,
    }
    const lens = Uint32Array.from(o.transactions.map((t) => t.length))
    const out: [KbxQuicFloodPtr | null] = [null]
    const rv = libkbxQuic().kbx_quic_flood_create(
      config,
      o.alpn ?? 'solana-tpu',
      o.identity.ptr,
      Buffer.concat(o.transactions),
      lens,
      lens.length,
      out,
    )
    if (rv < 0 || !out[0]) throw engineError('create QUIC flooder', rv)
    return new Flood(out[0], o.io === 'xdp' ? o.xsk : undefined)
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
    return readU64s(this.#stats, KBX_QUIC_FLOOD_STATS_FIELDS)
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
        reserved: 0,
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
    return readU64s(this.#stats, KBX_QUIC_SINK_STATS_FIELDS)
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
