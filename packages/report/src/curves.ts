// What the chart draws, taken from what the tools save: HdrHistograms (live or from an .hlog), .hgrm tables,
// and the latency summaries and rates of JSON lines.
import type { HdrHistogram, HgrmTable, HlogInterval, LatencySummary } from '@kbx/stats'
import type { LatencyCurve, PercentilePoint, RateSeries } from './chart.js'
import { TOP_PERCENTILE } from './chart.js'

/** 81 percentiles evenly spaced on the chart's log axis: 1/(1-p) = 10^(k/20), k = 0..80 (p = 0 … 99.99). */
export const CURVE_PERCENTILES: readonly number[] = Array.from({ length: 81 }, (_, k) => (k === 80 ? TOP_PERCENTILE : 100 * (1 - 10 ** (-k / 20))))

/** The curve of an HdrHistogram of ns values. */
export function curveOfHdr(label: string, h: HdrHistogram): LatencyCurve {
  if (h.totalCount === 0) return { label, points: [], count: 0 }
  const points = CURVE_PERCENTILES.map((percentile) => ({ percentile, valueNs: h.getValueAtPercentile(percentile) }))
  return { label, points, maxNs: h.maxValue, count: h.totalCount }
}

/** The curve of an .hgrm table whose values are in units of `valueUnitNs` (1000: µs, as the tools write them). */
export function curveOfHgrm(label: string, table: HgrmTable, valueUnitNs = 1000): LatencyCurve {
  const points: PercentilePoint[] = table.rows.filter((r) => r.percentile < 1).map((r) => ({ percentile: r.percentile * 100, valueNs: r.value * valueUnitNs }))
  return { label, points, maxNs: table.max * valueUnitNs, count: table.totalCount }
}

/** A latency summary of the JSON lines (µs): min at 0, p50, p90, p99, p99.9; max marked. */
export function curveOfSummary(label: string, s: Partial<LatencySummary> & { p50: number; p99: number }): LatencyCurve {
  const at: [number, number | undefined][] = [
    [0, s.min],
    [50, s.p50],
    [90, s.p90],
    [99, s.p99],
    [99.9, s.p999],
  ]
  const points = at.filter((e): e is [number, number] => typeof e[1] === 'number').map(([percentile, us]) => ({ percentile, valueNs: us * 1000 }))
  return { label, points, ...(typeof s.max === 'number' ? { maxNs: s.max * 1000 } : {}), ...(typeof s.count === 'number' ? { count: s.count } : {}) }
}

/** Recordings per second of each interval of a log's series. */
export function rateOfIntervals(label: string, intervals: readonly HlogInterval[]): RateSeries {
  return {
    label,
    points: intervals.filter((i) => i.endSec > i.startSec).map((i) => ({ tSec: i.endSec, perSec: i.histogram.totalCount / (i.endSec - i.startSec) })),
  }
}
