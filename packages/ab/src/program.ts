// The XDP half of the arbitrator: loading bpf/ab_arbitrate.bpf.c and reading its counters and skew
// histogram. Layouts: bpf/include/ab_arbitrate.h.
import { BpfObject, raiseMemlockLimit, readCounters } from '@kbx/bpf'
import { UsageError } from '@kbx/errors'
import { bpfObjectPath, koffi } from '@kbx/ffi'
import { FORMAT_CODE, type FeedFormat } from './format.js'
import { configureGroupTable, fillGroupTable, type GroupTableEntry } from './group-table.js'
import { AB_SKEW_HALF, AB_SKEW_SUB_BITS, AbSkew, abLimits } from './native.js'

export { abLimits }

export const PROGRAM_NAME = 'kbx_ab_arbitrate'

export interface ArbitratorProgramOptions {
  format: FeedFormat
  /** UDP destination port range of the feed (inclusive). */
  portMin: number
  portMax: number
  /** Frames arriving on this ifindex are line B, every other one line A. */
  lineBIfindex: number
  window?: number
  resetDistance?: bigint
  /** Streams the stream table holds (default AB_DEFAULT_STREAMS). */
  maxStreams?: number
  /** Skew is sampled on one sequence number in this many (a power of two, default 8; 1 = every one). */
  skewSample?: number
  /** Benchmarks only: every packet gets a fresh sequence number (measures the first-copy path). */
  benchFreshSequence?: boolean
  /** Multicast channels: steer exactly these (interface, group, port[, source]) instead of the port range. */
  groupTable?: { channels: number; entries: GroupTableEntry[] }
}

export function validateSkewSample(n: number): number {
  const max = abLimits().max_skew_sample
  if (!Number.isInteger(n) || n < 1 || n > max || (n & (n - 1)) !== 0) {
    throw new UsageError(`--skew-sample must be a power of two from 1 to ${max}, not ${n}`, { op: 'parse --skew-sample' })
  }
  return n
}

export function validateWindow(window: number): number {
  const { min_window: min, max_window: max } = abLimits()
  if (!Number.isInteger(window) || window < min || window > max || (window & (window - 1)) !== 0) {
    throw new UsageError(`--window must be a power of two from ${min} to ${max}, not ${window}`, { op: 'parse --window' })
  }
  return window
}

export function validateMaxStreams(n: number): number {
  const max = abLimits().max_streams
  if (!Number.isInteger(n) || n < 1 || n > max) {
    throw new UsageError(`--max-streams must be from 1 to ${max}, not ${n}`, { op: 'parse --max-streams', hint: 'each stream seen costs ~64 KiB of kernel memory' })
  }
  return n
}

/** A reset distance for a window: from 2 × window to 2^31. */
export function validateResetDistance(distance: bigint, window: number): bigint {
  const max = abLimits().max_reset_distance
  if (distance < 2n * BigInt(window) || distance > max) {
    throw new UsageError(`--reset-distance must be from 2 × window (${2 * window}) to ${max}, not ${distance}`, { op: 'parse --reset-distance' })
  }
  return distance
}

/** Opens, configures and loads ab_arbitrate.o; the caller closes it. */
export function loadArbitratorProgram(opts: ArbitratorProgramOptions): BpfObject {
  raiseMemlockLimit()
  const obj = BpfObject.open(bpfObjectPath('ab_arbitrate'))
  try {
    obj.setRodata('feed_format', FORMAT_CODE[opts.format])
    obj.setRodata('feed_port_min', opts.portMin)
    obj.setRodata('feed_port_max', opts.portMax)
    obj.setRodata('line_b_ifindex', opts.lineBIfindex)
    const window = validateWindow(opts.window ?? abLimits().default_window)
    obj.setRodata('window', window)
    obj.setRodata('reset_distance', validateResetDistance(opts.resetDistance ?? abLimits().default_reset_distance, window))
    obj.setMaxEntries('streams', validateMaxStreams(opts.maxStreams ?? abLimits().default_streams))
    obj.setRodata('skew_sample_mask', BigInt(validateSkewSample(opts.skewSample ?? abLimits().default_skew_sample) - 1))
    if (opts.benchFreshSequence) obj.setRodata('bench_fresh_sequence', 1)
    if (opts.groupTable) configureGroupTable(obj, opts.groupTable.channels, opts.groupTable.entries.length)
    obj.load()
    if (opts.groupTable) fillGroupTable(obj, opts.groupTable.entries)
    return obj
  } catch (e) {
    obj.close()
    throw e
  }
}

/** The program's counters (struct ab_arbitrate_stats) summed over CPUs. */
export function readArbitratorCounters(obj: BpfObject): Record<string, bigint> {
  return readCounters(obj.map('stats'))
}

/** Per-CPU struct ab_skew values: maxima (u64 × 2), then the buckets. */
function skewPerCpu(obj: BpfObject): Buffer[] {
  return obj.map('skew').lookupPerCpu(Buffer.alloc(4)) ?? []
}

const SKEW_MAX_B_LATE = koffi.offsetof(AbSkew, 'max_b_late')
const SKEW_MAX_A_LATE = koffi.offsetof(AbSkew, 'max_a_late')
const SKEW_BUCKETS = koffi.offsetof(AbSkew, 'buckets')

/** Largest skews seen (the largest CPU's), ns. */
export function readSkewMax(obj: BpfObject): { bLateNs: bigint; aLateNs: bigint } {
  let bLateNs = 0n
  let aLateNs = 0n
  for (const cpu of skewPerCpu(obj)) {
    const b = cpu.readBigUInt64LE(SKEW_MAX_B_LATE)
    const a = cpu.readBigUInt64LE(SKEW_MAX_A_LATE)
    if (b > bLateNs) bLateNs = b
    if (a > aLateNs) aLateNs = a
  }
  return { bLateNs, aLateNs }
}

/** Representative value (ns) of a log-linear magnitude bucket: the middle of its range. */
export function skewBucketValue(index: number): number {
  if (index < 1 << AB_SKEW_SUB_BITS) return index
  const msb = (index >> AB_SKEW_SUB_BITS) + AB_SKEW_SUB_BITS - 1
  const sub = index & ((1 << AB_SKEW_SUB_BITS) - 1)
  const width = 2 ** (msb - AB_SKEW_SUB_BITS)
  return ((1 << AB_SKEW_SUB_BITS) + sub) * width + width / 2 - 0.5
}

/** Counts per signed skew (ns, B minus A arrival), ascending. */
export type SkewHistogram = { ns: number; count: number }[]

export function readSkewHistogram(obj: BpfObject): SkewHistogram {
  const perCpu = skewPerCpu(obj)
  const out: SkewHistogram = []
  for (let i = 0; i < 2 * AB_SKEW_HALF; i++) {
    let count = 0n
    for (const cpu of perCpu) count += cpu.readBigUInt64LE(SKEW_BUCKETS + i * 8)
    if (!count) continue
    const magnitude = skewBucketValue(i % AB_SKEW_HALF)
    out.push({ ns: i >= AB_SKEW_HALF ? -magnitude : magnitude, count: Number(count) })
  }
  return out.sort((a, b) => a.ns - b.ns)
}

/** Difference of two histograms (an interval's samples). */
export function subtractSkew(now: SkewHistogram, before: SkewHistogram): SkewHistogram {
  const prior = new Map(before.map((b) => [b.ns, b.count]))
  return now.map((b) => ({ ns: b.ns, count: b.count - (prior.get(b.ns) ?? 0) })).filter((b) => b.count > 0)
}

export interface SkewSummary {
  samples: number
  /** Signed µs, B minus A: positive = line B arrived later. */
  p50Us: number | null
  p90Us: number | null
  p99Us: number | null
  /** Largest magnitude, signed. */
  maxUs: number | null
}

export function summarizeSkew(h: SkewHistogram): SkewSummary {
  const samples = h.reduce((n, b) => n + b.count, 0)
  if (samples === 0) return { samples, p50Us: null, p90Us: null, p99Us: null, maxUs: null }
  const at = (q: number): number => {
    const rank = Math.ceil(q * samples)
    let seen = 0
    for (const b of h) {
      seen += b.count
      if (seen >= rank) return round(b.ns / 1000)
    }
    return round(h.at(-1)!.ns / 1000)
  }
  const first = h[0]!
  const last = h.at(-1)!
  const max = Math.abs(first.ns) > Math.abs(last.ns) ? first.ns : last.ns
  return { samples, p50Us: at(0.5), p90Us: at(0.9), p99Us: at(0.99), maxUs: round(max / 1000) }
}

function round(us: number): number {
  return Math.round(us * 1000) / 1000
}
