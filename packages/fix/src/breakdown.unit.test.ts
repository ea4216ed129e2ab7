import t from 'tap'
import { OrderBreakdown } from './breakdown.js'

t.test('stages of one order add up to its total', async (t) => {
  const b = new OrderBreakdown()
  b.decided(1, 1_000n)
  b.decided(2, 2_000n)
  b.onWire(5_000n)
  b.rxNs = 105_000n
  b.matched(2, 110_000n)
  b.matched(1, 111_000n)
  const s = b.summary() as { orders: number; unstamped: number; decidedToWire: { max: number; mean: number }; wireToRx: { mean: number }; rxToMatched: { mean: number }; total: { mean: number } }
  t.equal(s.orders, 2)
  t.equal(s.unstamped, 0)
  t.equal(s.decidedToWire.max, 4, 'µs: order 1 waited 4 µs for the wire')
  t.equal(s.wireToRx.mean, 100)
  t.equal(s.decidedToWire.mean + s.wireToRx.mean + s.rxToMatched.mean, s.total.mean)
})

t.test('an order without every stamp is counted apart, not recorded', async (t) => {
  const b = new OrderBreakdown()
  b.decided(1, 1_000n)
  b.rxNs = 9_000n
  b.matched(1, 10_000n) // never on the wire
  b.decided(2, 20_000n)
  b.onWire(21_000n)
  b.forget()
  b.matched(2, 30_000n) // a reconnection came between
  b.matched(3, 30_000n) // never decided here (the reflex sent it)
  t.equal(b.unstamped, 3)
  t.equal(b.stages.total.count, 0)
})

t.test('stamps out of order are refused rather than recorded negative', async (t) => {
  const b = new OrderBreakdown()
  b.decided(1, 50_000n)
  b.onWire(60_000n)
  b.rxNs = 55_000n // bytes read before the order left: not its answer's
  b.matched(1, 70_000n)
  t.equal(b.unstamped, 1)
})
