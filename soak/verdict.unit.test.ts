// The verdict's arithmetic with made-up samples: a verdict that cannot fail proves nothing.
import t from 'tap'
import { DEFAULT_MEMORY_POLICY, afterWarmup, check, judgeMemory, leastSquares, makeVerdict, warmupSeconds } from './verdict.js'
import type { RssPoint } from './verdict.js'

/** Samples every `every` s for `seconds` s of rss(t). */
function series(seconds: number, every: number, rss: (t: number) => number, segment?: (t: number) => number): RssPoint[] {
  const points: RssPoint[] = []
  for (let t = 0; t <= seconds + 1e-9; t += every) points.push({ t, rssMB: rss(t), ...(segment ? { segment: segment(t) } : {}) })
  return points
}

/** Deterministic noise in [-amp, amp]. */
function noise(amp: number, seed = 1): (t: number) => number {
  return (t) => amp * Math.sin(t * 12.9898 + seed * 78.233) * Math.cos(t * 4.1414 + seed)
}

t.test('least squares: exact lines, a single point, no points', async (t) => {
  const line = leastSquares(series(60, 5, (s) => 100 + 0.5 * s))
  t.equal(Math.round(line.slope * 1e9) / 1e9, 0.5)
  t.equal(Math.round(line.intercept * 1e9) / 1e9, 100)
  t.same(leastSquares([{ t: 3, rssMB: 7 }]), { slope: 0, intercept: 7 })
  t.same(leastSquares([]), { slope: 0, intercept: 0 })
})

t.test('least squares over segments: each process its own level, one slope', async (t) => {
  // Two processes one after the other, each flat; the second starts 80 MB lower: no growth.
  const flat = series(100, 5, (s) => (s < 50 ? 300 : 220), (s) => (s < 50 ? 1 : 2))
  t.equal(Math.abs(leastSquares(flat).slope) < 1e-9, true, 'a lower restart is not a fall')
  t.ok(leastSquares(flat.map(({ t, rssMB }) => ({ t, rssMB }))).slope < -1, 'without segments it would be')
  // Each grows 1 MB/s within its life: the pooled slope finds it.
  const growing = series(100, 5, (s) => (s < 50 ? 200 + s : 150 + (s - 50)), (s) => (s < 50 ? 1 : 2))
  t.equal(Math.round(leastSquares(growing).slope * 1e9) / 1e9, 1)
})

t.test('warm-up: 20% of the run, at least 10 s; later processes warm up too', async (t) => {
  t.equal(warmupSeconds(30), 10)
  t.equal(warmupSeconds(600), 120)
  const points = series(100, 10, () => 1, (s) => (s < 60 ? 1 : 2))
  t.same(afterWarmup(points, 20, 10).map((p) => p.t), [20, 30, 40, 50, 70, 80, 90, 100], 'the second process\'s first sample (t=60) is its warm-up')
})

t.test('flat memory passes', async (t) => {
  const m = judgeMemory('tool', series(600, 5, () => 120), warmupSeconds(600))
  t.equal(m.pass, true)
  t.equal(m.slopeMBPerMin, 0)
  t.equal(m.samples, 97, 'samples from 120 s on')
})

t.test('steady growth fails, above the limit by rate and by total', async (t) => {
  // 2 MB/min over ten minutes: 16 MB after warm-up.
  const m = judgeMemory('quic-sink', series(600, 5, (s) => 80 + (2 * s) / 60), warmupSeconds(600))
  t.equal(m.pass, false)
  t.equal(m.slopeMBPerMin, 2)
  t.match(m.reason, /quic-sink: RSS grows 2 MB\/min after warm-up \(limit 1 MB\/min\)/)
  // quic-sink's leak as measured: 85 MB/s.
  const leak = judgeMemory('quic-sink', series(30, 2, (s) => 77 + 85 * s), warmupSeconds(30))
  t.equal(leak.pass, false)
  t.equal(leak.slopeMBPerMin, 5100)
  // Just under the limit passes.
  t.equal(judgeMemory('x', series(600, 5, (s) => 80 + (0.9 * s) / 60), warmupSeconds(600)).pass, true)
})

t.test('noise with a warm-up spike: the spike is excluded, the noise does not fail a long run', async (t) => {
  // Starts at 100, jumps to 180 during the first 30 s (heap growing, plan built), settles at 150 ± 2.
  const rss = (s: number) => (s < 30 ? 100 + (80 * s) / 30 : 150 + noise(2)(s))
  const m = judgeMemory('ab-feed', series(600, 5, rss), warmupSeconds(600))
  t.equal(m.pass, true, `slope ${m.slopeMBPerMin} MB/min`)
  t.ok(Math.abs(m.slopeMBPerMin) < 0.1)
  // Without the warm-up the spike reads as growth.
  const noWarmup = judgeMemory('ab-feed', series(60, 5, rss), 0, { ...DEFAULT_MEMORY_POLICY, warmupMinSec: 0 })
  t.equal(noWarmup.pass, false, `without a warm-up: ${noWarmup.slopeMBPerMin} MB/min`)
  // The same noise on top of a real 3 MB/min leak still fails.
  const leaking = judgeMemory('ab-feed', series(600, 5, (s) => rss(s) + (3 * s) / 60), warmupSeconds(600))
  t.equal(leaking.pass, false)
  t.ok(leaking.slopeMBPerMin > 2.5 && leaking.slopeMBPerMin < 3.5, `${leaking.slopeMBPerMin}`)
})

t.test('a short run: growth within the noise floor passes, more fails', async (t) => {
  // 30 s, sampled every 2 s: 20 s judged. 6 MB/min = 2 MB in 20 s, under the 3 MB floor.
  const small = judgeMemory('fix-tcp', series(30, 2, (s) => 100 + (6 * s) / 60), warmupSeconds(30))
  t.equal(small.pass, true, `${small.growthMB} MB`)
  // 30 MB/min = 10 MB in 20 s: a leak even a short run shows.
  const big = judgeMemory('fix-tcp', series(30, 2, (s) => 100 + (30 * s) / 60), warmupSeconds(30))
  t.equal(big.pass, false)
})

t.test('too few samples after warm-up is a fail, not a pass', async (t) => {
  const m = judgeMemory('x', series(12, 5, () => 100), warmupSeconds(12))
  t.equal(m.pass, false)
  t.match(m.reason, /only 1 RSS samples after the 10 s warm-up/)
})

t.test('checks compare exactly, bigints and numbers alike; missing values fail', async (t) => {
  t.equal(check('a == b', 12345678901234567890n, '12345678901234567890').ok, true)
  t.equal(check('a == b', 3, 3n).ok, true)
  t.equal(check('a == b', 3, 4).ok, false)
  t.equal(check('a == b', undefined, undefined).ok, false, 'two missing values are not equal')
})

t.test('the verdict: pass only when memory, accounting and everything else pass', async (t) => {
  const flat = series(60, 5, () => 100)
  const growing = series(60, 5, (s) => 100 + s)
  const good = makeVerdict({ target: 'ab', seconds: 60, rss: { arb: flat, feed: flat }, checks: [check('delivered == union', 10, 10)] })
  t.equal(good.pass, true)
  t.same(good.reasons, [])
  t.same(good.memoryMBPerMin, { arb: 0, feed: 0 })
  t.equal(good.accounting.exact, true)

  const leaky = makeVerdict({ target: 'quic', seconds: 60, rss: { flood: flat, sink: growing }, checks: [check("acked == sink's", 10, 10)] })
  t.equal(leaky.pass, false)
  t.equal(leaky.accounting.exact, true, 'accounting can be exact while memory fails')
  t.match(leaky.reasons, [/^sink: RSS grows 60 MB\/min/])

  const inexact = makeVerdict({ target: 'fix', seconds: 60, rss: { a: flat }, checks: [check('sent == acked', 10, 9)] })
  t.equal(inexact.pass, false)
  t.same(inexact.reasons, ['accounting: sent == acked does not hold: 10 ≠ 9'])

  const crashed = makeVerdict({ target: 'xsk', seconds: 60, rss: { a: flat }, checks: [check('x', 1, 1)], problems: ['xsk-demo-rx exited 1'] })
  t.equal(crashed.pass, false)
  t.same(crashed.reasons, ['xsk-demo-rx exited 1'])

  const nothing = makeVerdict({ target: 'xsk', seconds: 60, rss: {}, checks: [] })
  t.equal(nothing.pass, false)
  t.same(nothing.reasons, ['no process was sampled', 'accounting: no check could be made'])
})
