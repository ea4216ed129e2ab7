import * as hdr from 'hdr-histogram-js'
import { type Distribution, type LatencySummary, percentileNs, summarizeLatency } from './distribution.js'
import { type HdrConvertible, type HdrHistogram, newHdrHistogram } from './hdr.js'

type Hdr = ReturnType<typeof hdr.build>

export interface LatencyHistogramOptions {
  /** Highest value tracked without resizing, in ns; at least 60 s. Larger values still record (the histogram grows). */
  highestNs?: number
  /** Significant decimal digits kept, 1..5 (default 3). */
  significantDigits?: 1 | 2 | 3 | 4 | 5
}

const SIXTY_SECONDS_NS = 60_000_000_000

function newHdr(options: LatencyHistogramOptions): Hdr {
  return hdr.build({
    bitBucketSize: 64,
    autoResize: true,
    lowestDiscernibleValue: 1,
    highestTrackableValue: Math.max(options.highestNs ?? SIXTY_SECONDS_NS, SIXTY_SECONDS_NS),
    numberOfSignificantValueDigits: options.significantDigits ?? 3,
  })
}

function toNs(value: number | bigint): number {
  return typeof value === 'bigint' ? Number(value) : value
}

/**
 * Latency distribution recorded in nanoseconds, in TypeScript, over hdr-histogram-js: 1 ns resolution
 * floor, 3 significant digits, counts exact to 2^53. Min, max and mean are kept exactly beside it.
 * (Histograms recorded in C or XDP use kbx_histogram.h's buckets: BucketHistogram.)
 */
export class LatencyHistogram implements HdrConvertible {
  private readonly options: LatencyHistogramOptions
  private readonly h: Hdr
  private total = 0
  private sumNs = 0
  private minNs = Infinity
  private maxNs = -Infinity

  constructor(options: LatencyHistogramOptions = {}) {
    this.options = options
    this.h = newHdr(options)
  }

  get count(): number {
    return this.total
  }

  /** Records `ns` (`count` times). Negative values are recorded as 0; see signedDistribution for skew. */
  record(ns: number | bigint, count = 1): void {
    if (count <= 0) return
    let v = Math.round(toNs(ns))
    if (!(v > 0)) v = 0
    if (count === 1) this.h.recordValue(v)
    else this.h.recordValueWithCount(v, count)
    this.total += count
    this.sumNs += v * count
    if (v < this.minNs) this.minNs = v
    if (v > this.maxNs) this.maxNs = v
  }

  /** Records the first `length` values of an array (e.g. latencies a native batch call wrote). */
  recordMany(values: ArrayLike<number | bigint>, length = values.length): void {
    for (let i = 0; i < length; i++) this.record(values[i] as number | bigint)
  }

  valueAtRankNs(rank: number): number {
    const v = this.h.getValueAtPercentile((100 * (rank - 0.5)) / this.total)
    return Math.min(Math.max(v, this.minNs), this.maxNs)
  }

  /** Value at a percentile (0..100) in ns, within the exact min..max. 0 when empty. */
  percentileNs(percentile: number): number {
    return percentileNs(this, percentile)
  }

  get minValueNs(): number {
    return this.total === 0 ? 0 : this.minNs
  }

  get maxValueNs(): number {
    return this.total === 0 ? 0 : this.maxNs
  }

  get meanNs(): number {
    return this.total === 0 ? 0 : this.sumNs / this.total
  }

  summary(): LatencySummary {
    return summarizeLatency(this)
  }

  reset(): void {
    this.h.reset()
    this.total = 0
    this.sumNs = 0
    this.minNs = Infinity
    this.maxNs = -Infinity
  }

  /** Adds every recording of `other` into this histogram. */
  add(other: LatencyHistogram): void {
    if (other.total === 0) return
    this.h.add(other.h)
    this.total += other.total
    this.sumNs += other.sumNs
    this.minNs = Math.min(this.minNs, other.minNs)
    this.maxNs = Math.max(this.maxNs, other.maxNs)
  }

  /** A new histogram holding the same recordings. */
  clone(): LatencyHistogram {
    const copy = new LatencyHistogram(this.options)
    copy.add(this)
    return copy
  }

  /** A copy of the recordings as an HdrHistogram (for .hgrm and .hlog files). */
  toHdr(): HdrHistogram {
    const copy = newHdrHistogram()
    copy.add(this.h)
    return copy
  }

  toJSON(): LatencySummary {
    return this.summary()
  }
}
