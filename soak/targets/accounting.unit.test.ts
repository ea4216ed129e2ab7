// The targets' accounting helpers with made-up tool output.
import t from 'tap'
import { gapCheck, mergeRanges } from './ab.js'
import { acceptorAcked, acceptorReceived } from './fix.js'
import { umemChecks } from './umem.js'

const r = (stream: string, from: number, to: number) => ({ stream, from, to })

t.test('mergeRanges joins adjacent ranges per stream, in order', async (t) => {
  t.same(mergeRanges([r('1001', 10, 12), r('1000', 5, 5), r('1000', 1, 4), r('1001', 14, 14)]), [r('1000', 1, 5), r('1001', 10, 12), r('1001', 14, 14)])
})

t.test('gapCheck: exact when gaps are the withheld ranges; drops explained, and only drops', async (t) => {
  const withheld = [r('1000', 10, 10), r('1000', 20, 22), r('1001', 5, 5)]
  const exact = gapCheck(withheld, withheld, 5, 5, 0)
  t.same(exact.checks.map((c) => c.ok), [true, true, true])
  // A hole at the end of one round and the start of the next is one gap event.
  const split = gapCheck([r('1000', 20, 22)], [r('1000', 20, 20), r('1000', 21, 22)], 3, 3, 0)
  t.same(split.checks.map((c) => c.ok), [true, true, true])
  // A withheld number never reported.
  const missed = gapCheck([r('1000', 10, 10)], withheld, 1, 5, 0)
  t.same(missed.checks.map((c) => c.ok), [false, true, false])
  t.same(missed.uncovered, ['1000:20-22', '1001:5-5'])
  // Two frames dropped by a socket: one next to a withheld range, one on its own.
  const dropped = gapCheck([r('1000', 9, 10), r('1000', 20, 22), r('1001', 5, 5), r('1002', 7, 7)], withheld, 7, 5, 2)
  t.same(dropped.checks.map((c) => c.ok), [true, true, true])
  t.same(dropped.extra, ['1002:7-7'])
  // A number reported in a gap, then delivered more than the window late.
  const late = gapCheck([...withheld, r('1002', 7, 7)], withheld, 6, 5, 0, 1)
  t.same(late.checks.map((c) => c.ok), [true, true, true])
  // A gap no drop explains.
  const phantom = gapCheck([...withheld, r('1002', 7, 7)], withheld, 6, 5, 0)
  t.same(phantom.checks.map((c) => c.ok), [true, true, false])
  // A gap reported twice.
  const twice = gapCheck([...withheld, r('1001', 5, 5)], withheld, 5, 5, 0)
  t.equal(twice.checks[1]!.ok, false, 'the numbers in gap events exceed lost')
})

t.test('the acceptor counts are found under the names it has or may get', async (t) => {
  const today = { connections: 1, orders: 120, acks: 119, fills: 119, rejects: 0 }
  t.equal(acceptorReceived(today), 120)
  t.equal(acceptorAcked(today), 119)
  t.equal(acceptorReceived({ orders: { received: 7, acked: 6 } }), 7)
  t.equal(acceptorAcked({ orders: { received: 7, acked: 6 } }), 6)
  t.equal(acceptorReceived({ newOrderSingles: 9 }), 9)
  t.equal(acceptorAcked({ ordersAcked: 8 }), 8)
  t.equal(acceptorReceived({ connections: 1 }), undefined)
  t.equal(acceptorAcked({ orders: 5 }), undefined, 'a bare orders count is not an acked count')
})

t.test('umemChecks: every frame accounted, a missing report fails', async (t) => {
  t.equal(umemChecks('rx', { total: 4096, free: 2048, fill: 2048, rx: 0, tx: 0, user: 0 })[0]!.ok, true)
  t.equal(umemChecks('rx', { total: 4096, free: 2047, fill: 2048, rx: 0, tx: 0, user: 0 })[0]!.ok, false)
  t.equal(umemChecks('rx', undefined)[0]!.ok, false)
})
