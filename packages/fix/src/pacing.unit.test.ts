import t from 'tap'
import { OrderPacer } from './pacing.js'

const MS = 1_000_000n

t.test('orders fall due at origin + k/rate, to the nanosecond', async (t) => {
  const p = new OrderPacer(1000, Infinity)
  t.equal(p.dueBy(5n * MS), 0, 'nothing due before the start')
  t.equal(p.deadlineNs(0), 0n, 'no deadline before the start')
  p.start(10n * MS)
  p.start(99n * MS)
  t.equal(p.originNs, 10n * MS, 'a second start keeps the origin')
  t.equal(p.dueBy(10n * MS), 1, 'order 0 at once')
  t.equal(p.dueBy(11n * MS - 1n), 1, 'order 1 not a nanosecond early')
  t.equal(p.dueBy(11n * MS), 2, 'order 1 at 1 ms')
  t.equal(p.dueBy(20n * MS + 500_000n), 11)
  t.equal(p.deadlineNs(1), 11n * MS)
  t.equal(p.deadlineNs(11), 21n * MS)
})

t.test('a deadline is never before its order is due, at rates that do not divide a second', async (t) => {
  const p = new OrderPacer(3, Infinity)
  p.start(1n)
  for (let k = 1; k < 50; k++) {
    const d = p.deadlineNs(k)
    t.equal(p.dueBy(d), k + 1, `order ${k} due at its deadline`)
    t.equal(p.dueBy(d - 1n), k, `and not a nanosecond before`)
  }
  const fast = new OrderPacer(20000, Infinity)
  fast.start(7n)
  t.equal(fast.deadlineNs(1) - fast.deadlineNs(0), 50_000n, '50 µs apart at 20000/s')
})

t.test('the limit caps what is due and ends the deadlines', async (t) => {
  const p = new OrderPacer(100, 3)
  p.start(1n)
  t.equal(p.dueBy(10n * 1000n * MS), 3)
  t.equal(p.deadlineNs(2), 1n + 20n * MS)
  t.equal(p.deadlineNs(3), 0n, 'no deadline after the last order')
})

t.test('resume continues the schedule from now, without a burst', async (t) => {
  const p = new OrderPacer(1000, Infinity)
  p.start(1n * MS)
  p.resume(5, 500n * MS)
  t.equal(p.dueBy(500n * MS), 6, 'the 6th order (index 5) is due at once, not 495 missed ones')
  t.equal(p.deadlineNs(6), 501n * MS)
})

t.test('a rate that is not a positive integer is refused', async (t) => {
  t.throws(() => new OrderPacer(0, 1), RangeError)
  t.throws(() => new OrderPacer(1.5, 1), RangeError)
})
