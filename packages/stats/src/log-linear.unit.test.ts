import t from 'tap'
import { percentileNs, signedDistribution, summarizeLatency } from './distribution.js'
import { BucketHistogram, LogLinearLayout } from './log-linear.js'

// The C side of these functions (bpf/include/kbx_histogram.h) is compared with this layout by the
// packages' native.unit.test.ts (logLinearProbes of @kbx/ffi/testing).

const ZERO = { count: 0, min: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 }

/** A bucket array with `count` values in the bucket of each `ns`. */
function countsOf(layout: LogLinearLayout, values: [ns: number | bigint, count: number][]): Float64Array {
  const counts = new Float64Array(layout.length)
  for (const [ns, count] of values) counts[layout.index(ns)]! += count
  return counts
}

t.test('layout: contiguous buckets, exact below 2^(S+1), then at most 1/2^S of a value wide', async (t) => {
  for (const [subBits, valueBits, length] of [[3, 64, 496], [7, 64, 7424], [3, 47, 360]] as const) {
    const l = new LogLinearLayout(subBits, valueBits)
    t.equal(l.length, length, `KBX_HIST_BUCKETS(${subBits}, ${valueBits})`)
    let bad = 0
    for (let i = 0; i < l.length; i++) {
      const [lo, hi] = [l.lower(i), l.upper(i)]
      if (l.index(lo) !== i || l.index(hi) !== i) bad++
      if (i > 0 && lo !== l.upper(i - 1) + 1n) bad++
      if (i < 2 ** (subBits + 1) ? lo !== hi : (hi - lo + 1n) * (1n << BigInt(subBits)) > lo) bad++
    }
    t.equal(bad, 0, `${subBits} sub-bucket bits: every bucket's bounds index back to it, no gap, width ≤ lower / 2^${subBits}`)
    t.equal(l.lower(0), 0n)
    t.equal(l.upper(l.length - 1), (1n << BigInt(valueBits)) - 1n, 'the last bucket ends at the largest value')
  }
  const l = new LogLinearLayout(3)
  t.same([0, 15, 16, 17, 18, 31, 32].map((v) => l.index(v)), [0, 15, 16, 16, 17, 23, 24], 'exact to 15, then 2-wide, then 4-wide')
  t.same([l.lower(16), l.upper(16), l.middle(16)], [16n, 17n, 16.5])
  t.throws(() => l.index(-1), RangeError)
  t.throws(() => new LogLinearLayout(3, 47).index(2n ** 47n), RangeError)
  t.throws(() => l.lower(l.length), RangeError)
  t.throws(() => new LogLinearLayout(8, 8), RangeError)
})

t.test('decoder: empty bucket array summarises to zeros', async (t) => {
  const l = new LogLinearLayout(7)
  t.same(summarizeLatency(BucketHistogram.of(l, new Float64Array(l.length))), ZERO)
  t.same(summarizeLatency(new BucketHistogram(l)), ZERO)
  t.throws(() => BucketHistogram.of(l, new Float64Array(10)), RangeError, 'a bucket array of another layout')
})

t.test('decoder: one value, with and without the exact extremes', async (t) => {
  const l = new LogLinearLayout(7)
  const counts = countsOf(l, [[1_000_000, 1]])
  const bucket = l.index(1_000_000)
  t.same(summarizeLatency(BucketHistogram.of(l, counts, { minNs: 1_000_000n, maxNs: 1_000_000n, sumNs: 1_000_000n })), {
    count: 1, min: 1000, mean: 1000, p50: 1000, p90: 1000, p99: 1000, p999: 1000, max: 1000,
  }, 'exact extremes: every percentile is the value')
  const middle = Math.round(l.middle(bucket)) / 1000
  t.same(summarizeLatency(BucketHistogram.of(l, counts)), { count: 1, min: middle, mean: middle, p50: middle, p90: middle, p99: middle, p999: middle, max: middle }, 'no extremes: the bucket middle')
  t.ok(Math.abs(middle - 1000) / 1000 < 1 / 128, `the middle ${middle} µs is within the bucket width of 1000 µs`)
})

t.test('decoder: values at bucket bounds land in their buckets; percentiles by rank', async (t) => {
  const l = new LogLinearLayout(3)
  // 16 and 17 share bucket 16 ([16, 17]); 18 is the next one; 1024 starts [1024, 1151], 1151 ends it
  t.same([l.index(1023), l.index(1024), l.index(1151), l.index(1152)], [l.index(1024) - 1, l.index(1024), l.index(1024), l.index(1024) + 1])
  const h = BucketHistogram.of(l, countsOf(l, [[16, 50], [17, 40], [18, 9], [1024, 1]]), { minNs: 16, maxNs: 1024 })
  t.equal(h.count, 100)
  t.same([...h.counts.entries()].filter(([, c]) => c > 0), [[16, 90], [17, 9], [l.index(1024), 1]])
  t.equal(percentileNs(h, 50), 16.5, 'p50: rank 50 in [16, 17]')
  t.equal(percentileNs(h, 90), 16.5, 'p90: rank 90, the last of [16, 17]')
  t.equal(percentileNs(h, 91), 18.5, 'rank 91 is in [18, 19]')
  t.equal(percentileNs(h, 99), 18.5)
  t.equal(percentileNs(h, 99.9), 1024, 'rank 100: the middle of [1024, 1151], kept within the exact maximum')
  t.equal(h.minValueNs, 16)
  t.equal(h.maxValueNs, 1024)
  t.equal(h.meanNs, (90 * 16.5 + 9 * 18.5 + 1087.5) / 100, 'no exact sum: the mean of the middles')
})

t.test('decoder: the largest value a u64 holds', async (t) => {
  const l = new LogLinearLayout(7)
  const max = 2n ** 64n - 1n
  t.equal(l.index(max), l.length - 1)
  const h = BucketHistogram.of(l, countsOf(l, [[1000, 1], [max, 1]]), { minNs: 1000n, maxNs: max })
  t.equal(h.maxValueNs, Number(max))
  t.equal(percentileNs(h, 100), Number(max))
  t.equal(percentileNs(h, 50), 1000)
  t.equal(h.minValueNs, 1000)
})

t.test('add merges exact extremes and sums; since() is an interval; reset empties', async (t) => {
  const l = new LogLinearLayout(7)
  const total = new BucketHistogram(l)
  total.addCounts(countsOf(l, [[2000, 2]]), { minNs: 2000, maxNs: 2000, sumNs: 4000 })
  const before = BucketHistogram.of(l, total.counts, { sumNs: 4000 })
  total.addCounts(countsOf(l, [[1000, 1], [5000, 1]]), { minNs: 1000, maxNs: 5000, sumNs: 6000 })
  const p50 = Math.round(l.middle(l.index(2000))) / 1000
  t.same(summarizeLatency(total), { count: 4, min: 1, mean: 2.5, p50, p90: 5, p99: 5, p999: 5, max: 5 }, 'p90 on: [4992, 5023] kept within the exact 5000')
  const interval = BucketHistogram.of(l, total.counts, { sumNs: 10_000 }).since(before)
  t.equal(interval.count, 2, 'only what came after')
  t.equal(interval.meanNs, 3000, 'the exact sums subtract')
  t.equal(interval.valueAtRankNs(1), l.middle(l.index(1000)))
  total.addCounts(countsOf(l, [[3000, 1]]))
  const middles = [1000, 2000, 2000, 3000, 5000].map((ns) => l.middle(l.index(ns)))
  t.equal(total.meanNs, Math.min(middles.reduce((a, b) => a + b) / 5, 5000), 'an addition without a sum: the mean of the middles')
  t.equal(total.minValueNs, l.middle(l.index(1000)), 'and without extremes: no exact minimum any more')
  const merged = BucketHistogram.of(l, countsOf(l, [[700, 1]]), { minNs: 700, maxNs: 700, sumNs: 700 })
  merged.add(BucketHistogram.of(l, countsOf(l, [[900, 3]]), { minNs: 900, maxNs: 900, sumNs: 2700 }))
  t.same(summarizeLatency(merged), { count: 4, min: 0.7, mean: 0.85, p50: 0.9, p90: 0.9, p99: 0.9, p999: 0.9, max: 0.9 }, 'add(histogram) keeps the exact values')
  t.throws(() => merged.add(new BucketHistogram(new LogLinearLayout(3))), RangeError)
  total.reset()
  t.same(summarizeLatency(total), ZERO)
})

t.test('signed skew from two bucket histograms: B late and A late', async (t) => {
  const l = new LogLinearLayout(3, 47)
  const bLate = BucketHistogram.of(l, countsOf(l, [[0, 1], [4000, 7]]), { maxNs: 4000 })
  const aLate = BucketHistogram.of(l, countsOf(l, [[12, 2]]), { maxNs: 12 })
  const s = summarizeLatency(signedDistribution(bLate, aLate))
  t.equal(s.count, 10)
  t.equal(s.min, -0.012, 'the most negative: A 12 ns late, exact')
  t.equal(s.p50, Math.round(l.middle(l.index(4000))) / 1000, 'ranks 4..10 are B late by ~4 µs')
  t.equal(s.max, 4, 'exact maximum')
  t.equal(summarizeLatency(signedDistribution(new BucketHistogram(l), aLate)).max, -0.012, 'all negative: the max is the smallest magnitude')
})
