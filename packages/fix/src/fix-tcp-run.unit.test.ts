// fix-tcp's run on the shared loop behind the Transport interface, with a transport in memory (an acceptor
// session per connection, scripted losses and failed attempts): orders, a lost connection, the backoff, failed
// attempts, the reconnection and logon, intervals, the clean end; --no-reconnect; a signal. Both kinds of
// transport: one the loop turns (as xdp) and one whose bytes arrive as events (as socket).
import t from 'tap'
import type { Test } from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ToolContext } from '@kbx/cli'
import { NetError } from '@kbx/errors'
import { JsonLines, TtyStatus, createLogger } from '@kbx/stats'
import type { EventData } from '@kbx/stats'
import { resolveLogon } from './client.js'
import type { FixTcpOptions } from './client.js'
import { Tag, buildMessage } from './codec.js'
import { FixTcpRun } from './fix-tcp-run.js'
import { FixSession } from './session.js'
import type { ResendStore } from './session.js'
import { MemorySeqStore } from './store.js'
import type { FixTransport, TransportHost } from './transport.js'

/** An acceptor session per connection (acks every order); the bytes cross in memory. */
class MemoryTransport implements FixTransport {
  readonly io = 'socket'
  connections = 1
  readonly local = '127.0.0.1:40000'
  /** Lose the connection once this many orders were acked. */
  loseAfterAcks = Infinity
  /** Reconnection attempts to refuse before one succeeds. */
  refuse = 0
  attempts = 0
  /** Answer this many Logons with a Logout (Text) then close, or close at once ('close'). */
  refuseLogons = 0
  refuseHow: 'logout' | 'close' = 'logout'
  /** Logons let through before refusing. */
  refuseAfterLogons = 0
  /** No room for writes (a peer whose window closed) until this time (Date.now() ms). */
  fullUntilMs = 0
  /** NewOrderSingles written while there was no room (a real transport would have dropped them). */
  ordersWrittenWhileFull = 0
  get room(): number {
    return Date.now() < this.fullUntilMs ? 0 : Number.POSITIVE_INFINITY
  }
  private readonly peerStore = new MemorySeqStore()
  /** Across the peer's connections, as fix-acceptor keeps it: a report lost with a connection is resent. */
  private readonly peerSent: ResendStore = new Map()
  private peer: FixSession | undefined
  private acks = 0
  private toHost: Buffer[] = []
  private lost = false

  constructor(
    private readonly host: TransportHost,
    readonly waitsForEvents: boolean,
  ) {
    this.peer = this.newPeer()
  }

  private newPeer(): FixSession {
    let execId = 1
    const peer: FixSession = new FixSession({
      role: 'acceptor',
      senderCompId: 'EXCH',
      targetCompId: 'CLIENT1',
      store: this.peerStore,
      resendStore: this.peerSent,
      send: (bytes) => this.deliver(Buffer.from(bytes)),
      onApp: (msg) => {
        const clOrdId = msg.int(Tag.ClOrdID)
        peer.sendApp('8', (w) => w.int(Tag.ClOrdID, clOrdId).int(Tag.OrderID, clOrdId).int(Tag.ExecID, execId++).str(Tag.ExecType, '0').str(Tag.OrdStatus, '0'))
        if (++this.acks === this.loseAfterAcks) this.lost = true
      },
    })
    return peer
  }

  /** To the host: at its next turn, or (events) on the next tick, then `after` (the connection lost behind the bytes). */
  private deliver(bytes: Buffer, after?: () => void): void {
    if (!this.waitsForEvents) return void this.toHost.push(bytes)
    setImmediate(() => {
      if (this.peer === undefined) return
      this.host.receive(bytes)
      this.host.received()
      after?.()
    })
  }

  useReflex(): boolean {
    return false
  }
  startFields() {
    return { memory: true }
  }
  write(bytes: Buffer): boolean {
    if (this.peer === undefined) return false
    if (this.room === 0 && bytes.includes('\x0135=D\x01')) this.ordersWrittenWhileFull++
    if (this.refuseLogons > 0 && bytes.includes('\x0135=A\x01') && this.refuseAfterLogons-- <= 0) {
      this.refuseLogons--
      // the Logout reaches the host before the connection goes (as the bytes before a FIN), however late the tick
      const lose = () => setTimeout(() => this.loseNow(), 5)
      if (this.refuseHow === 'logout') this.deliver(buildMessage([[35, '5'], [49, 'EXCH'], [56, 'CLIENT1'], [34, this.peerStore.nextSenderSeq++], [52, '20261203-10:00:00.000'], [58, 'Invalid username or password']]), this.waitsForEvents ? lose : undefined)
      else if (this.waitsForEvents) lose()
      if (!this.waitsForEvents) this.lost = true
      return true
    }
    this.peer.receive(Buffer.from(bytes))
    if (this.lost) setImmediate(() => this.loseNow())
    return true
  }
  batch(fn: () => void): void {
    fn()
  }
  turn(): void {
    const bytes = this.toHost.splice(0)
    for (const b of bytes) this.host.receive(b)
    if (bytes.length > 0) this.host.received()
    if (this.lost) this.loseNow()
  }
  private loseNow(): void {
    if (this.peer === undefined) return
    this.lost = false
    this.peer.disconnected()
    this.peer = undefined
    this.toHost = []
    this.host.gone('test: connection lost')
  }
  drop(): void {
    this.peer?.disconnected()
    this.peer = undefined
  }
  async reconnect(): Promise<void> {
    this.attempts++
    await new Promise((resolve) => setTimeout(resolve, 5))
    if (this.refuse-- > 0) throw new NetError('test: connection refused', { op: 'connect' })
    this.peer = this.newPeer()
    this.connections++
  }
  async close(): Promise<void> {
    this.peer = undefined
  }
  tcpStats() {
    return { io: 'memory' }
  }
  intervalFields() {
    return {}
  }
  endFields() {
    return {}
  }
}

function options(dir: string, overrides: Partial<FixTcpOptions>): FixTcpOptions {
  return {
    iface: 'lo', connect: { ip: '127.0.0.1', port: 9878 }, sender: 'CLIENT1', target: 'EXCH', orders: 40, duration: 0, interval: 0.05,
    io: 'socket', fixVersion: '4.4', heartbeat: 30, reset: true, store: join(dir, 'seq.json'), symbol: 'KBX', side: 'buy', qty: 100,
    price: '100.25', linger: 0.2, mode: 'auto', queue: 0, reflex: true, reconnect: true, reconnectInterval: 0.01, orderTimeout: 5, cancelRatio: 0, replaceRatio: 0, statusRatio: 0, ...overrides,
  }
}

async function run(t: Test, overrides: Partial<FixTcpOptions>, script: { waitsForEvents: boolean; loseAfterAcks?: number; refuse?: number; abortAfterMs?: number; refuseLogons?: number; refuseHow?: 'logout' | 'close'; refuseAfterLogons?: number; fullForMs?: number }) {
  const dir = mkdtempSync(join(tmpdir(), 'kbx-fix-run-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const events: { event: string; data: EventData }[] = []
  const json = new JsonLines({ tool: 'fix-tcp', out: { write: (line: string) => void events.push(...line.trim().split('\n').map((l) => JSON.parse(l))) } })
  const controller = new AbortController()
  const cleanups: (() => void | Promise<void>)[] = []
  const ctx: ToolContext<FixTcpOptions> = {
    tool: 'fix-tcp', opts: { ...options(dir, overrides), json: true, logLevel: 'silent', verbose: 0 }, args: [], log: createLogger({ name: 'fix-tcp', level: 'silent' }), json,
    status: new TtyStatus({ enabled: false }), signal: controller.signal, stopping: false, onCleanup: (fn) => void cleanups.push(fn), end: (data) => json.end(data),
  }
  const fixRun = new FixTcpRun(ctx, { opts: ctx.opts, mode: 'auto', price: 100.25, localAddress: '127.0.0.1', logon: resolveLogon(ctx.opts, {}) })
  let transport: MemoryTransport | undefined
  await fixRun.open(async (_o, host) => {
    transport = new MemoryTransport(host, script.waitsForEvents)
    transport.loseAfterAcks = script.loseAfterAcks ?? Infinity
    transport.refuse = script.refuse ?? 0
    transport.refuseLogons = script.refuseLogons ?? 0
    transport.refuseHow = script.refuseHow ?? 'logout'
    transport.refuseAfterLogons = script.refuseAfterLogons ?? 0
    transport.fullUntilMs = Date.now() + (script.fullForMs ?? 0)
    return transport
  })
  if (script.abortAfterMs !== undefined) setTimeout(() => controller.abort(), script.abortAfterMs)
  let error: unknown
  await fixRun.run().catch((err: unknown) => (error = err))
  for (const fn of cleanups.reverse()) await fn()
  const named = (name: string) => events.filter((e) => e.event === name)
  return { events, named, end: named('end')[0]?.data as Record<string, any>, error, transport: transport! }
}

for (const waitsForEvents of [false, true]) {
  const kind = waitsForEvents ? 'events (as socket)' : 'turns (as xdp)'
  t.test(`${kind}: a lost connection, two refused attempts, a reconnection; every order acked; intervals; a clean end`, async (t) => {
    const r = await run(t, {}, { waitsForEvents, loseAfterAcks: 15, refuse: 2 })
    t.equal(r.error, undefined)
    t.same(r.events[0]?.event, 'start')
    t.equal(r.events[0]?.data['memory'], true, 'the transport\'s start fields')
    t.equal(r.named('logon').length, 2, 'logged on twice')
    t.match(r.named('disconnect'), [{ data: { reason: 'test: connection lost', willReconnect: true } }])
    t.same(r.named('reconnect-failed').map((e) => e.data['attempt']), [1, 2])
    t.match(r.named('reconnect'), [{ data: { attempts: 3, connection: 2 } }])
    t.equal(r.transport.attempts, 3)
    t.ok(r.named('interval').length >= 2, `interval events (${r.named('interval').length})`)
    t.match(r.end, { stoppedBy: 'done', closed: 'logout', orders: { sent: 40, acked: 40, outstanding: 0 }, connections: { made: 2, disconnects: 1, reconnects: 1, failedAttempts: 2 }, tcp: { io: 'memory' } })
    t.equal(r.end.orders.unknown, 0, 'the report lost with the connection resent after the logon')
    t.ok(r.end.session.nextSenderSeq >= 44, `Logon, 40 orders, Logon, Logout at least: resumed, not reset, after the reconnection (${r.end.session.nextSenderSeq})`)
  })
}

for (const waitsForEvents of [false, true]) {
  const kind = waitsForEvents ? 'events (as socket)' : 'turns (as xdp)'
  t.test(`${kind}: --rate with no room in the transport (the peer's window closed): orders wait, none written to be dropped`, async (t) => {
    const r = await run(t, { rate: 2000 }, { waitsForEvents, fullForMs: 300 })
    t.equal(r.error, undefined)
    t.equal(r.transport.ordersWrittenWhileFull, 0, 'no order written while there was no room')
    t.match(r.end, { stoppedBy: 'done', orders: { sent: 40, acked: 40, outstanding: 0 } }, 'every order sent once there was room, and acked')
  })
}

t.test('--no-reconnect: the lost connection ends the run with an error, orders accounted', async (t) => {
  const r = await run(t, { reconnect: false }, { waitsForEvents: false, loseAfterAcks: 5 })
  t.type(r.error, NetError)
  t.match((r.error as Error).message, /test: connection lost \(--no-reconnect\)/)
  t.match(r.end, { stoppedBy: 'error', orders: { sent: 5, acked: 4, outstanding: 1 } }, 'the fifth report lost with the connection')
  t.equal(r.transport.attempts, 0)
})

t.test('a signal: Logout, then the end (stoppedBy signal); while disconnected it ends the backoff', async (t) => {
  const active = await run(t, { orders: undefined, rate: 200 }, { waitsForEvents: true, abortAfterMs: 150 })
  t.equal(active.error, undefined)
  t.match(active.end, { stoppedBy: 'signal', closed: 'logout' })
  t.equal(active.named('logout').length, 1)
  const down = await run(t, { reconnectInterval: 60 }, { waitsForEvents: false, loseAfterAcks: 3, abortAfterMs: 200 })
  t.match(down.end, { stoppedBy: 'signal', connections: { disconnects: 1, reconnects: 0 } })
  t.equal(down.transport.attempts, 0, 'no attempt during the backoff')
})

for (const waitsForEvents of [false, true]) {
  const kind = waitsForEvents ? 'events (as socket)' : 'turns (as xdp)'
  t.test(`${kind}: a refused Logon ends the run with its reason; --retry-refused-logon retries with the backoff`, async (t) => {
    const refused = await run(t, {}, { waitsForEvents, refuseLogons: 1 })
    t.type(refused.error, NetError)
    t.match((refused.error as Error).message, 'FIX session ended: logon refused: Invalid username or password')
    t.match((refused.error as NetError).hint, /credentials/)
    t.match(refused.end, { stoppedBy: 'error', closed: 'logon refused: Invalid username or password', orders: { sent: 0 } })
    t.equal(refused.transport.attempts, 0, 'no reconnection: the gateway is not hammered')
    t.equal(refused.named('disconnect').length, 0)
    const closed = await run(t, {}, { waitsForEvents, refuseLogons: 1, refuseHow: 'close' })
    t.match((closed.error as Error).message, /logon refused: the gateway closed the connection after our Logon/)
    t.equal(closed.transport.attempts, 0)
    const retried = await run(t, { retryRefusedLogon: true }, { waitsForEvents, refuseLogons: 2 })
    t.equal(retried.error, undefined, 'logged on at the third attempt')
    t.match(retried.end, { stoppedBy: 'done', orders: { sent: 40, acked: 40 } })
    t.same(retried.named('disconnect').map((e) => e.data['reason']), ['logon refused: Invalid username or password', 'logon refused: Invalid username or password'])
    const delays = retried.named('disconnect').map((e) => e.data['retryInSec'] as number)
    t.ok(delays[1]! > delays[0]!, `the backoff grows between refused logons (${delays.join(', ')} s)`)
    // after a logon, a connection closed at our next Logon is what a restarting gateway does: retried
    const restarting = await run(t, {}, { waitsForEvents, loseAfterAcks: 10, refuseLogons: 2, refuseHow: 'close', refuseAfterLogons: 1 })
    t.equal(restarting.error, undefined, 'logged on again after the two closed connections')
    t.same(restarting.named('disconnect').map((e) => e.data['willReconnect']), [true, true, true])
    t.match(restarting.end, { stoppedBy: 'done', orders: { sent: 40, acked: 40 }, connections: { reconnects: 3 } })
  })
}
