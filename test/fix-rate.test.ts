// fix-tcp paced (--rate) against the test bed's acceptor: every order acked at 2000 orders/s over AF_XDP and
// over the kernel socket, and the per-order breakdown (decided → on the wire → our RX → matched) present and
// consistent: the stages add up to the order's latency, the acceptor's read → write fits inside wire → RX.
import t from 'tap'
import type { Test } from 'tap'
import { waitUntil } from '@kbx/testbed'
import { fixBed, named, nothingAttached, runFixTcp } from './testing/fix-bed.js'

t.setTimeout(180_000)

const ORDERS = 4000

function checkBreakdown(t: Test, end: Record<string, any>, label: string): void {
  const b = end.breakdownUs
  t.ok(b !== undefined, `${label}: breakdownUs in the end event`)
  t.ok(b.orders >= ORDERS * 0.95, `${label}: nearly every order stamped at every stage (${b.orders} of ${ORDERS}, ${b.unstamped} not)`)
  for (const stage of ['decidedToWire', 'wireToRx', 'rxToMatched', 'total']) {
    t.equal(b[stage].count, b.orders, `${label}: ${stage} for each stamped order`)
    t.ok(b[stage].p50 >= 0 && b[stage].p99 >= b[stage].p50, `${label}: ${stage} p50 ${b[stage].p50} µs, p99 ${b[stage].p99} µs`)
  }
  const sum = b.decidedToWire.mean + b.wireToRx.mean + b.rxToMatched.mean
  t.ok(Math.abs(sum - b.total.mean) <= 0.01 * b.total.mean + 1, `${label}: stage means add up to the total (${sum.toFixed(1)} vs ${b.total.mean} µs)`)
  // the breakdown's total is the order's latency as fix-tcp reports it, for the orders it stamped
  t.ok(Math.abs(b.total.p50 - end.latencyUs.p50) <= 0.2 * end.latencyUs.p50 + 20, `${label}: total p50 ${b.total.p50} ≈ latency p50 ${end.latencyUs.p50} µs`)
  t.ok(b.wireToRx.p50 > 0, `${label}: the network and the acceptor take time (${b.wireToRx.p50} µs p50)`)
  // never early; how late depends on the machine's load (other agents share its 2 cores): reported, not bounded
  t.equal(b.pacingLate.count, ORDERS, `${label}: pacing lateness for every order`)
  t.ok(b.pacingLate.min >= 0 && b.pacingLate.p50 >= b.pacingLate.min, `${label}: deadline → decided p50 ${b.pacingLate.p50} µs, p99 ${b.pacingLate.p99} µs`)
}

t.test('--rate 2000 over xdp and socket: every order acked, the breakdown consistent', async (t) => {
  const b = await fixBed(t, { acceptorArgs: ['--interval', '0'] })
  for (const io of ['xdp', 'socket'] as const) {
    const run = await runFixTcp(b, ['--orders', String(ORDERS), '--rate', '2000', '--reset'], io)
    t.equal(run.end.io, io)
    t.equal(run.end.orders.sent, ORDERS)
    t.equal(run.end.orders.acked, ORDERS, `${io}: every order acked`)
    t.equal(run.end.orders.outstanding, 0)
    // paced: about 2000/s over the run, never faster (a loaded machine may fall behind)
    t.ok(run.end.ordersPerSec > 800 && run.end.ordersPerSec < 2200, `${io}: ${run.end.ordersPerSec} orders/s`)
    checkBreakdown(t, run.end, io)
    if (io === 'xdp') nothingAttached(t, b, [run])
  }
  b.acceptor.child.kill('SIGINT')
  await b.acceptor.exited
  const end = named(b.acceptor, 'end')[0]?.data
  t.ok(end !== undefined, 'the acceptor ended')
  const rw = end?.readToWriteUs
  t.equal(rw.count, 2 * ORDERS, 'the acceptor timed each order it acked, read → write')
  t.ok(rw.p50 > 0 && rw.p50 < 5000, `acceptor read → write p50 ${rw.p50} µs`)
})

t.test('fix-acceptor --busy-poll answers as usual, and says it spun', async (t) => {
  const b = await fixBed(t, { acceptorArgs: ['--busy-poll', '--interval', '0'] })
  const run = await runFixTcp(b, ['--orders', '500', '--rate', '2000', '--reset', '--busy-poll'], 'xdp')
  t.equal(run.end.orders.acked, 500, 'every order acked, both ends spinning')
  checkBreakdownLite(t, run.end)
  const socket = await runFixTcp(b, ['--orders', '500', '--rate', '2000', '--busy-poll'], 'socket')
  t.equal(socket.end.orders.acked, 500, '--busy-poll over the kernel socket too')
  b.acceptor.child.kill('SIGINT')
  await waitUntil('the acceptor to end', () => named(b.acceptor, 'end').length === 1)
  t.equal(named(b.acceptor, 'end')[0]?.data.busyPoll, true)
})

t.test('fix-quickfix-acceptor --busy-poll: QuickFIX polled without a timeout answers every paced order', async (t) => {
  const b = await fixBed(t, { acceptor: 'quickfix', acceptorArgs: ['--busy-poll'] })
  const run = await runFixTcp(b, ['--orders', '1000', '--rate', '2000', '--reset'], 'xdp')
  t.equal(run.end.orders.acked, 1000, 'every order acked')
  checkBreakdownLite(t, run.end)
  b.acceptor.child.kill('SIGINT')
  await waitUntil('QuickFIX to end', () => named(b.acceptor, 'end').length === 1)
  t.equal(named(b.acceptor, 'end')[0]?.data.busyPoll, true)
  t.equal(named(b.acceptor, 'end')[0]?.data.orders, 1000)
  const ack = named(b.acceptor, 'end')[0]?.data.appToAckWrittenUs
  t.equal(ack?.count, 1000, 'QuickFIX timed each order: handed to fromApp → ack written')
  t.ok(ack?.p50 > 0 && ack?.p50 <= ack?.p99, `QuickFIX fromApp → ack written p50 ${ack?.p50} µs`)
})

function checkBreakdownLite(t: Test, end: Record<string, any>): void {
  t.ok(end.breakdownUs.orders > 0 && end.breakdownUs.total.p50 > 0, `breakdown present (${end.breakdownUs.orders} orders)`)
}
