// The XDP half of the arbitrator: loading bpf/ab_arbitrate.bpf.c and reading its counters and skew
// histogram. Layouts: bpf/include/ab_arbitrate.h.
import { BpfObject, raiseMemlockLimit, readCounters } from '@kbx/bpf'
import { UsageError } from '@kbx/errors'
import { bpfObjectPath, koffi } from '@kbx/ffi'
import { BucketHistogram, signedDistribution, summarizeLatency } from '@kbx/stats'
import { FORMAT_CODE, type FeedFormat } from './format.js'
import { configureGroupTable, fillGroupTable, type GroupTableEntry } from './group-table.js'
import { AB_SKEW_LAYOUT, AbSkew, abLimits } from './native.js'

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
  /** First copies carry their XDP arrival time as metadata (struct ab_arrival_meta). */
  arrivalStamp?: boolean
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
    if (opts.arrivalStamp) obj.setRodata('arrival_stamp', 1)
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

/** The XDP program's skew histograms (struct ab_skew) summed over CPUs, each with its exact maximum. */
export interface Skew {
  /** ns line B arrived after line A, for numbers A won (0: the same ns) */
  bLate: BucketHistogram
  /** ns line A arrived after line B, for numbers B won */
  aLate: BucketHistogram
}

export function readSkew(obj: BpfObject): Skew {
  const perCpu = obj.map('skew').lookupPerCpu(Buffer.alloc(4)) ?? []
  const side = (buckets: 'b_late' | 'a_late', max: 'max_b_late' | 'max_a_late'): BucketHistogram => {
    const bucketsAt = koffi.offsetof(AbSkew, buckets)
    const counts = new Float64Array(AB_SKEW_LAYOUT.length)
    let maxNs = 0n
    for (const cpu of perCpu) {
      for (let i = 0; i < counts.length; i++) counts[i]! += Number(cpu.readBigUInt64LE(bucketsAt + 8 * i))
      const m = cpu.readBigUInt64LE(koffi.offsetof(AbSkew, max))
      if (m > maxNs) maxNs = m
    }
    return BucketHistogram.of(AB_SKEW_LAYOUT, counts, { maxNs })
  }
  return { bLate: side('b_late', 'max_b_late'), aLate: side('a_late', 'max_a_late') }
}

/** What was sampled after `before` (an interval). */
export function skewSince(now: Skew, before: Skew): Skew {
  return { bLate: now.bLate.since(before.bLate), aLate: now.aLate.since(before.aLate) }
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

/** Percentiles of the signed skew (B minus A); null when nothing was sampled. */
export function summarizeSkew(skew: Skew): SkewSummary {
  const s = summarizeLatency(signedDistribution(skew.bLate, skew.aLate))
  if (s.count === 0) return { samples: 0, p50Us: null, p90Us: null, p99Us: null, maxUs: null }
  return { samples: s.count, p50Us: s.p50, p90Us: s.p90, p99Us: s.p99, maxUs: Math.abs(s.min) > Math.abs(s.max) ? s.min : s.max }
}
