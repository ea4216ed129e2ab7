// fix-tcp against QuickFIX (Debian's libquickfix, native/build/fix-quickfix-acceptor) in a linked namespace
// over the kernel's TCP: the session layer checked by a FIX engine used across the industry, not only by
// our own acceptor. Orders acked and matched over --io xdp (paced, and one at a time through the native
// reflex) and --io socket, FIX.4.4 and 4.2; restarts of either side resume sequence numbers from their
// stores; idle heartbeats and QuickFIX's TestRequest; sequence gaps in both directions; QuickFIX restarted
// under a running fix-tcp (reconnection, logon resuming the numbers, resend exchange).
import { join } from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import { waitUntil } from '@kbx/testbed'
import type { ToolEvent, ToolRun } from '@kbx/testbed'
import { fixBed, named, nothingAttached, runFixTcp, startAcceptor, startFixTcp } from './testing/fix-bed.js'
import type { FixBed } from './testing/fix-bed.js'

type Bed = FixBed
const bed = (t: Test, acceptorArgs: string[] = []) => fixBed(t, { acceptor: 'quickfix', acceptorArgs })
const client = (b: Bed, args: string[], io: 'xdp' | 'socket') => runFixTcp(b, args, io)

/** QuickFIX's session-level messages, `in` from fix-tcp or `out` to it, of one MsgType. */
const admin = (r: ToolRun, direction: 'in' | 'out', msgType: string) =>
  named(r, 'admin').filter((e) => e.data.direction === direction && e.data.msgType === msgType)

/** Nothing fix-tcp sent was refused by QuickFIX, and no QuickFIX message was refused by fix-tcp. */
function noRejects(t: Test, b: Bed, run: ToolRun & { end: Record<string, any> }): void {
  const refused = [...admin(b.acceptor, 'out', '3'), ...named(b.acceptor, 'app-out')]
  t.same(refused.map((e) => e.data), [], 'QuickFIX sent no Reject or BusinessMessageReject')
  t.equal(admin(b.acceptor, 'in', '3').length, 0, 'fix-tcp sent QuickFIX no Reject')
  t.equal(run.end.session.rejectsReceived, 0)
  t.equal(run.end.parser.badChecksum + run.end.parser.badBodyLength + run.end.parser.garbageBytes + run.end.parser.badHeader, 0, 'QuickFIX\'s byte stream parsed clean')
}

async function acceptorLogouts(b: Bed, count: number): Promise<ToolEvent[]> {
  await waitUntil(`QuickFIX to log out ${count} session(s)`, () => named(b.acceptor, 'logout').length >= count)
  return named(b.acceptor, 'logout')
}

async function ordersAcked(t: Test, b: Bed, io: 'xdp' | 'socket', args: string[], orders: number): Promise<ToolRun> {
  const run = await client(b, ['--orders', String(orders), ...args], io)
  t.equal(named(run, 'logon').length, 1, 'QuickFIX answered the Logon')
  t.equal(run.end.io, io)
  t.equal(run.end.orders.sent, orders)
  t.equal(run.end.orders.acked, orders, 'every order acked by an ExecutionReport (ExecType New)')
  t.equal(run.end.orders.filled, orders, 'and filled')
  t.equal(run.end.orders.unmatched, 0, 'every report matched an order by ClOrdID')
  t.equal(run.end.orders.outstanding, 0)
  t.equal(run.end.latencyUs.count, orders)
  t.equal(run.end.closed, 'logout')
  t.equal(named(run, 'logout')[0]?.data.initiatedBy, 'us')
  const [logout] = await acceptorLogouts(b, 1)
  t.equal(logout?.data.initiatedBy, 'peer', 'QuickFIX saw our Logout')
  t.notOk(logout?.data.textSent, 'and answered it without complaint')
  t.equal(logout?.data.nextTargetSeq, orders + 3, `QuickFIX received MsgSeqNum 1..${orders + 2} (Logon, orders, Logout)`)
  t.equal(logout?.data.nextSenderSeq, 2 * orders + 3, 'and sent its Logon, two reports per order and its Logout')
  const received = named(b.acceptor, 'order')
  t.equal(received.length, orders, 'QuickFIX saw every order once')
  t.equal(new Set(received.map((e) => e.data.clOrdId)).size, orders, 'each with its own ClOrdID')
  t.ok(received.every((e) => e.data.symbol === 'KBX' && e.data.side === '1' && e.data.qty === '100' && e.data.price === '100.25'), 'fields as sent')
  t.equal(admin(b.acceptor, 'in', '2').length + admin(b.acceptor, 'out', '2').length, 0, 'no ResendRequest either way')
  noRejects(t, b, run)
  return run
}

t.test('--io xdp: logon, 1000 paced orders acked by QuickFIX and matched, clean logout', async (t) => {
  const b = await bed(t)
  const run = await ordersAcked(t, b, 'xdp', ['--rate', '5000', '--reset'], 1000)
  t.equal(admin(b.acceptor, 'in', 'A')[0]?.data.resetSeqNumFlag, 'Y', 'Logon carried ResetSeqNumFlag')
  nothingAttached(t, b, [run])
})

t.test('--io socket: 1000 orders acked by QuickFIX; FIX.4.2 too', async (t) => {
  const b = await bed(t)
  await ordersAcked(t, b, 'socket', ['--rate', '5000', '--reset'], 1000)

  const fix42 = await client({ ...b, store: join(b.dir, 'seq42.json') }, ['--orders', '100', '--fix-version', '4.2', '--reset'], 'socket')
  t.equal(fix42.end.orders.acked, 100, 'FIX.4.2: every order acked')
  t.equal(fix42.end.orders.filled, 100, 'fills with ExecType 2 counted')
  t.equal(fix42.end.closed, 'logout')
  const [, logout42] = await acceptorLogouts(b, 2)
  t.equal(logout42?.data.beginString, 'FIX.4.2', 'a FIX.4.2 session at QuickFIX')
  t.equal(logout42?.data.nextTargetSeq, 103)
  noRejects(t, b, fix42)
})

t.test('--io xdp one at a time (the reflex answers QuickFIX\'s reports in C); restarts of fix-tcp and of QuickFIX resume sequence numbers', async (t) => {
  const b = await bed(t)
  const first = await client(b, ['--orders', '1000', '--reset'], 'xdp')
  t.equal(first.end.orders.acked, 1000, 'every order acked')
  t.equal(first.end.orders.unmatched, 0)
  t.ok(first.end.reflex.sent >= 990, `the reflex took QuickFIX's ExecutionReports and sent ${first.end.reflex.sent} of the 999 orders after the first`)
  t.equal(first.end.reflex.badChecksum + first.end.reflex.badBodyLength + first.end.reflex.garbageBytes, 0, 'the C framer parsed QuickFIX\'s stream clean')
  t.equal(first.end.session.nextSenderSeq, 1003)
  t.equal(first.end.session.nextTargetSeq, 2003)
  let [logout] = await acceptorLogouts(b, 1)
  t.equal(logout?.data.nextTargetSeq, 1003, 'QuickFIX received 1..1002, reflex orders included, without a gap')
  t.equal(named(b.acceptor, 'order').length, 1000)
  noRejects(t, b, first)

  // fix-tcp restarts without --reset: its Logon carries MsgSeqNum 1003, which QuickFIX's store expects.
  const second = await client(b, ['--orders', '200'], 'xdp')
  t.equal(second.events.find((e) => e.event === 'start')?.data.nextSenderSeq, 1003, 'fix-tcp resumed from its store')
  t.same(named(second, 'logon')[0]?.data, { seq: 2003, nextSenderSeq: 1004, nextTargetSeq: 2003, heartBtInt: 30, reset: false }, 'QuickFIX\'s Logon continued its numbers')
  t.equal(second.end.orders.acked, 200)
  t.equal(second.end.closed, 'logout')
  t.equal(admin(b.acceptor, 'in', 'A')[1]?.data.seq, 1003)
  t.equal(admin(b.acceptor, 'in', 'A')[1]?.data.resetSeqNumFlag, undefined, 'no ResetSeqNumFlag')
  ;[, logout] = await acceptorLogouts(b, 2)
  t.notOk(logout?.data.textSent, 'QuickFIX accepted the Logon and logged out without complaint (no "MsgSeqNum too low")')
  t.equal(logout?.data.nextTargetSeq, 1205)
  t.ok(named(b.acceptor, 'admin').every((e) => !/too low|too high/i.test(e.data.text ?? '')), 'no sequence complaint in any session message')
  t.equal(admin(b.acceptor, 'in', '2').length + admin(b.acceptor, 'out', '2').length, 0, 'no ResendRequest either way')
  noRejects(t, b, second)

  // QuickFIX restarts on the same FileStore: fix-tcp logs on with the next numbers once more.
  b.acceptor.child.kill('SIGINT')
  t.equal((await b.acceptor.exited).code, 0, 'QuickFIX stopped cleanly')
  t.equal(named(b.acceptor, 'end')[0]?.data.orders, 1200)
  b.acceptor = await startAcceptor(b, 'quickfix')
  const third = await client(b, ['--orders', '50'], 'xdp')
  t.equal(named(third, 'logon')[0]?.data.seq, 2405, 'the restarted QuickFIX resumed from its store')
  t.equal(third.end.orders.acked, 50)
  ;[logout] = await acceptorLogouts(b, 1)
  t.notOk(logout?.data.textSent)
  t.equal(logout?.data.nextTargetSeq, 1257)
  noRejects(t, b, third)
  nothingAttached(t, b, [first, second, third])
})

t.test('idle: heartbeats both ways at a short HeartBtInt, QuickFIX\'s TestRequest answered', async (t) => {
  const b = await bed(t, ['--test-request-after', '2'])
  const run = await client(b, ['--orders', '3', '--heartbeat', '1', '--linger', '4', '--reset'], 'xdp')
  t.equal(named(b.acceptor, 'logon')[0]?.data.heartBtInt, 1, 'QuickFIX adopted the HeartBtInt from our Logon')
  t.equal(run.end.orders.acked, 3)
  t.equal(run.end.closed, 'logout', 'the session stayed up while idle and ended with our Logout')
  t.equal(named(run, 'timeout').length, 0, 'no timeout on our side')
  t.equal(run.end.session.testRequestsSent, 0, 'QuickFIX kept the line alive: we never had to send a TestRequest')
  const heartbeatsIn = admin(b.acceptor, 'in', '0')
  t.ok(heartbeatsIn.filter((e) => e.data.testReqId === undefined).length >= 2, `QuickFIX received our idle Heartbeats (${heartbeatsIn.length} in all)`)
  t.ok(admin(b.acceptor, 'out', '0').length >= 2, `and sent its own (${admin(b.acceptor, 'out', '0').length})`)
  const [request] = admin(b.acceptor, 'out', '1')
  t.equal(request?.data.testReqId, 'QF1', 'QuickFIX sent a TestRequest')
  t.ok(heartbeatsIn.some((e) => e.data.testReqId === 'QF1'), 'answered by a Heartbeat carrying its TestReqID')
  const [logout] = await acceptorLogouts(b, 1)
  t.equal(logout?.data.initiatedBy, 'peer')
  t.notOk(logout?.data.textSent)
  noRejects(t, b, run)
  nothingAttached(t, b, [run])
})

t.test('sequence gaps both ways: QuickFIX\'s ResendRequest answered with GapFill, ours answered by QuickFIX', async (t) => {
  const b = await bed(t, ['--test-gap-at', '6'])
  const run = await client(b, ['--orders', '20', '--test-gap-at', '6', '--reset'], 'xdp')
  t.equal(named(b.acceptor, 'test-gap')[0]?.data.skipped, 6, 'QuickFIX skipped its MsgSeqNum 6')
  const ours = named(run, 'resend-request-sent')
  t.equal(ours.length, 1, 'we asked once')
  t.equal(ours[0]?.data.begin, 6)
  t.ok(admin(b.acceptor, 'in', '2').some((e) => e.data.beginSeqNo === '6'), 'QuickFIX received our ResendRequest from 6')
  t.ok(named(run, 'gap-fill').some((e) => e.data.direction === 'received' && e.data.from === 6), 'and gap-filled the skipped number')

  const theirs = admin(b.acceptor, 'out', '2')
  t.equal(theirs.length, 1, 'QuickFIX saw our gap and asked once')
  t.equal(theirs[0]?.data.beginSeqNo, '6')
  const gapFill = admin(b.acceptor, 'in', '4')
  t.ok(gapFill.some((e) => e.data.seq === 6 && e.data.gapFill === 'Y' && e.data.possDup === 'Y' && e.data.newSeqNo === '7'), 'QuickFIX took our GapFill (PossDupFlag, OrigSendingTime)')
  t.ok(named(run, 'resend')[0]?.data.resent >= 1, 'and our resent orders')

  t.equal(run.end.orders.acked, 20, 'every order acked')
  t.equal(run.end.orders.unmatched, 0)
  t.equal(run.end.closed, 'logout')
  t.equal(named(b.acceptor, 'order').length, 20, 'QuickFIX processed each order once (the resent ones as PossDup)')
  const [logout] = await acceptorLogouts(b, 1)
  t.notOk(logout?.data.textSent, 'QuickFIX logged out without complaint')
  noRejects(t, b, run)
  nothingAttached(t, b, [run])
})

t.test('QuickFIX restarted mid-run: fix-tcp logs on again, resumes sequence numbers, every order accounted, no Reject', async (t) => {
  const b = await bed(t)
  const run = startFixTcp(b, ['--rate', '200', '--duration', '10', '--reset', '--reconnect-interval', '0.3'], 'xdp')
  const acked = () => Number(named(run, 'interval').at(-1)?.data.orders.acked ?? 0)
  await waitUntil('orders acked', () => acked() > 200)
  b.acceptor.child.kill('SIGINT') // QuickFIX logs the session out and stops
  t.equal((await b.acceptor.exited).code, 0)
  const firstRun = b.acceptor
  await waitUntil('the disconnect', () => named(run, 'disconnect').length > 0)
  b.acceptor = await startAcceptor(b, 'quickfix')
  await waitUntil('the reconnection', () => named(run, 'reconnect').length > 0)
  const { end } = await runFixTcp(b, [], 'xdp', run)
  t.equal(named(run, 'logon').length, 2, 'logged on again')
  t.equal(named(run, 'logon')[1]!.data.reset, false)
  t.ok(named(b.acceptor, 'order').length > 200, `orders flowed to the restarted QuickFIX (${named(b.acceptor, 'order').length})`)
  const o = end.orders
  t.equal(o.sent, o.acked + o.rejected + o.unknown + o.outstanding, `every order accounted for: ${JSON.stringify(o)}`)
  t.equal(o.unknown + o.outstanding + o.rejected, 0, 'every order acked: in-flight ones resent (PossDup) or their reports resent')
  // connections QuickFIX accepted while stopping or starting and closed at once are reconnections too
  t.ok(end.connections.reconnects >= 1 && end.connections.reconnects === end.connections.disconnects, `reconnected after each disconnect (${end.connections.reconnects})`)
  for (const acceptor of [firstRun, b.acceptor]) {
    t.same([...admin(acceptor, 'out', '3'), ...named(acceptor, 'app-out')].map((e) => e.data), [], 'QuickFIX sent no Reject')
    t.ok(named(acceptor, 'admin').every((e) => !/too low/i.test(e.data.text ?? '')), 'no "MsgSeqNum too low"')
  }
  t.equal(end.session.rejectsReceived, 0)
  const u = end.tcp.umem
  t.equal(u.total, u.free + u.fill + u.rx + u.tx + u.user, 'UMEM frames balance')
  nothingAttached(t, b, [run])
})
