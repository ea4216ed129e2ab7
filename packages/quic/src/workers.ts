// quic-flood's and quic-sink's workers on the control path (kbx_quic.h "Workers"): native threads, one per
// engine, paused all at once whenever TypeScript reads or changes an engine; the plan that spreads a flood's
// connections, count, rate and identities over its workers; and the merge of their counters into one report.
import { KbxError, NetError, SystemError, UsageError, errnoOf } from '@kbx/errors'
import type { KbxErrorRecordValue } from '@kbx/ffi'
import { BucketHistogram, sumCounters } from '@kbx/stats'
import type { Counters } from '@kbx/stats'
import type { FloodStats, ServerStats, SinkStats } from './engine.js'
import {
  KBX_QUIC_LATENCY_LAYOUT,
  KBX_QUIC_MAX_WORKERS,
  KBX_QUIC_SERVER_CLOSES,
  KBX_QUIC_WORKER_DONE,
  KBX_QUIC_WORKERS_KIND,
  libkbxQuic,
} from './native.js'
import type { KbxQuicFloodPtr, KbxQuicSinkPtr, KbxQuicWorkersPtr } from './native.js'

/** A worker's failure as the typed error a single-threaded run would have thrown. */
function workerError(kind: 'flood' | 'sink', worker: number, rv: number, record: Partial<KbxErrorRecordValue>): KbxError {
  const errno = Math.abs(rv)
  const recorded = record.errnum === errno && record.operation
  const op = recorded ? record.operation! : `run QUIC ${kind === 'flood' ? 'flooder' : 'sink'}`
  const message = recorded ? (record.message ?? '') : ''
  if (errno === errnoOf('ETIMEDOUT') || errno === errnoOf('ECONNRESET'))
    return new NetError(`worker ${worker}: ${message || op}`, { op, errno, hint: 'is quic-sink (or the validator) running and reachable? see --alpn' })
  return new SystemError(op, errno, { detail: `worker ${worker}${message ? `: ${message}` : ''}` })
}

/** Native threads, one per engine; the engines stay the caller's (stop the workers before closing them). */
export class Workers {
  #ptr: KbxQuicWorkersPtr | null
  readonly #kind: 'flood' | 'sink'
  readonly count: number
  private constructor(ptr: KbxQuicWorkersPtr, kind: 'flood' | 'sink', count: number) {
    this.#ptr = ptr
    this.#kind = kind
    this.count = count
  }
  static start(kind: 'flood' | 'sink', engines: readonly (KbxQuicFloodPtr | KbxQuicSinkPtr)[]): Workers {
    if (engines.length < 1 || engines.length > KBX_QUIC_MAX_WORKERS) throw new UsageError(`${engines.length} workers: 1..${KBX_QUIC_MAX_WORKERS}`)
    const out: [KbxQuicWorkersPtr | null] = [null]
    const rv = libkbxQuic().kbx_quic_workers_start(KBX_QUIC_WORKERS_KIND[kind], [...engines], engines.length, out)
    if (rv < 0 || !out[0]) throw new SystemError('start QUIC workers', Math.abs(rv))
    return new Workers(out[0], kind, engines.length)
  }
  get ptr(): KbxQuicWorkersPtr {
    if (!this.#ptr) throw new UsageError('workers are stopped')
    return this.#ptr
  }
  /** Runs fn while every worker is parked between two time slices (or stopped): the engines are the caller's meanwhile. */
  paused<T>(fn: () => T): T {
    if (!this.#ptr) return fn()
    const lib = libkbxQuic()
    lib.kbx_quic_workers_pause(this.ptr)
    try {
      return fn()
    } finally {
      lib.kbx_quic_workers_resume(this.ptr)
    }
  }
  /** 'done' once every worker's engine is done (a flood's count acked, or stopped and drained); throws a worker's failure. */
  check(): 'running' | 'done' {
    let done = 0
    for (let i = 0; i < this.count; i++) {
      const record: Partial<KbxErrorRecordValue> = {}
      const status = libkbxQuic().kbx_quic_workers_status(this.ptr, i, record)
      if (status < 0) throw workerError(this.#kind, i, status, record)
      if (status === KBX_QUIC_WORKER_DONE) done++
    }
    return done === this.count ? 'done' : 'running'
  }
  /** Joins the threads: nothing runs the engines any more (their final counters stay still). */
  stop(): void {
    if (this.#ptr) libkbxQuic().kbx_quic_workers_stop(this.#ptr)
    this.#ptr = null
  }
}

/** total in `parts` shares, as even as integers allow, the larger ones first. */
export function splitEvenly(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0))
}

/** What each worker of a flood does: its connections per server, its share of --count and --rate, its first identity. */
export interface WorkerShare {
  connections: number
  count: number
  rate: number
  /** the flood's connection k of a server presents identity k % identities: this worker's first connection's k */
  identityOffset: number
}

/**
 * Spreads --connections (per server), --count and --rate over the workers; fan-out keeps its meaning over
 * the whole flood (all: each worker sends its share of the count to every server; spread: each round-robins).
 */
export function floodWorkerShares(o: { workers: number; connections: number; count: number; rate: number }): WorkerShare[] {
  const n = o.workers
  if (!Number.isInteger(n) || n < 1 || n > KBX_QUIC_MAX_WORKERS) throw new UsageError(`--workers ${n}: 1..${KBX_QUIC_MAX_WORKERS}`)
  if (o.connections < n) throw new UsageError(`--connections ${o.connections} over --workers ${n}: every worker needs a connection (give --connections ${n} or more)`)
  if (o.count > 0 && o.count < n) throw new UsageError(`--count ${o.count} over --workers ${n}: every worker needs a transaction (0, or ${n} or more)`)
  if (o.rate > 0 && o.rate < n) throw new UsageError(`--rate ${o.rate} over --workers ${n}: every worker needs a share (0, or ${n} or more)`)
  const connections = splitEvenly(o.connections, n)
  const counts = splitEvenly(o.count, n)
  const rates = splitEvenly(o.rate, n)
  let offset = 0
  return connections.map((c, i) => {
    const share = { connections: c, count: counts[i]!, rate: rates[i]!, identityOffset: offset }
    offset += c
    return share
  })
}

/** list rotated left by `by`: element i is list[(by + i) % length]. */
export function rotate<T>(list: readonly T[], by: number): T[] {
  return list.map((_, i) => list[(by + i) % list.length]!)
}

/** The workers' flood counters as one: sums, except the round-trip times (min, mean by open connection) and the latest values. */
export function mergeFloodStats(stats: readonly FloodStats[]): FloodStats {
  if (stats.length === 0) throw new UsageError('no worker stats to merge')
  // every field a number: the sums of the counters, the others set below
  const total = sumCounters(stats as unknown as Counters[]) as unknown as FloodStats
  const open = stats.filter((s) => s.connections_open > 0)
  const mins = open.map((s) => s.rtt_min_ns).filter((v) => v > 0)
  total.rtt_min_ns = mins.length ? Math.min(...mins) : 0
  total.rtt_smoothed_ns = total.connections_open ? Math.round(open.reduce((sum, s) => sum + s.rtt_smoothed_ns * s.connections_open, 0) / total.connections_open) : 0
  total.rtt_latest_ns = open[0]?.rtt_latest_ns ?? 0
  total.handshake_ns = stats.find((s) => s.handshake_ns > 0)?.handshake_ns ?? 0
  total.last_close_error = stats.find((s) => s.last_close_error > 0)?.last_close_error ?? 0
  return total
}

/** A server's counters that add up over workers. */
const SERVER_SUMMED = ['connectionsOpen', 'sent', 'acked', 'unackedAtClose', 'handshakes', 'connectAttempts', 'connectionsClosed', 'blockedStreamsNs', 'closesNotKept'] as const

const SERVER_STATE_ORDER: readonly ServerStats['state'][] = ['unused', 'removed', 'removing', 'active']

/** Each server's counters over every worker (each worker has connections to every server): by address, in first-seen order. */
export function mergeServerStats(perWorker: readonly (readonly ServerStats[])[]): ServerStats[] {
  const merged = new Map<string, ServerStats>()
  for (const servers of perWorker) {
    for (const s of servers) {
      const m = merged.get(s.server)
      if (!m) {
        const latencies = new BucketHistogram(KBX_QUIC_LATENCY_LAYOUT)
        latencies.add(s.latencies)
        merged.set(s.server, { ...s, closes: s.closes.map((c) => ({ ...c })), connections: [...s.connections], latencies })
        continue
      }
      if (SERVER_STATE_ORDER.indexOf(s.state) > SERVER_STATE_ORDER.indexOf(m.state)) m.state = s.state
      for (const k of SERVER_SUMMED) m[k] += s[k]
      for (const c of s.closes) {
        const same = m.closes.find((o) => o.code === c.code && o.reason === c.reason)
        if (same) same.count += c.count
        else if (m.closes.length < KBX_QUIC_SERVER_CLOSES) m.closes.push({ ...c })
        else m.closesNotKept += c.count
      }
      m.latencies.add(s.latencies)
      m.connections.push(...s.connections)
    }
  }
  return [...merged.values()]
}

/** Counters of the sink's shared QoS state: every worker reports the same value. */
const SINK_SHARED = ['staked_stream_load_ema', 'staked_throttling_enabled'] as const

/** The sinks' counters as one: sums, except the shared QoS load (the same in every worker) and the last admitted grant. */
export function mergeSinkStats(stats: readonly SinkStats[]): SinkStats {
  if (stats.length === 0) throw new UsageError('no worker stats to merge')
  const total = sumCounters(stats as unknown as Counters[]) as unknown as SinkStats
  for (const k of SINK_SHARED) total[k] = Math.max(...stats.map((s) => s[k]))
  total.last_admitted_max_streams = stats.find((s) => s.last_admitted_max_streams > 0)?.last_admitted_max_streams ?? 0
  return total
}
