import t from 'tap'
import { RateMeter, sumCounters } from './rate.js'

t.test('deltas and per-second rates between snapshots; bigint stays bigint', async (t) => {
  let now = 1_000_000_000n
  const meter = new RateMeter<{ packets: bigint; bytes: number }>({}, { now: () => now })
  now += 500_000_000n
  const first = meter.sample({ packets: 1000n, bytes: 64_000 })
  t.equal(first.elapsedNs, 500_000_000n)
  t.equal(first.seconds, 0.5)
  t.equal(first.deltas.packets, 1000n)
  t.equal(first.deltas.bytes, 64_000)
  t.equal(first.rates.packets, 2000)
  t.equal(first.rates.bytes, 128_000)
  now += 2_000_000_000n
  const second = meter.sample({ packets: 2n ** 64n - 1n, bytes: 64_000 })
  t.equal(second.deltas.packets, 2n ** 64n - 1n - 1000n, 'no precision lost on the delta')
  t.equal(second.deltas.bytes, 0)
  t.equal(second.rates.bytes, 0)
  t.equal(second.totals.packets, 2n ** 64n - 1n)
  t.equal(meter.elapsedTotalNs(), 2_500_000_000n)
})

t.test('initial values, a counter reset counts from zero, zero elapsed gives rate 0', async (t) => {
  let now = 0n
  const meter = new RateMeter<{ n: number }>({ n: 10 }, { now: () => now })
  now = 1_000_000_000n
  t.equal(meter.sample({ n: 15 }).deltas.n, 5)
  now = 2_000_000_000n
  t.equal(meter.sample({ n: 3 }).deltas.n, 3, 'went down: treated as restarted from 0')
  t.equal(meter.sample({ n: 4 }).rates.n, 0)
})

t.test('real clock moves forward', async (t) => {
  const meter = new RateMeter()
  await new Promise((r) => setTimeout(r, 20))
  const s = meter.sample({ x: 1n })
  t.ok(s.elapsedNs >= 15_000_000n, `elapsed ${s.elapsedNs}`)
  t.ok(s.rates.x! > 0)
})

t.test('sumCounters adds per key; bigint wins when types mix', async (t) => {
  t.same(sumCounters([{ a: 1, b: 2n }, { a: 2, b: 3 }, { c: 1 }]), { a: 3, b: 5n, c: 1 })
})
