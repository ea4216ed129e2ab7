// fix-tcp stays up when the gateway goes away: a RST from the peer, the acceptor killed and restarted
// mid-run, a peer gone silent (SIGSTOP: TestRequest, then disconnect, then reconnect after SIGCONT), each
// over --io xdp and --io socket; --no-reconnect exits 1 instead. Every order is accounted for at the end:
// sent == acked + rejected + unknown + outstanding; UMEM frames balance after the reconnections.
import t from 'tap'
import type { Test } from 'tap'
import { waitUntil } from '@kbx/testbed'
import type { ToolRun } from '@kbx/testbed'
import { FIX_PORT, fixBed, named, nothingAttached, runFixTcp, startAcceptor, startFixTcp } from './testing/fix-bed.js'
import type { FixBed } from './testing/fix-bed.js'

// Seven runs of fixed length (--duration up to 16 s, backoffs) take ~110 s on their own: more than the
// default 120 s per file once the machine is loaded.
t.setTimeout(300_000)

type Io = 'xdp' | 'socket'
const IOS: Io[] = ['xdp', 'socket']

function accounted(t: Test, end: Record<string, any>): void {
  const o = end.orders
  t.equal(o.sent, o.acked + o.rejected + o.unknown + o.outstanding, `every order accounted for: ${JSON.stringify(o)}`)
}

function umemBalanced(t: Test, end: Record<string, any>): void {
  const u = end.tcp.umem
  if (u === undefined) return
  t.equal(u.total, u.free + u.fill + u.rx + u.tx + u.user, `UMEM frames balance: ${JSON.stringify(u)}`)
  t.equal(u.user, 0, 'no frame left held by the stack')
}

const acked = (r: ToolRun) => Number(named(r, 'interval').at(-1)?.data.orders.acked ?? 0)

/** The acceptor's kernel TCP connection to fix-tcp torn down with a RST (ss -K: SOCK_DESTROY). */
function resetFromPeer(b: FixBed): void {
  b.net.run(b.netns, 'ss', ['-K', '-t', 'state', 'established', `( sport = :${FIX_PORT} )`])
}

for (const io of IOS) {
  t.test(`--io ${io}: a RST from the peer → disconnect, reconnect, logon resuming sequence numbers, orders keep flowing`, async (t) => {
    const b = await fixBed(t)
    const run = startFixTcp(b, ['--rate', '200', '--duration', '8', '--reset', '--reconnect-interval', '0.5'], io)
    await waitUntil('orders acked', () => acked(run) > 200)
    const before = acked(run)
    resetFromPeer(b)
    await waitUntil('the reconnection', () => named(run, 'reconnect').length > 0)
    const { end } = await runFixTcp(b, [], io, run)
    const disconnect = named(run, 'disconnect')[0]!.data
    t.ok(disconnect.willReconnect, `disconnect reported: ${disconnect.reason}`)
    t.match(disconnect.reason, io === 'xdp' ? /reset/ : /closed/)
    const logons = named(run, 'logon')
    t.equal(logons.length, 2, 'logged on again')
    t.equal(logons[1]!.data.reset, false, 'the second logon resumes the sequence numbers')
    t.ok(logons[1]!.data.seq > 1, `the peer's Logon carried MsgSeqNum ${logons[1]!.data.seq}`)
    t.ok(end.orders.acked > before + 200, `orders flowed after the reconnection (${before} → ${end.orders.acked})`)
    t.same({ made: end.connections.made, disconnects: end.connections.disconnects, reconnects: end.connections.reconnects }, { made: 2, disconnects: 1, reconnects: 1 })
    accounted(t, end)
    t.equal(end.orders.unknown, 0, 'nothing lost: in-flight orders resent or their reports resent')
    t.equal(end.orders.outstanding, 0, 'nothing outstanding at the end')
    if (end.orders.outstanding !== 0) t.comment(JSON.stringify(run.events.filter((e) => !['interval', 'end', 'start'].includes(e.event))))
    umemBalanced(t, end)
    t.equal(end.closed, 'logout')
    nothingAttached(t, b, [run])
  })

  t.test(`--io ${io}: the acceptor killed and restarted mid-run: reconnect with backoff, orders flow after, accounting holds`, async (t) => {
    const b = await fixBed(t)
    // the bed's acceptor keeps no file store; replace it with one that does, so a restart resumes its numbers
    b.acceptor.child.kill('SIGTERM')
    await b.acceptor.exited
    const storeArgs = ['--store', `${b.dir}/acceptor-store`]
    b.acceptor = await startAcceptor(b, 'kbx', storeArgs)
    const run = startFixTcp(b, ['--rate', '200', '--duration', '14', '--reset', '--reconnect-interval', '0.3', '--order-timeout', '3'], io)
    await waitUntil('orders acked', () => acked(run) > 200)
    b.acceptor.child.kill('SIGKILL')
    await b.acceptor.exited
    await waitUntil('the disconnect', () => named(run, 'disconnect').length > 0)
    await new Promise((r) => setTimeout(r, 1500)) // down for a while: attempts refused, backing off
    const atRestart = acked(run)
    b.acceptor = await startAcceptor(b, 'kbx', storeArgs)
    await waitUntil('the reconnection', () => named(run, 'reconnect').length > 0)
    const { end } = await runFixTcp(b, [], io, run)
    const failed = named(run, 'reconnect-failed')
    t.ok(failed.length >= 1, `attempts while the acceptor was down failed (${failed.length})`)
    const delays = failed.map((e) => e.data.retryInSec as number)
    t.ok(delays.every((d, i) => i === 0 || d >= delays[i - 1]!), `backoff grows: ${delays.join(', ')} s`)
    t.equal(named(run, 'logon').length, 2)
    t.ok(named(run, 'interval').some((e) => e.data.session.state === 'closed'), 'interval events go on while disconnected')
    t.ok(end.orders.acked > atRestart + 200, `orders flowed after the restart (${atRestart} → ${end.orders.acked})`)
    t.equal(end.connections.reconnects, 1)
    t.equal(end.connections.failedAttempts, failed.length)
    accounted(t, end)
    t.equal(end.orders.outstanding, 0, 'nothing outstanding at a clean end (unknown after the order timeout at worst)')
    umemBalanced(t, end)
    // the restarted acceptor counted the orders it received after the restart
    b.acceptor.child.kill('SIGTERM')
    await b.acceptor.exited
    const accEnd = named(b.acceptor, 'end')[0]!.data
    t.ok(accEnd.orders > 200 && accEnd.acks === accEnd.orders, `the restarted acceptor received and acked ${accEnd.orders}`)
    nothingAttached(t, b, [run])
  })

  t.test(`--io ${io}: a silent peer (SIGSTOP): TestRequest, disconnect, reconnect after SIGCONT`, async (t) => {
    const b = await fixBed(t)
    const run = startFixTcp(b, ['--rate', '50', '--duration', '16', '--reset', '--heartbeat', '1', '--reconnect-interval', '0.5'], io)
    await waitUntil('orders acked', () => acked(run) > 50)
    b.acceptor.child.kill('SIGSTOP')
    t.teardown(() => void b.acceptor.child.kill('SIGCONT'))
    await waitUntil('the disconnect', () => named(run, 'disconnect').length > 0, 15_000)
    const stoppedAt = acked(run)
    b.acceptor.child.kill('SIGCONT')
    await waitUntil('the logon after SIGCONT', () => named(run, 'logon').length >= 2, 20_000)
    const { end } = await runFixTcp(b, [], io, run)
    t.ok(named(run, 'test-request').length >= 1, 'a TestRequest after the silence')
    t.match(named(run, 'disconnect')[0]!.data.reason, /TestRequest not answered/)
    t.ok(end.connections.reconnects >= 1)
    t.ok(end.orders.acked > stoppedAt, `orders flowed after SIGCONT (${stoppedAt} → ${end.orders.acked})`)
    accounted(t, end)
    t.equal(end.orders.outstanding, 0)
    umemBalanced(t, end)
    nothingAttached(t, b, [run])
  })
}

t.test('--no-reconnect: a lost connection ends the run with a clear error, exit 1, orders still accounted', async (t) => {
  const b = await fixBed(t)
  const run = startFixTcp(b, ['--rate', '200', '--duration', '20', '--reset', '--no-reconnect'], 'xdp')
  await waitUntil('orders acked', () => acked(run) > 100)
  b.acceptor.child.kill('SIGKILL')
  const exit = await run.exited
  t.equal(exit.code, 1, 'exit 1')
  t.match(run.stderr(), /--no-reconnect/)
  t.equal(named(run, 'disconnect')[0]?.data.willReconnect, false)
  t.equal(named(run, 'reconnect').length, 0)
  const end = named(run, 'end')[0]!.data
  t.equal(end.stoppedBy, 'error')
  t.same({ disconnects: end.connections.disconnects, reconnects: end.connections.reconnects }, { disconnects: 1, reconnects: 0 })
  accounted(t, end)
  umemBalanced(t, end)
  nothingAttached(t, b, [run])
})
