// The one latency report of kbx: whatever recorded the values (hdr-histogram-js in TypeScript, the
// kbx_histogram.h buckets of an XDP program or of libkbx), percentiles come out of summarizeLatency.

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

/** A recorded distribution of nanosecond values, as summarizeLatency reads it. */
export interface Distribution {
  readonly count: number
  /** 0 when empty, like the maximum and the mean. */
  readonly minValueNs: number
  readonly maxValueNs: number
  readonly meanNs: number
  /** Value of the `rank`-th smallest recording, 1 ≤ rank ≤ count, within minValueNs..maxValueNs. */
  valueAtRankNs(rank: number): number
}

/** 1-based rank of a percentile (0..100) among `total` values: the smallest rank covering it. */
export function rankOfPercentile(percentile: number, total: number): number {
  const p = Math.min(Math.max(percentile, 0), 100)
  return Math.min(Math.max(Math.ceil((p / 100) * total - 1e-9), 1), total)
}

/** Value at a percentile (0..100) in ns; 0 when empty. */
export function percentileNs(d: Distribution, percentile: number): number {
  return d.count === 0 ? 0 : d.valueAtRankNs(rankOfPercentile(percentile, d.count))
}

function nsToMicros(ns: number): number {
  return Math.round(ns) / 1000
}

export function summarizeLatency(d: Distribution): LatencySummary {
  return {
    count: d.count,
    min: nsToMicros(d.minValueNs),
    mean: nsToMicros(d.meanNs),
    p50: nsToMicros(percentileNs(d, 50)),
    p90: nsToMicros(percentileNs(d, 90)),
    p99: nsToMicros(percentileNs(d, 99)),
    p999: nsToMicros(percentileNs(d, 99.9)),
    max: nsToMicros(d.maxValueNs),
  }
}

/**
 * A signed distribution (e.g. the A-vs-B skew) from two of magnitudes: the values at or above zero and
 * the magnitudes of those below it. Ranks ascend through the negative side from its largest magnitude.
 */
export function signedDistribution(nonNegative: Distribution, negativeMagnitudes: Distribution): Distribution {
  const negate = (ns: number) => (ns === 0 ? 0 : -ns) // no -0 in the JSON
  const negatives = negativeMagnitudes.count
  const count = nonNegative.count + negatives
  return {
    count,
    minValueNs: negatives > 0 ? negate(negativeMagnitudes.maxValueNs) : nonNegative.minValueNs,
    maxValueNs: nonNegative.count > 0 || negatives === 0 ? nonNegative.maxValueNs : negate(negativeMagnitudes.minValueNs),
    meanNs: count === 0 ? 0 : (nonNegative.meanNs * nonNegative.count - negativeMagnitudes.meanNs * negatives) / count,
    valueAtRankNs: (rank) =>
      rank <= negatives ? negate(negativeMagnitudes.valueAtRankNs(negatives - rank + 1)) : nonNegative.valueAtRankNs(rank - negatives),
  }
}
