// fix-tcp --io xdp against the test bed's acceptor (fix-acceptor in a linked namespace over the kernel's
// TCP): our side is the userspace TCP on AF_XDP with bpf/fix_steer steering only its 4-tuple. Logon,
// orders matched, clean logout, nothing attached after exit; a dropped segment recovered by retransmission.
import { readFileSync } from 'node:fs'
import t from 'tap'
import type { Test } from 'tap'
import { raiseMemlockLimit } from '@kbx/bpf'
import { waitUntil } from '@kbx/testbed'
import { Umem, XskSocket } from '@kbx/xsk'
import type { ToolRun } from '@kbx/testbed'
import { fixBed, named, nothingAttached, runFixTcp, startFixTcp } from './testing/fix-bed.js'
import type { FixBed, FixBedOptions } from './testing/fix-bed.js'

// Eleven runs over AF_XDP, ~60 s on their own: margin for a loaded machine.
t.setTimeout(240_000)

const bed = (t: Test, options: Omit<FixBedOptions, 'acceptor'> = {}) => fixBed(t, options)
/** io null: fix-tcp's default transport. */
const startClient = (b: FixBed, args: string[], io: 'xdp' | 'socket' | null = 'xdp') => startFixTcp(b, args, io)
const client = (b: FixBed, args: string[], io: 'xdp' | 'socket' | null = 'xdp', started?: ToolRun) => runFixTcp(b, args, io, started)

t.test('--io xdp: logon, 1000 orders each matched, clean logout, nothing left attached', async (t) => {
  const b = await bed(t)
  const run = await client(b, ['--orders', '1000', '--rate', '5000', '--reset'])
  t.equal(named(run, 'logon').length, 1, 'one logon')
  t.equal(run.end.io, 'xdp')
  t.equal(run.end.orders.sent, 1000)
  t.equal(run.end.orders.acked, 1000, 'every order acked')
  t.equal(run.end.orders.filled, 1000, 'every order filled')
  t.equal(run.end.orders.unmatched, 0, 'every report matched an order by ClOrdID')
  t.equal(run.end.orders.outstanding, 0)
  t.equal(run.end.latencyUs.count, 1000)
  t.equal(run.end.closed, 'logout')
  t.equal(run.end.parser.badChecksum + run.end.parser.badBodyLength + run.end.parser.garbageBytes, 0, 'a clean byte stream')
  t.equal(run.end.session.nextSenderSeq, 1003)
  t.equal(run.end.session.nextTargetSeq, 2003)
  const tcp = run.end.tcp
  t.equal(tcp.io, 'xdp')
  for (const name of ['retransmits', 'dupAcks', 'oooHeld', 'oooReassembledBytes', 'oooOverflows', 'zeroWindowProbes', 'keepalives', 'ecnCeIn', 'ecnEceIn']) t.type(tcp[name], 'number', `tcp.${name} reported`)
  t.ok(tcp.segsIn > 0 && tcp.segsOut > 0, `segments both ways (${tcp.segsIn} in, ${tcp.segsOut} out)`)
  t.ok(tcp.bytesIn > 0 && tcp.bytesOut > 0)
  t.equal(tcp.badChecksum, 0, 'every received checksum verified')
  t.equal(tcp.rstOut + tcp.rstIn, 0, 'no reset either way')
  t.ok(['time-wait', 'closed'].includes(tcp.state), `TCP closed with FINs both ways (${tcp.state})`)
  t.ok(named(run, 'interval').every((e) => e.data.tcp?.io === 'xdp'), 'interval events carry tcp counters')
  t.equal(named(run, 'logout')[0]?.data.initiatedBy, 'us')
  await waitUntil('the acceptor to see the logout', () => named(b.acceptor, 'logout').length === 1)
  t.equal(named(b.acceptor, 'logout')[0]?.data.initiatedBy, 'peer')
  nothingAttached(t, b, [run])
})

t.test('--mode skb attaches the steering program in skb mode; the deprecated --xdp-mode still works, with a warning', async (t) => {
  const b = await bed(t)
  const byMode = await client(b, ['--orders', '5', '--reset', '--mode', 'skb'])
  t.equal(named(byMode, 'start')[0]?.data.xdp?.mode, 'skb', '--mode skb')
  t.equal(byMode.end.orders.acked, 5)
  t.notMatch(byMode.stderr(), /deprecated/)
  const byAlias = await client(b, ['--orders', '5', '--reset', '--xdp-mode', 'skb'])
  t.equal(named(byAlias, 'start')[0]?.data.xdp?.mode, 'skb', '--xdp-mode skb')
  t.equal(byAlias.end.orders.acked, 5)
  t.match(byAlias.stderr(), /--xdp-mode is deprecated: use --mode/)
  nothingAttached(t, b, [byMode, byAlias])
})

t.test('AF_XDP is the default transport; internal timing of each reply (reflex in C, and the session with --no-reflex); --busy-poll', async (t) => {
  const b = await bed(t)
  const run = await client(b, ['--orders', '30', '--reset'], null)
  t.equal(run.end.io, 'xdp', 'no --io: xdp')
  t.equal(run.end.tcp.io, 'xdp')
  t.equal(run.end.orders.acked, 30)
  t.equal(run.end.reflex.enabled, true, 'one order at a time over AF_XDP: the reflex is on by default')
  t.equal(run.end.reflex.sent, 29, 'every order after the first sent by the reflex, in reply to the previous one\'s ExecutionReport')
  const { internalReflexUs: reflex, internalReflexKickUs: reflexKick } = run.end
  t.equal(reflex.count, 29, 'an internal sample for each reflex order')
  t.equal(reflexKick.count, 29)
  t.ok(reflex.p50 > 0 && reflexKick.p50 > 0, `RX → reflex order submitted ${reflex.p50} µs (then the TX call, ${reflexKick.p50} µs)`)
  t.ok(reflex.p50 < run.end.latencyUs.p50, 'internal time is a part of the cycle, not a stale timestamp')
  const stages = run.end.reflex.breakdownNs as Record<string, { count: number; p50: number; mean: number }>
  t.same(Object.keys(stages), ['clock', 'tcpIn', 'parse', 'build', 'tcpOut', 'submit', 'total'], 'the reflex\'s time by stage, and their sum')
  t.ok(stages['total']!.count > 0 && stages['total']!.count <= 29, `a breakdown for the reflex orders whose trigger came in the step that answered it (${stages['total']!.count})`)
  t.ok(Object.values(stages).every((s) => s.count === stages['total']!.count), 'every stage of each of them')
  t.equal(stages['clock']!.p50, 0, 'no clock read inside the window')
  const sumOfMeans = Object.entries(stages).filter(([k]) => k !== 'total').reduce((a, [, s]) => a + s.mean, 0)
  t.ok(Math.abs(sumOfMeans - stages['total']!.mean) <= 8, `the stages add up to the window (means: ${sumOfMeans} vs ${stages['total']!.mean} ns)`)
  t.ok(stages['total']!.p50 > 0 && stages['parse']!.p50 > 0 && stages['tcpIn']!.p50 > 0, `total p50 ${stages['total']!.p50} ns`)
  t.ok(run.end.internalUs.count <= 2, `the session answered no ExecutionReport itself (${run.end.internalUs.count} replies: the first order after the Logon, the Logout)`)

  const ts = await client(b, ['--orders', '30', '--no-reflex'])
  t.equal(ts.end.orders.acked, 30)
  t.equal(ts.end.reflex.sent, 0, '--no-reflex: no order from C')
  const { internalUs: total, internalNativeUs: native, internalKickUs: kick } = ts.end
  t.ok(total.count >= 29, `a sample for each order sent in reply to the previous one's ExecutionReport (${total.count})`)
  t.equal(native.count, total.count, 'C share sampled with each reply')
  t.equal(kick.count, total.count, 'TX call sampled with each reply')
  t.ok(total.p50 > 0 && native.p50 > 0 && kick.p50 > 0, `RX → reply submitted ${total.p50} µs: C ${native.p50} µs; then the TX call ${kick.p50} µs`)
  t.ok(total.max >= native.max, 'the C share never exceeds the whole')
  t.ok(total.p50 < ts.end.latencyUs.p50 * 10, 'internal time is a part of the cycle, not a stale timestamp')
  t.equal(ts.end.tcp.timingsLost, 0)

  const busy = await client(b, ['--orders', '30', '--busy-poll'])
  t.equal(busy.end.orders.acked, 30, '--busy-poll: every order acked')
  t.equal(busy.end.closed, 'logout')
  nothingAttached(t, b, [run, ts, busy])
})

t.test('--busy-poll over --io socket too: the turn spins in poll() on the socket instead of sleeping', async (t) => {
  const b = await bed(t)
  const run = await client(b, ['--orders', '30', '--busy-poll', '--reset'], 'socket')
  t.equal(run.end.io, 'socket')
  t.equal(run.end.orders.acked, 30, 'every order acked, one at a time')
  t.notMatch(run.stderr(), /--busy-poll/, 'no usage error')
})

t.test('--io xdp: the socket comes from @kbx/xsk; a queue held by another AF_XDP socket is a clear XskError, nothing attached', async (t) => {
  const b = await bed(t)
  const ok = await client(b, ['--orders', '3', '--reset'])
  t.equal(named(ok, 'start')[0]?.data.xdp?.zeroCopy, false, 'veth: copy mode')
  t.match(ok.stderr(), /queue 0: zero-copy refused \(EOPNOTSUPP\), using copy mode/, 'the fallback is logged')
  t.equal(ok.end.orders.acked, 3)

  raiseMemlockLimit()
  const umem = Umem.create({ frameCount: 256 })
  t.teardown(() => umem.close())
  const holder = XskSocket.create({ umem, iface: b.iface, queue: 0, log: () => {} })
  t.teardown(() => holder.close())
  const refused = startClient(b, ['--orders', '1', '--reset', '--no-reconnect'])
  const exit = await refused.exited
  t.equal(exit.code, 1, 'a runtime failure')
  t.match(named(refused, 'error')[0]?.data, {
    type: 'XskError',
    op: 'bind AF_XDP socket',
    code: 'EBUSY',
    message: new RegExp(`^bind AF_XDP socket failed: EBUSY \\(${b.iface} queue 0: .*21 attempts\\)$`),
    hint: /stayed busy through 20 retries/,
  })
  nothingAttached(t, b, [ok, refused])
})

t.test('--io xdp: a dropped data segment is recovered by retransmission, no order lost', async (t) => {
  const b = await bed(t)
  const run = await client(b, ['--orders', '20', '--reset', '--test-drop-segment', '5'])
  t.equal(run.end.tcp.txDroppedByHook, 1, 'the stack dropped one of its segments')
  t.ok(run.end.tcp.retransmits >= 1, `retransmitted (${run.end.tcp.retransmits})`)
  t.equal(run.end.orders.acked, 20, 'every order acked')
  t.equal(run.end.orders.unmatched, 0)
  t.equal(run.end.closed, 'logout')
  nothingAttached(t, b, [run])
})

t.test('--io xdp steers only its own connection: the kernel TCP to the same gateway keeps working beside it', async (t) => {
  const b = await bed(t)
  const xdpRun = startClient(b, ['--orders', '10', '--linger', '30', '--reset', '--sender', 'CLIENT1'])
  await waitUntil('the AF_XDP session to log on', () => named(xdpRun, 'logon').length === 1)
  const kernelRun = await client({ ...b, store: `${b.store}.kernel` }, ['--orders', '10', '--reset', '--sender', 'CLIENT2'], 'socket')
  t.equal(kernelRun.end.orders.acked, 10, 'a kernel TCP session to the same ip:port beside it: every order acked')
  t.equal(kernelRun.end.closed, 'logout')
  xdpRun.child.kill('SIGINT')
  const run = await client(b, [], 'xdp', xdpRun)
  t.equal(run.end.orders.acked, 10, 'the AF_XDP session acked its orders')
  t.equal(run.end.stoppedBy, 'signal')
  t.equal(run.end.tcp.notOurs, 0, 'the steering program sent the AF_XDP socket nothing but its own connection')
  t.equal(run.end.tcp.badChecksum, 0)
  nothingAttached(t, b, [xdpRun])
})

t.test('--io xdp answers ARP for its address: the gateway re-resolves us mid-session', async (t) => {
  const b = await bed(t, { neighbours: false })
  const xdpRun = startClient(b, ['--orders', '20', '--rate', '10', '--reset'])
  await waitUntil('the AF_XDP session to log on', () => named(xdpRun, 'logon').length === 1)
  // The gateway forgets our MAC: its next segment to us needs an ARP request, which XDP steers to us.
  b.net.run(b.netns, 'ip', ['neigh', 'del', b.localIp, 'dev', b.remoteIface])
  const run = await client(b, [], 'xdp', xdpRun)
  t.ok(run.end.tcp.arpReplies >= 1, `our ARP responder answered (${run.end.tcp.arpReplies})`)
  const neigh = JSON.parse(b.net.run(b.netns, 'ip', ['-j', 'neigh', 'show', b.localIp, 'dev', b.remoteIface])) as { lladdr?: string }[]
  t.equal(neigh[0]?.lladdr, JSON.parse(b.net.run(null, 'ip', ['-j', 'link', 'show', 'dev', b.iface]))[0].address, 'the gateway learned our MAC from our reply')
  t.equal(run.end.orders.acked, 20, 'every order acked')
  t.equal(run.end.closed, 'logout')
  nothingAttached(t, b, [xdpRun])
})

t.test('reflex: 1000 orders one at a time answered in C, contiguous sequence numbers at the acceptor; a restart resumes them', async (t) => {
  const b = await bed(t)
  const first = await client(b, ['--orders', '1000', '--reset'])
  t.equal(first.end.orders.acked, 1000, 'every order acked')
  t.equal(first.end.orders.filled, 1000)
  t.equal(first.end.orders.unmatched, 0)
  t.equal(first.end.latencyUs.count, 1000, 'an order→ack latency for each, reflex orders included')
  t.ok(first.end.reflex.sent >= 990, `the reflex sent ${first.end.reflex.sent} of the 999 orders after the first (deferred ${first.end.reflex.deferred}, disarmed ${first.end.reflex.disarmed})`)
  t.equal(first.end.internalReflexUs.count, first.end.reflex.sent, 'one internal sample per reflex order')
  t.equal(first.end.reflex.badChecksum + first.end.reflex.badBodyLength + first.end.reflex.garbageBytes, 0)
  t.equal(first.end.reflex.messages, first.end.session.received, 'the C framer saw every message the session did')
  t.equal(first.end.session.nextSenderSeq, 1003, 'Logon, 1000 orders, Logout')
  t.equal(first.end.session.nextTargetSeq, 2003)
  t.equal(first.end.closed, 'logout')
  const saved = JSON.parse(readFileSync(b.store, 'utf8')) as Record<string, number>
  t.same(saved, { nextSenderSeq: 1003, nextTargetSeq: 2003, nextClOrdId: saved.nextClOrdId }, 'the store holds the numbers the reflex orders used')
  await waitUntil('the acceptor to see the logout', () => named(b.acceptor, 'logout').length === 1)
  t.equal(named(b.acceptor, 'logout')[0]?.data.nextTargetSeq, 1003, 'the acceptor received MsgSeqNum 1..1002 from us')
  t.equal(named(b.acceptor, 'resend-request-sent').length, 0, 'without a gap')
  t.equal(named(b.acceptor, 'seq-too-low').length, 0, 'or a duplicate')

  const second = await client(b, ['--orders', '500'])
  t.equal(second.events.find((e) => e.event === 'start')?.data.nextSenderSeq, 1003, 'resumed from the store')
  t.equal(second.end.orders.acked, 500)
  t.ok(second.end.reflex.sent >= 490, `the reflex sent ${second.end.reflex.sent} orders after the restart`)
  t.equal(second.end.session.nextSenderSeq, 1505)
  t.equal(named(second, 'resend-request-sent').length + named(second, 'seq-too-low').length, 0, 'no gap on our side')
  await waitUntil('the acceptor to see the second logout', () => named(b.acceptor, 'logout').length === 2)
  t.equal(named(b.acceptor, 'logout')[1]?.data.nextTargetSeq, 1505, 'the acceptor\'s numbers continue without a gap')
  t.equal(named(b.acceptor, 'resend-request-sent').length + named(b.acceptor, 'seq-too-low').length, 0)
  nothingAttached(t, b, [first, second])
})

t.test('reflex: a gap in the acceptor\'s sequence is left to the session (ResendRequest, GapFill), then the reflex goes on', async (t) => {
  const b = await bed(t, { acceptorArgs: ['--test-gap-at', '6'] })
  const run = await client(b, ['--orders', '20', '--reset'])
  const request = named(run, 'resend-request-sent')
  t.equal(request.length, 1, 'one ResendRequest, from the session')
  t.equal(request[0]?.data.begin, 6)
  t.ok(named(run, 'gap-fill').some((e) => e.data.direction === 'received' && e.data.from === 6), 'the skipped number was gap-filled')
  t.ok(run.end.reflex.disarmed >= 1, `the reflex stood back at the gap (disarmed ${run.end.reflex.disarmed})`)
  t.ok(run.end.reflex.sent >= 10, `and answered the orders after it (${run.end.reflex.sent} sent)`)
  t.equal(run.end.orders.acked, 20, 'every order acked')
  t.equal(run.end.orders.unmatched, 0)
  t.equal(run.end.closed, 'logout')
  t.equal(named(b.acceptor, 'resend-request-sent').length + named(b.acceptor, 'seq-too-low').length, 0, 'our numbers stayed contiguous')
})

t.test('reflex: a gap in our sequence: the acceptor\'s ResendRequest answered by the session, the reflex goes on after it', async (t) => {
  const b = await bed(t)
  const run = await client(b, ['--orders', '10', '--test-gap-at', '6', '--reset'])
  const resend = named(run, 'resend')
  t.ok(resend.length >= 1, 'the acceptor\'s ResendRequest was answered')
  t.ok(resend[0]!.data.gapFilled >= 1, 'the skipped number gap-filled')
  t.ok(run.end.reflex.sent >= 1, `the reflex sent orders around it (${run.end.reflex.sent})`)
  await waitUntil('the acceptor to log its ResendRequest', () => named(b.acceptor, 'resend-request-sent').length >= 1)
  t.equal(named(b.acceptor, 'resend-request-sent')[0]?.data.begin, 6)
  t.equal(run.end.orders.acked, 10, 'every order acked')
  t.equal(run.end.closed, 'logout')
})
