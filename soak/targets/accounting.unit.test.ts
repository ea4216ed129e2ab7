// The targets' accounting helpers with made-up tool output.
import t from 'tap'
import { gapCheck, lineCheck, mergeRanges, vethUniqueCheck } from './ab.js'
import { vethDrops } from '../links.js'
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

t.test('veth drops: the sender\'s tx dropped plus what the receiver\'s rx dropped counts beyond the socket\'s drops', async (t) => {
  t.same(vethDrops(2n, 10n, 10n), { senderTx: 2n, receiverRx: 10n, lost: 2n }, 'rx dropped all the socket\'s own')
  t.same(vethDrops(0n, 13n, 10n), { senderTx: 0n, receiverRx: 13n, lost: 3n }, 'three beyond the socket\'s')
  t.same(vethDrops(1n, 4n, 10n).lost, 1n, 'rx dropped below the socket\'s drops counts nothing')
})

t.test('per-line accounting: won + duplicates + stale (+ dropped on the veth pair) == sent', async (t) => {
  const counters = { won: 100, duplicatesDropped: 20, stale: 1, socketDropped: 4 }
  t.equal(lineCheck('A', counters, 121n, vethDrops(0n, 4n, 4n)).ok, true, 'no veth drops: the exact equality')
  t.equal(lineCheck('A', counters, 123n, vethDrops(0n, 4n, 4n)).ok, false, 'two frames missing and no veth drop to show for them')
  const twoDropped = lineCheck('A', counters, 123n, vethDrops(0n, 6n, 4n))
  t.same([twoDropped.ok, twoDropped.left, twoDropped.right], [true, '123', '123'], 'two frames the receiving veth dropped beyond its socket\'s')
  t.equal(lineCheck('B', counters, 123n, vethDrops(3n, 4n, 4n)).ok, false, 'too many veth drops fails too')
  t.equal(vethUniqueCheck(1000, 600, 400, 0n).check.ok, true, 'union == won A + won B')
  t.same(vethUniqueCheck(1000, 600, 398, 5n).vethUnique, 2n)
  t.equal(vethUniqueCheck(1000, 600, 398, 5n).check.ok, true, 'two numbers no copy of which arrived, five frames dropped on the pairs')
  t.equal(vethUniqueCheck(1000, 600, 398, 1n).check.ok, false, 'more unreached numbers than frames dropped')
  t.equal(vethUniqueCheck(1000, 600, 401, 5n).check.ok, false, 'more won than the union')
  const late = gapCheck([r('1000', 7, 7), r('1000', 9, 9)], [r('1000', 9, 9)], 2, 1, 0, 0, 1n)
  t.same(late.checks.map((c) => c.ok), [true, true, true], 'a gap of a number every copy of which a veth pair dropped')
})
