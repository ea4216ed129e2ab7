import t from 'tap'
import { percentileNs, signedDistribution, summarizeLatency } from './distribution.js'
import { LatencyHistogram } from './histogram.js'

function within(t: { ok(v: boolean, m: string): unknown }, actual: number, expected: number, relative: number, what: string) {
  t.ok(Math.abs(actual - expected) <= Math.abs(expected) * relative, `${what}: ${actual} ≈ ${expected} (±${relative * 100}%)`)
}

t.test('empty histogram summarises to zeros', async (t) => {
  t.same(new LatencyHistogram().summary(), { count: 0, min: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 })
})

t.test('uniform 1..100000 ns: percentiles in microseconds within 3 significant digits', async (t) => {
  const h = new LatencyHistogram()
  for (let ns = 1; ns <= 100_000; ns++) h.record(ns)
  const s = h.summary()
  t.equal(s.count, 100_000)
  t.equal(s.min, 0.001)
  t.equal(s.max, 100)
  t.equal(s.mean, 50.001, 'mean rounded to the nanosecond')
  within(t, s.p50, 50, 1e-3, 'p50')
  within(t, s.p90, 90, 1e-3, 'p90')
  within(t, s.p99, 99, 1e-3, 'p99')
  within(t, s.p999, 99.9, 1e-3, 'p999')
  t.ok(s.p50 <= s.p90 && s.p90 <= s.p99 && s.p99 <= s.p999 && s.p999 <= s.max, 'monotonic')
})

t.test('bigint and number inputs, counts, 60 s and beyond', async (t) => {
  const h = new LatencyHistogram()
  h.record(1500n)
  h.record(1500, 3)
  h.record(60_000_000_000n)
  h.record(120_000_000_000)
  t.equal(h.count, 6)
  const s = h.summary()
  t.equal(s.min, 1.5)
  t.equal(s.p50, 1.5)
  t.equal(s.max, 120_000_000)
  within(t, h.percentileNs(100 * 5 / 6), 60e9, 1e-3, '5th of 6 is 60 s')
})

t.test('negative values in the unsigned histogram record as 0', async (t) => {
  const h = new LatencyHistogram()
  h.record(-5)
  h.record(10)
  t.equal(h.summary().min, 0)
  t.equal(h.summary().max, 0.01)
})

t.test('add merges recordings, reset empties, clone copies', async (t) => {
  const a = new LatencyHistogram()
  const b = new LatencyHistogram()
  for (let i = 0; i < 100; i++) a.record(1000)
  for (let i = 0; i < 100; i++) b.record(3000)
  a.add(b)
  t.equal(a.count, 200)
  t.equal(a.summary().mean, 2)
  t.equal(a.summary().min, 1)
  t.equal(a.summary().max, 3)
  t.equal(a.summary().p90, 3)
  const c = a.clone()
  a.reset()
  t.equal(a.count, 0)
  t.equal(a.summary().max, 0)
  t.equal(c.count, 200)
  a.record(7000)
  t.same([a.summary().min, a.summary().max], [7, 7], 'min/max start over after reset')
})

t.test('recordMany over a typed array prefix', async (t) => {
  const h = new LatencyHistogram()
  h.recordMany(new BigUint64Array([100n, 200n, 300n, 999999n]), 3)
  t.equal(h.count, 3)
  t.equal(h.summary().max, 0.3)
})

t.test('toJSON is the summary', async (t) => {
  const h = new LatencyHistogram()
  h.record(2000)
  t.same(JSON.parse(JSON.stringify({ h })).h, h.summary())
})

/** A signed distribution of `values` over two hdr histograms (values at or above zero, magnitudes below). */
function signed(values: Iterable<[ns: number, count: number]>) {
  const nonNegative = new LatencyHistogram()
  const negativeMagnitudes = new LatencyHistogram()
  for (const [ns, count] of values) {
    if (ns < 0) negativeMagnitudes.record(-ns, count)
    else nonNegative.record(ns, count)
  }
  return signedDistribution(nonNegative, negativeMagnitudes)
}

t.test('signed distribution: symmetric skew around zero', async (t) => {
  const d = signed(Array.from({ length: 20_001 }, (_, i) => [i - 10_000, 1]))
  const s = summarizeLatency(d)
  t.equal(s.count, 20_001)
  t.equal(s.min, -10)
  t.equal(s.max, 10)
  t.equal(s.p50, 0)
  t.equal(s.mean, 0)
  within(t, percentileNs(d, 1) / 1000, -9.8, 2e-3, 'p1')
  within(t, percentileNs(d, 10) / 1000, -8, 2e-3, 'p10')
  within(t, s.p90, 8, 2e-3, 'p90')
  within(t, s.p99, 9.8, 2e-3, 'p99')
  within(t, percentileNs(d, 0.1) / 1000, -9.98, 2e-3, 'p0.1')
  within(t, s.p999, 9.98, 2e-3, 'p99.9')
  const order = [s.min, percentileNs(d, 0.1) / 1000, percentileNs(d, 1) / 1000, percentileNs(d, 10) / 1000, s.p50, s.p90, s.p99, s.p999, s.max]
  t.same([...order].sort((x, y) => x - y), order, 'percentiles ascend')
})

t.test('signed distribution: all negative, then mixed, then empty', async (t) => {
  const s = summarizeLatency(signed([[-5000, 1], [-1000, 3]]))
  t.same([s.count, s.min, s.max, s.p50, s.mean], [4, -5, -1, -1, -2])
  t.equal(signed([[-5000, 1], [-1000, 3]]).valueAtRankNs(1), -5000, 'rank 1 is the most negative')
  const mixed = signed([[-5000, 1], [-1000, 3], [4000, 4]])
  t.equal(summarizeLatency(mixed).max, 4)
  t.equal(summarizeLatency(mixed).p50, -1, '4th of 8 values is still negative')
  t.equal(percentileNs(mixed, 62.5), 4000)
  t.same(summarizeLatency(signed([])), { count: 0, min: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 })
})
