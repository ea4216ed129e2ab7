// fix-tcp's order lifecycle and throttle against QuickFIX (native/build/fix-quickfix-acceptor) over --io xdp and
// --io socket: with cancel and replace ratios every ClOrdID ends in a final state (filled or canceled, each
// replaced one replaced) and the session logs out cleanly; with --max-msg-rate 100 QuickFIX's message log shows
// no second (by the SendingTime we wrote) with more than 100 application messages from us; status requests
// answered for FIX.4.4 (ExecType I) and 4.2 (ExecTransType 3) without moving an order.
import { join } from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import { waitUntil } from '@kbx/testbed'
import { appMessagesPerSecond, fixBed, named, nothingAttached, runFixTcp } from './testing/fix-bed.js'
import type { FixBed } from './testing/fix-bed.js'

async function cleanLogout(t: Test, b: FixBed, run: { end: Record<string, any> }): Promise<void> {
  t.equal(run.end.closed, 'logout', 'the run ended with a Logout exchange')
  await waitUntil('QuickFIX to log the session out', () => named(b.acceptor, 'logout').length >= 1)
  const logout = named(b.acceptor, 'logout')[0]
  t.equal(logout?.data.initiatedBy, 'peer', 'QuickFIX saw our Logout')
  t.notOk(logout?.data.textSent, 'and answered it without complaint')
  t.equal(named(b.acceptor, 'admin').filter((e) => e.data.msgType === '3').length, 0, 'no session Reject either way')
  t.equal(run.end.session.rejectsReceived, 0)
}

/** Every chain of ClOrdIDs ended filled or canceled; nothing new, pending or unknown is left. */
function everyOrderFinal(t: Test, b: FixBed, end: Record<string, any>): void {
  const l = end.lifecycle
  const o = end.orders
  t.same({ new: l.new, partiallyFilled: l.partiallyFilled, pending: l.pending, unknown: l.unknown, requestsTimedOut: l.requestsTimedOut }, { new: 0, partiallyFilled: 0, pending: 0, unknown: 0, requestsTimedOut: 0 }, 'no ClOrdID left resting or waiting, none unknown')
  t.equal(l.filled + l.canceled + l.rejected, o.sent, `each of the ${o.sent} orders ended filled (${l.filled}) or canceled (${l.canceled})`)
  t.ok(l.canceled > 0 && l.replaced > 0, `cancels (${l.canceled}) and replaces (${l.replaced}) happened`)
  t.equal(l.replaced + l.cancelRejects, o.replacesSent + o.cancelsSent - l.canceled, 'every replace request replaced its order or was refused')
  t.equal(named(b.acceptor, 'cancel').length, l.canceled, 'QuickFIX canceled as many orders as we count canceled')
  t.equal(named(b.acceptor, 'replace').length, l.replaced, 'and replaced as many')
  t.equal(named(b.acceptor, 'cancel-reject').length, l.cancelRejects, 'and refused as many requests (orders it had filled already)')
}

t.test('--io xdp, paced: cancel and replace ratios; every ClOrdID final, clean logout', async (t) => {
  const b = await fixBed(t, { acceptor: 'quickfix', acceptorArgs: ['--fill-every', '2'] })
  const run = await runFixTcp(b, ['--orders', '200', '--rate', '2000', '--cancel-ratio', '0.5', '--replace-ratio', '0.5', '--reset'], 'xdp')
  t.equal(run.end.orders.sent, 200)
  t.equal(run.end.orders.acked, 200)
  t.equal(run.end.reflex?.sent ?? 0, 0, 'the reflex sent nothing (off with an amend policy)')
  everyOrderFinal(t, b, run.end)
  t.comment(JSON.stringify({ orders: run.end.orders, lifecycle: run.end.lifecycle }))
  t.equal(run.end.lifecycle.filled, 100, 'QuickFIX filled every second order')
  await cleanLogout(t, b, run)
  nothingAttached(t, b, [run])
})

t.test('--io socket, one at a time, nothing filled: cancels and replaces; every ClOrdID final', async (t) => {
  const b = await fixBed(t, { acceptor: 'quickfix', acceptorArgs: ['--fill-every', '0'] })
  const run = await runFixTcp(b, ['--orders', '60', '--cancel-ratio', '0.6', '--replace-ratio', '0.4', '--reset'], 'socket')
  t.equal(run.end.orders.sent, 60)
  everyOrderFinal(t, b, run.end)
  t.equal(run.end.lifecycle.canceled, 60, 'nothing filled: every order canceled in the end')
  t.equal(run.end.lifecycle.cancelRejects, 0)
  await cleanLogout(t, b, run)
})

t.test('--max-msg-rate 100 (queue): no second with more than 100 application messages at QuickFIX', async (t) => {
  const b = await fixBed(t, { acceptor: 'quickfix' })
  const run = await runFixTcp(b, ['--orders', '300', '--rate', '1000', '--max-msg-rate', '100', '--reset'], 'xdp')
  t.equal(run.end.orders.sent, 300)
  t.equal(run.end.orders.acked, 300, 'every order went out in the end and was acked')
  t.equal(run.end.throttle.mode, 'queue')
  t.ok(run.end.throttle.queued > 0, `orders were held (${run.end.throttle.queued})`)
  t.equal(run.end.throttle.released, run.end.throttle.queued, 'every held order released')
  t.equal(run.end.throttle.rejected, 0)
  t.comment(JSON.stringify({ throttle: run.end.throttle }))
  const perSecond = appMessagesPerSecond(b)
  const counts = [...perSecond.values()]
  t.equal(counts.reduce((a, n) => a + n, 0), 300, 'QuickFIX logged all 300 orders')
  t.ok(perSecond.size >= 3, `spread over ${perSecond.size} seconds`)
  t.ok(Math.max(...counts) <= 100, `at most 100 in any second: ${JSON.stringify(Object.fromEntries(perSecond))}`)
  await cleanLogout(t, b, run)
  nothingAttached(t, b, [run])
})

t.test('--max-msg-rate 100 --throttle-mode reject: orders over the limit are not sent, counted', async (t) => {
  const b = await fixBed(t, { acceptor: 'quickfix' })
  const run = await runFixTcp(b, ['--orders', '300', '--rate', '1000', '--max-msg-rate', '100', '--throttle-mode', 'reject', '--reset'], 'socket')
  const o = run.end.orders
  t.equal(o.sent + o.throttled, 300, 'every order sent or refused by the throttle')
  t.ok(o.throttled >= 100, `the throttle refused ${o.throttled}`)
  t.equal(run.end.throttle.rejected, o.throttled)
  t.equal(run.end.throttle.queued, 0)
  t.equal(named(b.acceptor, 'order').length, o.sent, 'QuickFIX saw only the orders sent')
  t.ok(Math.max(...appMessagesPerSecond(b).values()) <= 100, 'at most 100 in any second')
  await cleanLogout(t, b, run)
})

t.test('--status-ratio 1 over socket, FIX.4.4 and 4.2: QuickFIX reports each resting order\'s status, which moves nothing', async (t) => {
  const b = await fixBed(t, { acceptor: 'quickfix', acceptorArgs: ['--fill-every', '0'] })
  for (const [version, store] of [['4.4', 'seq44.json'], ['4.2', 'seq42.json']] as const) {
    const run = await runFixTcp({ ...b, store: join(b.dir, store) }, ['--orders', '10', '--status-ratio', '1', '--fix-version', version, '--reset'], 'socket')
    const l = run.end.lifecycle
    t.equal(run.end.orders.statusRequestsSent, 10, `FIX.${version}: a status request per order`)
    t.same({ new: l.new, pending: l.pending, unknown: l.unknown, late: l.late, rejected: l.rejected }, { new: 10, pending: 0, unknown: 0, late: 0, rejected: 0 }, 'every order still resting (new), nothing unknown or late')
    t.equal(run.end.closed, 'logout')
  }
  const status = named(b.acceptor, 'status')
  t.equal(status.length, 20)
  t.ok(status.every((e) => e.data.found === true), 'QuickFIX found every order it was asked about')
  t.equal(named(b.acceptor, 'admin').filter((e) => e.data.msgType === '3').length, 0, 'no session Reject either way')
})
