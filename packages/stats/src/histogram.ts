import * as hdr from 'hdr-histogram-js'

type Hdr = ReturnType<typeof hdr.build>

/** Latency percentiles in microseconds (sockperf style). All zero when nothing was recorded. */
export interface LatencySummary {
  count: number
  min: number
  mean: number
  p50: number
  p90: number
  p99: number
  p999: number
  max: number
}

/** Signed distribution (e.g. A-vs-B skew) in microseconds; negative values stay negative. */
export interface SignedLatencySummary extends LatencySummary {
  /** How many recorded values were below zero. */
  negative: number
  /** 0.1th, 1st and 10th percentiles: the negative tail. */
  p001: number
  p1: number
  p10: number
}

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

function nsToMicros(ns: number): number {
  return Math.round(ns) / 1000
}

/** Value of the `rank`-th smallest recording (1-based) of an hdr histogram. */
function valueAtRank(h: Hdr, rank: number): number {
  const total = h.totalCount
  return h.getValueAtPercentile((100 * (rank - 0.5)) / total)
}

function rankOfPercentile(percentile: number, total: number): number {
  const p = Math.min(Math.max(percentile, 0), 100)
  return Math.min(Math.max(Math.ceil((p / 100) * total - 1e-9), 1), total)
}

/**
 * Latency distribution recorded in nanoseconds over hdr-histogram-js: 1 ns resolution floor,
 * 3 significant digits, counts exact to 2^53. Min, max and mean are kept exactly beside it.
 */
export class LatencyHistogram {
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

  /** Records `ns` (`count` times). Negative values are recorded as 0; use SignedLatencyHistogram for skew. */
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

  /** Value at a percentile (0..100) in ns, within the exact min..max. 0 when empty. */
  percentileNs(percentile: number): number {
    if (this.total === 0) return 0
    const v = valueAtRank(this.h, rankOfPercentile(percentile, this.total))
    return Math.min(Math.max(v, this.minNs), this.maxNs)
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
    return {
      count: this.total,
      min: nsToMicros(this.minValueNs),
      mean: nsToMicros(this.meanNs),
      p50: nsToMicros(this.percentileNs(50)),
      p90: nsToMicros(this.percentileNs(90)),
      p99: nsToMicros(this.percentileNs(99)),
      p999: nsToMicros(this.percentileNs(99.9)),
      max: nsToMicros(this.maxValueNs),
    }
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

  toJSON(): LatencySummary {
    return this.summary()
  }
}

/**
 * A distribution that may go negative, e.g. the arrival-time skew of feed A versus feed B.
 * Negative values are kept in their own histogram of magnitudes, so resolution is relative to
 * each value's own size on both sides of zero.
 */
export class SignedLatencyHistogram {
  private readonly positive: LatencyHistogram
  /** Magnitudes of the values below zero. */
  private readonly negativeMagnitudes: LatencyHistogram

  constructor(options: LatencyHistogramOptions = {}) {
    this.positive = new LatencyHistogram(options)
    this.negativeMagnitudes = new LatencyHistogram(options)
  }

  get count(): number {
    return this.positive.count + this.negativeMagnitudes.count
  }

  record(ns: number | bigint, count = 1): void {
    const v = Math.round(toNs(ns))
    if (v < 0) this.negativeMagnitudes.record(-v, count)
    else this.positive.record(v, count)
  }

  recordMany(values: ArrayLike<number | bigint>, length = values.length): void {
    for (let i = 0; i < length; i++) this.record(values[i] as number | bigint)
  }

  /** Signed value at a percentile (0..100) in ns. 0 when empty. */
  percentileNs(percentile: number): number {
    const total = this.count
    if (total === 0) return 0
    const rank = rankOfPercentile(percentile, total)
    const negatives = this.negativeMagnitudes.count
    if (rank <= negatives) {
      // Ascending signed order walks the negative magnitudes from the largest down.
      const magnitudeRank = negatives - rank + 1
      return -this.negativeMagnitudes.percentileNs((100 * (magnitudeRank - 0.5)) / negatives)
    }
    const positiveRank = rank - negatives
    return this.positive.percentileNs((100 * (positiveRank - 0.5)) / this.positive.count)
  }

  get minValueNs(): number {
    if (this.negativeMagnitudes.count > 0) return -this.negativeMagnitudes.maxValueNs
    return this.positive.minValueNs
  }

  get maxValueNs(): number {
    if (this.positive.count > 0) return this.positive.maxValueNs
    return -this.negativeMagnitudes.minValueNs
  }

  get meanNs(): number {
    const total = this.count
    if (total === 0) return 0
    const positiveSum = this.positive.meanNs * this.positive.count
    const negativeSum = this.negativeMagnitudes.meanNs * this.negativeMagnitudes.count
    return (positiveSum - negativeSum) / total
  }

  summary(): SignedLatencySummary {
    return {
      count: this.count,
      negative: this.negativeMagnitudes.count,
      min: nsToMicros(this.minValueNs),
      mean: nsToMicros(this.meanNs),
      p001: nsToMicros(this.percentileNs(0.1)),
      p1: nsToMicros(this.percentileNs(1)),
      p10: nsToMicros(this.percentileNs(10)),
      p50: nsToMicros(this.percentileNs(50)),
      p90: nsToMicros(this.percentileNs(90)),
      p99: nsToMicros(this.percentileNs(99)),
      p999: nsToMicros(this.percentileNs(99.9)),
      max: nsToMicros(this.maxValueNs),
    }
  }

  reset(): void {
    this.positive.reset()
    this.negativeMagnitudes.reset()
  }

  add(other: SignedLatencyHistogram): void {
    this.positive.add(other.positive)
    this.negativeMagnitudes.add(other.negativeMagnitudes)
  }

  toJSON(): SignedLatencySummary {
    return this.summary()
  }
}
