// fix-tcp --io socket against the test bed's acceptor (fix-acceptor in a linked namespace, kernel TCP on
// both sides): logon, 10k orders matched, idle heartbeats/TestRequest, sequence gaps answered with
// ResendRequest/GapFill in both directions, clean logout, a restart resuming sequence numbers.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import { repoRoot } from '@kbx/ffi'
import { followTool, nodeCommand, waitUntil } from '@kbx/testbed'
import { FIX_PORT as PORT, fixBed, named, runFixTcp } from './testing/fix-bed.js'
import type { FixBed } from './testing/fix-bed.js'

const fixTcp = join(repoRoot, 'packages/fix/src/bin-fix-tcp.ts')
const bed = (t: Test, acceptorArgs: string[] = []) => fixBed(t, { acceptorArgs })
const client = (b: FixBed, args: string[]) => runFixTcp(b, args, 'socket')

t.test('logon, 10k orders each matched to its ExecutionReport, clean logout', async (t) => {
  const b = await bed(t)
  const run = await client(b, ['--orders', '10000', '--rate', '20000', '--reset'])
  t.equal(named(run, 'logon').length, 1, 'one logon')
  t.equal(run.end.orders.sent, 10000)
  t.equal(run.end.orders.acked, 10000, 'every order acked')
  t.equal(run.end.orders.filled, 10000, 'every order filled')
  t.equal(run.end.orders.rejected, 0)
  t.equal(run.end.orders.unmatched, 0, 'every report matched an order by ClOrdID')
  t.equal(run.end.orders.outstanding, 0)
  t.equal(run.end.latencyUs.count, 10000, 'one order→ack latency per order')
  t.ok(run.end.latencyUs.p50 > 0)
  t.equal(run.end.closed, 'logout')
  t.same(run.end.parser.badChecksum + run.end.parser.badBodyLength + run.end.parser.garbageBytes, 0)
  const logout = named(run, 'logout')[0]?.data
  t.equal(logout?.initiatedBy, 'us')
  // Logon + 10000 orders + Logout from us; Logon + 2×10000 reports + Logout from the acceptor
  t.equal(run.end.session.nextSenderSeq, 10003)
  t.equal(run.end.session.nextTargetSeq, 20003)
  await waitUntil('the acceptor to see the logout', () => named(b.acceptor, 'logout').length === 1)
  t.equal(named(b.acceptor, 'logout')[0]?.data.initiatedBy, 'peer')
})

t.test('idle: Heartbeats every HeartBtInt, TestRequest when the peer is silent, answered', async (t) => {
  const b = await bed(t, ['--no-heartbeats'])
  const run = await client(b, ['--orders', '1', '--heartbeat', '1', '--linger', '3.5', '--reset'])
  t.equal(run.end.orders.acked, 1)
  t.ok(run.end.session.heartbeatsSent >= 2, `heartbeats sent: ${run.end.session.heartbeatsSent}`)
  t.ok(run.end.session.testRequestsSent >= 1, `TestRequests sent: ${run.end.session.testRequestsSent}`)
  t.ok(named(run, 'test-request').length >= 1, 'test-request event')
  t.equal(named(run, 'timeout').length, 0, 'every TestRequest was answered')
  t.equal(run.end.closed, 'logout')
})

t.test('a gap in the acceptor\'s sequence: ResendRequest sent, GapFill received, nothing lost', async (t) => {
  const b = await bed(t, ['--test-gap-at', '6'])
  const run = await client(b, ['--orders', '20', '--reset'])
  const request = named(run, 'resend-request-sent')
  t.equal(request.length, 1, 'one ResendRequest')
  t.equal(request[0]?.data.begin, 6)
  const fill = named(run, 'gap-fill')
  t.ok(fill.some((e) => e.data.direction === 'received' && e.data.from === 6), 'the skipped number was gap-filled')
  await waitUntil('the acceptor to log the resend', () => named(b.acceptor, 'resend').length >= 1)
  t.ok(named(b.acceptor, 'resend')[0]!.data.gapFilled >= 1)
  t.equal(run.end.orders.acked, 20, 'every order acked (reports resent with PossDupFlag)')
  t.equal(run.end.orders.unmatched, 0)
  t.equal(run.end.closed, 'logout')
})

t.test('a gap in our sequence: the acceptor\'s ResendRequest answered with GapFill and resent orders', async (t) => {
  const b = await bed(t)
  const run = await client(b, ['--orders', '10', '--rate', '1000', '--test-gap-at', '4', '--reset'])
  const resend = named(run, 'resend')
  t.ok(resend.length >= 1, 'a ResendRequest was answered')
  t.ok(resend[0]!.data.gapFilled >= 1, 'the skipped number gap-filled')
  t.ok(named(run, 'gap-fill').some((e) => e.data.direction === 'sent'))
  await waitUntil('the acceptor to log its ResendRequest', () => named(b.acceptor, 'resend-request-sent').length >= 1)
  t.equal(named(b.acceptor, 'resend-request-sent')[0]?.data.begin, 4)
  t.equal(run.end.orders.acked, 10, 'every order acked, the ones after the gap through their resends')
  t.equal(run.end.closed, 'logout')
})

t.test('a restart resumes the sequence numbers from the store; --reset starts again from 1', async (t) => {
  const b = await bed(t)
  const first = await client(b, ['--orders', '5', '--reset'])
  t.equal(first.end.session.nextSenderSeq, 8)
  const saved = JSON.parse(readFileSync(b.store, 'utf8')) as Record<string, number>
  t.equal(saved.nextSenderSeq, 8, 'persisted')
  t.equal(saved.nextTargetSeq, first.end.session.nextTargetSeq)

  const second = await client(b, ['--orders', '5'])
  t.equal(second.events.find((e) => e.event === 'start')?.data.nextSenderSeq, 8, 'resumed from the store')
  t.equal(named(second, 'logon').length, 1)
  t.equal(named(second, 'resend-request-sent').length, 0, 'no gap')
  t.equal(named(second, 'seq-too-low').length, 0)
  t.equal(second.end.orders.acked, 5)
  t.equal(second.end.session.nextSenderSeq, 15)
  t.equal(named(b.acceptor, 'resend-request-sent').length, 0, 'the acceptor saw no gap either')
  t.equal(named(b.acceptor, 'seq-too-low').length, 0)

  const third = await client(b, ['--orders', '1', '--reset'])
  t.equal(named(third, 'logon')[0]?.data.reset, true)
  t.equal(third.end.session.nextSenderSeq, 4, 'Logon 1, order 2, Logout 3')
  t.equal(third.end.orders.acked, 1)
})

t.test('an unreachable acceptor is an error naming the address, exit 1', async (t) => {
  const b = await bed(t)
  const [cmd, argv] = nodeCommand(fixTcp, ['--iface', b.iface, '--connect', `${b.exchIp}:${PORT + 1}`, '--store', b.store, '--json'])
  const run = followTool(b.net.spawn(null, cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] }))
  t.same(await run.exited, { code: 1, signal: null })
  t.match(run.events.find((e) => e.event === 'error')?.data.message ?? '', `${b.exchIp}:${PORT + 1}`)
})

t.test('--fix-version 5.0SP2: FIXT.1.1 both ways, DefaultApplVerID 9 on both Logons, orders acked', async (t) => {
  const b = await bed(t)
  const run = await client(b, ['--orders', '200', '--reset', '--fix-version', '5.0SP2', '--sender-sub-id', 'DESK1'])
  t.equal(run.events.find((e) => e.event === 'start')?.data.beginString, 'FIXT.1.1')
  t.match(named(run, 'logon')[0]?.data, { defaultApplVerId: '9' }, 'the acceptor\'s Logon named FIX 5.0 SP2')
  t.equal(run.end.orders.acked, 200, 'every order acked')
  t.equal(run.end.parser.badChecksum + run.end.parser.badBodyLength + run.end.parser.badHeader + run.end.parser.garbageBytes, 0, 'the acceptor\'s FIXT.1.1 stream parsed clean')
  t.equal(run.end.closed, 'logout')
  await waitUntil('the acceptor to see the logout', () => named(b.acceptor, 'logout').length === 1)
  t.match(named(b.acceptor, 'logon')[0]?.data, { defaultApplVerId: '9' }, 'and ours')
})
