// `fix-tcp`: one FIX initiator session, orders out, ExecutionReports matched, JSON stats.
import { join } from 'node:path'
import { Option, parseChoice, parseIpPortOption, parseIntOption, parseInterfaceName, parseScaledInt, parseSeconds } from '@kbx/cli'
import type { Command, IpPort, ToolContext } from '@kbx/cli'
import { NetError, UsageError } from '@kbx/errors'
import { KBX_FIX_TIMING_NAMES, KBX_FIX_TIMING_RING } from './native.js'
import { interfaceInfo } from '@kbx/net'
import { LatencyHistogram } from '@kbx/stats'
import { parsePrice } from './codec.js'
import { OrderFlow } from './orders.js'
import { FixSession } from './session.js'
import type { SessionEvent } from './session.js'
import { FileSeqStore } from './store.js'
import { Backoff, FixLink } from './link.js'
import type { ReflexArm } from './reflex.js'

export const TOOL = 'fix-tcp'
export const DEFAULT_STORE_DIR = '/var/tmp/kbx-fix'

export interface FixTcpOptions {
  iface: string
  connect: IpPort
  sender: string
  target: string
  orders?: number
  rate?: number
  duration?: number
  interval: number
  io: 'xdp' | 'socket'
  fixVersion: '4.4' | '4.2'
  heartbeat: number
  reset?: boolean
  store?: string
  symbol: string
  side: 'buy' | 'sell'
  qty: number
  price: string
  linger: number
  testGapAt?: number
  testDropSegment?: number
  xdpMode: 'native' | 'skb' | 'auto'
  queue: number
  busyPoll?: boolean
  /** Default true (--no-reflex: false): one order at a time over --io xdp, the native reflex sends the next order. */
  reflex: boolean
  /** Default true (--no-reconnect: false): a lost connection is made again and the session logs on again. */
  reconnect: boolean
  /** Seconds before the first reconnection attempt; doubled per failed attempt up to RECONNECT_CAP_S. */
  reconnectInterval: number
  /** Seconds of logged-on time an order may wait for its first ExecutionReport before it counts as unknown. */
  orderTimeout: number
}

/**
 * Application messages kept for resending (the orders in flight at a disconnection are among the last few;
 * older ones are gap-filled): a bound on memory that is reached in seconds at full rate, so RSS is flat after.
 */
export const RESEND_CAPACITY = 8192

/** The cap of the reconnection backoff (or --reconnect-interval when larger). */
export const RECONNECT_CAP_S = 30

/** Session ends that another logon cannot fix: the run ends with an error instead of reconnecting. */
const FATAL_CLOSE = /^(MsgSeqNum too low|CompID problem)/

export function buildFixTcp(program: Command): void {
  program
    .option('--iface <name>', 'interface towards the gateway (source address; AF_XDP interface for --io xdp)', (v) => parseInterfaceName(v, '--iface'), 'fix0')
    .option('--connect <ip:port>', 'FIX gateway (acceptor) address', parseIpPortOption('--connect'), { ip: '10.0.3.2', port: 9878 })
    .option('--sender <id>', 'SenderCompID (49)', 'CLIENT1')
    .option('--target <id>', 'TargetCompID (56)', 'EXCH')
    .option('--orders <n>', 'NewOrderSingles to send (alone: one at a time, each after the previous ack)', parseScaledInt('--orders', { min: 0 }))
    .option('--rate <r>', 'orders per second (paced, without waiting for acks)', parseScaledInt('--rate', { min: 1 }))
    .option('--duration <s>', 'stop (clean Logout) after this long', parseSeconds('--duration', { min: 0 }))
    .option('--interval <s>', 'seconds between interval stats', parseSeconds('--interval', { min: 0 }), 1)
    .addOption(new Option('--io <kind>', 'transport: xdp (userspace TCP on AF_XDP) or socket (kernel TCP)').choices(['xdp', 'socket']).default('xdp'))
    .option('--fix-version <v>', 'FIX.4.4 or FIX.4.2', parseChoice('--fix-version', ['4.4', '4.2'] as const), '4.4')
    .option('--heartbeat <s>', 'HeartBtInt (108) proposed on Logon, seconds', parseIntOption('--heartbeat', { min: 1, max: 3600 }), 30)
    .option('--reset', 'send ResetSeqNumFlag(141)=Y on the first Logon: both sides start again from 1 (never on a logon after a reconnection)')
    .option('--store <path>', `sequence-number store (default ${DEFAULT_STORE_DIR}/SENDER-TARGET.json)`)
    .option('--symbol <s>', 'Symbol (55)', 'KBX')
    .addOption(new Option('--side <side>', 'Side (54)').choices(['buy', 'sell']).default('buy'))
    .option('--qty <n>', 'OrderQty (38)', parseIntOption('--qty', { min: 1 }), 100)
    .option('--price <p>', 'limit Price (44)', '100.25')
    .option('--linger <s>', 'stay logged on (idle, heartbeats only) this long after the last order, before Logout', parseSeconds('--linger', { min: 0 }), 0)
    .addOption(new Option('--xdp-mode <mode>', 'XDP attach mode for --io xdp').choices(['native', 'skb', 'auto']).default('auto'))
    .option('--queue <n>', 'RX queue of --iface for --io xdp', parseIntOption('--queue', { min: 0 }), 0)
    .option('--busy-poll', '--io xdp: spin on the AF_XDP RX ring instead of sleeping in poll() when idle (lowest latency; keeps one core at 100%)')
    .option('--no-reflex', '--io xdp, one order at a time: send each next order from the TypeScript session instead of the native reflex (C answers the ExecutionReport in the step that received it)')
    .option('--reconnect-interval <s>', `seconds before reconnecting after the connection or the session is lost (doubled per failed attempt, up to ${RECONNECT_CAP_S} s)`, parseSeconds('--reconnect-interval', { min: 0.01 }), 1)
    .option('--no-reconnect', 'exit with an error (exit 1) instead of reconnecting when the connection or the session is lost')
    .option('--order-timeout <s>', 'seconds of logged-on time an order may wait for its first ExecutionReport before it counts as unknown', parseSeconds('--order-timeout', { min: 0.1 }), 30)
    .addOption(new Option('--test-drop-segment <n>', 'test hook (--io xdp): drop our Nth data segment once').argParser(parseIntOption('--test-drop-segment', { min: 1 })).hideHelp())
    .addOption(new Option('--test-gap-at <seq>', 'test hook: skip this outgoing MsgSeqNum once').argParser(parseIntOption('--test-gap-at', { min: 1 })).hideHelp())
}

export async function runFixTcp(ctx: ToolContext): Promise<void> {
  const opts = ctx.opts as unknown as FixTcpOptions
  const price = parsePrice(Buffer.from(opts.price), 0, Buffer.byteLength(opts.price))
  if (!(price > 0)) throw new UsageError(`--price: expected a positive decimal price with at most 8 decimals, got ${JSON.stringify(opts.price)}`)
  if (opts.busyPoll === true && opts.io !== 'xdp') throw new UsageError('--busy-poll: only with --io xdp (the kernel socket is event-driven)')
  const info = interfaceInfo(opts.iface)
  const localAddress = info.ipv4[0]
  if (localAddress === undefined) throw new NetError(`interface ${opts.iface} has no IPv4 address`, { op: 'interface address', hint: `ip addr add … dev ${opts.iface}` })
  const run = new FixTcpRun(ctx, opts, price)
  await run.open(localAddress)
  await run.run()
}

const timingNames = KBX_FIX_TIMING_NAMES
type Timings = Record<(typeof timingNames)[number], LatencyHistogram>
const timings = (): Timings => Object.fromEntries(timingNames.map((n) => [n, new LatencyHistogram()])) as Timings

/** One fix-tcp run: the session over a link that is made again when lost, orders, stats. */
class FixTcpRun {
  readonly store: FileSeqStore
  readonly session: FixSession
  readonly flow: OrderFlow
  link!: FixLink
  /** Why the session or its connection ended (undefined while it runs). */
  closedReason: string | undefined
  /** We sent the Logout that ends the run (done, --duration, signal). */
  stopping = false
  stoppedBy = 'done'
  readonly sessionEvents: Record<string, number> = {}
  readonly limit: number
  readonly oneAtATime: boolean
  readonly durationMs: number
  readonly started = Date.now()
  /** --rate pacing origin (moved past the time spent disconnected); first order's time for ordersPerSec. */
  pacingOriginNs = 0n
  firstOrderNs = 0n
  lastOrderDoneMs = 0
  readonly internal = timings()
  readonly intervalInternal = timings()
  lastReflexStats: Record<string, number | boolean> | undefined
  reflexOn = false
  readonly reconnects = { disconnects: 0, reconnects: 0, failedAttempts: 0, downMs: 0 }
  readonly backoff: Backoff
  private wake: (() => void) | undefined

  constructor(
    readonly ctx: ToolContext,
    readonly opts: FixTcpOptions,
    price: number,
  ) {
    this.store = new FileSeqStore(opts.store ?? join(DEFAULT_STORE_DIR, `${opts.sender}-${opts.target}.json`))
    ctx.onCleanup(() => this.store.close())
    this.session = new FixSession({
      role: 'initiator',
      senderCompId: opts.sender,
      targetCompId: opts.target,
      beginString: `FIX.${opts.fixVersion}`,
      heartBtInt: opts.heartbeat,
      resetOnLogon: opts.reset === true,
      store: this.store,
      saveOnReceive: false, // saved once the replies (the next order) are on the wire
      resendCapacity: RESEND_CAPACITY,
      send: (bytes) => {
        if (!this.link.write(bytes)) ctx.log.warn({ bytes: bytes.length }, 'send staging buffer full or no connection: message dropped (resent on request)')
      },
      onApp: (msg) => this.flow.onApp(msg),
      onEvent: (e: SessionEvent) => {
        this.sessionEvents[e.event] = (this.sessionEvents[e.event] ?? 0) + 1
        const { event, ...data } = e
        ctx.json.emit(event, data)
        if (event === 'logon') {
          ctx.log.info(data, 'logged on')
          this.flow.renewDeadlines()
          this.backoff.reset()
        }
        this.notify()
      },
      onClose: (reason) => {
        this.closedReason ??= reason
        this.notify()
      },
    })
    if (opts.testGapAt !== undefined) this.session.skipOutgoingSeq = opts.testGapAt
    this.flow = new OrderFlow(this.session, { symbol: opts.symbol, side: opts.side === 'buy' ? '1' : '2', qty: opts.qty, price })
    this.flow.orderTimeoutMs = opts.orderTimeout * 1000
    this.limit = opts.orders ?? (opts.rate === undefined ? 0 : Infinity)
    this.oneAtATime = opts.rate === undefined
    this.durationMs = (opts.duration ?? 0) * 1000
    this.backoff = new Backoff(opts.reconnectInterval * 1000, Math.max(RECONNECT_CAP_S, opts.reconnectInterval) * 1000)
    this.nextIntervalAt = this.started + opts.interval * 1000
  }

  get xdp() {
    return this.link.xdp
  }

  notify(): void {
    this.wake?.()
  }

  private waitForChange(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined
        resolve()
      }, ms)
      this.wake = () => {
        clearTimeout(timer)
        this.wake = undefined
        resolve()
      }
    })
  }

  async open(localAddress: string): Promise<void> {
    const { ctx, opts } = this
    this.link = await FixLink.open(
      {
        io: opts.io,
        connect: opts.connect,
        localAddress,
        xdp: {
          iface: opts.iface,
          queue: opts.queue,
          mode: opts.xdpMode,
          busyPoll: opts.busyPoll === true,
          ...(opts.testDropSegment === undefined ? {} : { dropTxNth: opts.testDropSegment }),
          log: (msg) => ctx.log.info(msg),
        },
        onData: (chunk) => {
          const s = this.link.socket
          s?.cork()
          this.session.receive(chunk)
          this.pump()
          s?.uncork()
          this.store.save()
          this.notify()
        },
        onGone: (reason) => this.peerGone(reason),
      },
      ctx,
    )
    this.reflexOn = this.xdp !== undefined && this.oneAtATime && opts.reflex
    if (this.xdp !== undefined && this.reflexOn) this.xdp.configureReflex(this.flow.reflexTemplate(`FIX.${opts.fixVersion}`, opts.sender, opts.target))
  }

  /** The transport went away under the session. */
  peerGone(reason: string): void {
    if (this.session.state === 'closed') return
    this.session.disconnected()
    this.closedReason ??= reason
    this.notify()
  }

  async run(): Promise<void> {
    const { ctx, opts, store, xdp } = this
    ctx.json.start({ io: opts.io, iface: opts.iface, local: this.link.local, connect: `${opts.connect.ip}:${opts.connect.port}`, sender: opts.sender, target: opts.target, beginString: `FIX.${opts.fixVersion}`, store: store.path, nextSenderSeq: store.nextSenderSeq, nextTargetSeq: store.nextTargetSeq, reconnect: opts.reconnect, ...(xdp !== undefined ? { xdp: { mode: xdp.xdpMode, linkId: xdp.xdpLinkId, progId: xdp.xdpProgId, zeroCopy: xdp.zeroCopy } } : {}) })
    this.session.start()
    let failure: string | undefined
    for (;;) {
      await this.runSession()
      if (this.stopping || ctx.signal.aborted) break
      const reason = this.closedReason ?? 'connection lost'
      if (FATAL_CLOSE.test(reason)) {
        failure = reason
        break
      }
      this.reconnects.disconnects++
      const willReconnect = opts.reconnect && !this.timeUp()
      ctx.json.emit('disconnect', { reason, connection: this.link.connections, elapsedSec: (Date.now() - this.started) / 1000, orders: this.orderCounts(), nextSenderSeq: store.nextSenderSeq, nextTargetSeq: store.nextTargetSeq, willReconnect, ...(willReconnect ? { retryInSec: this.backoff.nextMs / 1000 } : {}) })
      ctx.log.warn({ reason }, willReconnect ? 'disconnected: reconnecting' : 'disconnected')
      this.link.drop()
      if (!opts.reconnect) {
        failure = `${reason} (--no-reconnect)`
        break
      }
      if (!(await this.reconnect())) break
    }
    await this.finish(failure)
  }

  private timeUp(): boolean {
    return this.ctx.signal.aborted || (this.durationMs > 0 && Date.now() - this.started >= this.durationMs)
  }

  /** Attempts with backoff until one is up (true), or the run is over (signal, --duration: false). */
  private async reconnect(): Promise<boolean> {
    const { ctx } = this
    const downSince = Date.now()
    for (let attempt = 1; ; attempt++) {
      const delay = this.backoff.nextMs
      const until = Date.now() + delay
      while (Date.now() < until && !this.timeUp()) {
        this.intervalDue(Date.now())
        await this.waitForChange(Math.min(100, until - Date.now()))
      }
      if (this.timeUp()) {
        this.reconnects.downMs += Date.now() - downSince
        this.stoppedBy = ctx.signal.aborted ? 'signal' : 'duration'
        return false
      }
      try {
        await this.link.reconnect(Math.max(5000, this.backoff.intervalMs))
      } catch (err) {
        this.reconnects.failedAttempts++
        this.backoff.failed()
        ctx.json.emit('reconnect-failed', { attempt, error: (err as Error).message, retryInSec: this.backoff.nextMs / 1000 })
        continue
      }
      const downMs = Date.now() - downSince
      this.reconnects.reconnects++
      this.reconnects.downMs += downMs
      this.backoff.failed() // until the logon: a connection the peer logs off at once backs off too
      // --rate: no burst of the orders "due" while down: the schedule resumes where it stopped
      if (!this.oneAtATime && this.pacingOriginNs !== 0n) this.pacingOriginNs = process.hrtime.bigint() - BigInt(Math.round((this.flow.counters.sent / this.opts.rate!) * 1e9))
      ctx.json.emit('reconnect', { connection: this.link.connections, attempts: attempt, downMs, local: this.link.local, nextSenderSeq: this.store.nextSenderSeq, nextTargetSeq: this.store.nextTargetSeq, outstanding: this.flow.outstanding })
      this.closedReason = undefined
      this.session.restart()
      return true
    }
  }

  /** The session on the current connection, until it closes (logout, error, connection lost). */
  private async runSession(): Promise<void> {
    const { ctx, session } = this
    while (session.state !== 'closed') {
      const now = Date.now()
      if (ctx.signal.aborted && session.state === 'active') {
        this.stoppedBy = 'signal'
        this.stopping = true
        session.logout()
      } else if (this.durationMs > 0 && now - this.started >= this.durationMs && session.state === 'active') {
        // no new orders; the Logout once those in flight are answered (or after a short grace)
        this.drainUntil ||= now + Math.min(5000, this.flow.orderTimeoutMs)
        if (this.flow.outstanding === 0 || now >= this.drainUntil) {
          this.stoppedBy = 'duration'
          this.stopping = true
          session.logout()
        }
      } else if (session.state === 'active' && this.limit !== Infinity && this.flow.counters.sent >= this.limit && this.flow.outstanding === 0) {
        if (this.lastOrderDoneMs === 0) this.lastOrderDoneMs = now
        if (now - this.lastOrderDoneMs >= this.opts.linger * 1000) {
          this.stopping = true
          session.logout()
        }
      } else if (ctx.signal.aborted && session.state !== 'logout-sent') {
        this.stoppedBy = 'signal'
        this.stopping = true
        break
      }
      session.tick()
      if (session.active) this.flow.expire(now)
      this.link.socket?.cork()
      this.pump()
      this.link.socket?.uncork()
      this.intervalDue(now)
      if ((session.state as string) === 'closed') break
      if (this.xdp !== undefined) {
        // Spin on the native batch call (idle, it waits up to 1 ms for frames: asleep in poll(), or spinning
        // on the RX ring with --busy-poll), yielding to the event loop between batches so signals and timers
        // run; housekeeping above about once per ms.
        const until = Date.now() + 1
        do {
          this.xdpStep(this.xdp.pendingBytes > 0 ? 0 : 1)
          await new Promise<void>((resolve) => setImmediate(resolve))
        } while (Date.now() < until && (session.state as string) !== 'closed' && !ctx.signal.aborted)
      } else {
        await this.waitForChange(this.oneAtATime ? 100 : 1)
      }
    }
  }

  private nextIntervalAt = 0

  /** An `interval` event when one is due (also while disconnected). */
  private intervalDue(now: number): void {
    if (this.opts.interval <= 0 || now < this.nextIntervalAt) return
    this.emitInterval(now)
    this.nextIntervalAt += this.opts.interval * 1000
    if (this.nextIntervalAt <= now) this.nextIntervalAt = now + this.opts.interval * 1000
  }
  /** --duration reached: when the Logout goes out even with orders still in flight (0: not yet). */
  private drainUntil = 0

  pump(): void {
    const { session, flow } = this
    if (!session.active || flow.counters.sent >= this.limit || this.drainUntil !== 0) return
    if (this.pacingOriginNs === 0n) this.pacingOriginNs = this.firstOrderNs = process.hrtime.bigint()
    if (this.oneAtATime) {
      if (flow.outstanding === 0) flow.send()
      return
    }
    const due = Math.min(this.limit, Math.floor((Number(process.hrtime.bigint() - this.pacingOriginNs) / 1e9) * this.opts.rate!) + 1)
    while (flow.counters.sent < due) flow.send()
  }

  /**
   * --io xdp, one order at a time: the native reflex, armed before each step with the session's current
   * numbers, answers the outstanding order's ExecutionReport with the next order in the step that received
   * it; anything unusual (admin message, gap, duplicate, framing error, TCP unable to send at once) is left
   * to the session. Armed only while the session is active, in sequence and has orders left to send.
   */
  private reflexArm(): ReflexArm | undefined {
    const { session, flow, store } = this
    if (!this.reflexOn || !session.active || !session.inSequence || session.skipOutgoingSeq !== 0 || flow.counters.sent >= this.limit || this.ctx.signal.aborted) return undefined
    if (this.durationMs > 0 && Date.now() - this.started >= this.durationMs) return undefined
    const clOrdId = flow.soleOutstanding
    if (clOrdId === undefined) return undefined
    return { clOrdId, expectSeq: store.nextTargetSeq, nextSeq: store.nextSenderSeq, nextClOrdId: store.nextClOrdId }
  }

  /**
   * --io xdp: one native batch (send, receive, timers); received bytes straight to the session. When they
   * make the session answer (the next order, a Heartbeat), the answer goes out in a batch call right away,
   * not after an event-loop turn. The order the reflex sent is recorded before the session reads the
   * ExecutionReport it answered.
   */
  private xdpStep(timeoutMs: number): void {
    const xdp = this.xdp!
    let rx = xdp.step(timeoutMs, this.reflexArm())
    const received = rx.length > 0
    for (let rounds = 0; ; rounds++) {
      if (xdp.reflexSent) {
        const o = xdp.reflexOrder()
        this.session.adoptSent(o.seq, 'D', o.body, o.sendingTime)
        this.flow.adopt(o.clOrdId, o.sentNs)
      }
      if (rx.length === 0) break
      this.session.receive(rx)
      this.pump()
      this.notify()
      if (xdp.pendingBytes === 0 || rounds === 64) break
      rx = xdp.step(0, this.reflexArm())
    }
    if (received) this.store.save()
    if (xdp.timingsWaiting > KBX_FIX_TIMING_RING / 2) this.drainTimings()
    const gone = this.link.xdpGone
    if (gone !== undefined && this.session.state !== 'closed') this.peerGone(gone)
  }

  private drainTimings(): void {
    const xdp = this.xdp
    if (xdp === undefined || xdp.closed) return
    const samples = xdp.drainTimings()
    for (const name of timingNames) {
      this.internal[name].recordMany(samples[name])
      this.intervalInternal[name].recordMany(samples[name])
    }
  }

  private tcpStats(): Record<string, unknown> {
    const xdp = this.xdp
    if (xdp === undefined) return { io: 'socket', note: "kernel TCP: retransmits/dup ACKs are the kernel's (see nstat)" }
    return { ...xdp.stats(), umem: xdp.umemAccounting() }
  }

  /**
   * --io xdp: internalUs (RX descriptors taken → reply submitted to TX), of which internalNativeUs in C
   * (TCP, copies, checksums) and internalKickUs in the TX call (TX ring + sendto); the rest is TS and FFI.
   */
  private internalStats(h: Timings): Record<string, unknown> {
    if (this.xdp === undefined) return {}
    return { internalUs: h.response.summary(), internalNativeUs: h.native.summary(), internalKickUs: h.kick.summary(), internalReflexUs: h.reflex.summary(), internalReflexKickUs: h.reflexKick.summary() }
  }

  /** --io xdp: what the native reflex framed and did (counts since start). */
  private reflexStats(): Record<string, number | boolean> | undefined {
    const xdp = this.xdp
    if (xdp === undefined || xdp.closed) return this.lastReflexStats
    const c = xdp.reflexCounters()
    this.lastReflexStats = { enabled: this.reflexOn, sent: c.sent, deferred: c.deferred, disarmed: c.disarmed, armed: c.armed, messages: c.messages, badChecksum: c.bad_checksum, badBodyLength: c.bad_body_length, badHeader: c.bad_header, garbageBytes: c.garbage_bytes }
    return this.lastReflexStats
  }

  /** sent == acked + rejected + unknown + outstanding. */
  private orderCounts() {
    return { ...this.flow.counters, outstanding: this.flow.outstanding }
  }

  private connectionCounts() {
    return { made: this.link.connections, ...this.reconnects }
  }

  private lastSnapshot = { sent: 0, acked: 0 }

  private emitInterval(now: number): void {
    this.drainTimings()
    const c = this.flow.counters
    const every = this.opts.interval
    this.ctx.json.interval({
      elapsedSec: (now - this.started) / 1000,
      orders: this.orderCounts(),
      perSec: { sent: (c.sent - this.lastSnapshot.sent) / every, acked: (c.acked - this.lastSnapshot.acked) / every },
      latencyUs: this.flow.intervalLatency.summary(),
      ...this.internalStats(this.intervalInternal),
      ...(this.xdp === undefined ? {} : { reflex: this.reflexStats() }),
      session: { state: this.session.state, nextSenderSeq: this.store.nextSenderSeq, nextTargetSeq: this.store.nextTargetSeq },
      connections: this.connectionCounts(),
      memory: { rssBytes: process.memoryUsage.rss(), heapUsedBytes: process.memoryUsage().heapUsed },
      tcp: this.tcpStats(),
    })
    this.lastSnapshot = { sent: c.sent, acked: c.acked }
    this.flow.intervalLatency.reset()
    for (const h of Object.values(this.intervalInternal)) h.reset()
  }

  private async finish(failure: string | undefined): Promise<void> {
    const { ctx, store, flow } = this
    this.drainTimings()
    if (this.xdp !== undefined) this.reflexStats()
    await this.link.close()
    store.save()
    const c = flow.counters
    const ordersSec = this.firstOrderNs === 0n ? 0 : Number(process.hrtime.bigint() - this.firstOrderNs) / 1e9
    ctx.end({
      stoppedBy: failure !== undefined ? 'error' : this.stoppedBy,
      closed: failure ?? this.closedReason ?? 'logout',
      io: this.opts.io,
      orders: this.orderCounts(),
      ordersPerSec: ordersSec > 0 ? Math.round(c.acked / ordersSec) : 0,
      latencyUs: flow.latency.summary(),
      ...this.internalStats(this.internal),
      ...(this.lastReflexStats === undefined ? {} : { reflex: this.lastReflexStats }),
      session: { ...this.session.counters, events: this.sessionEvents, nextSenderSeq: store.nextSenderSeq, nextTargetSeq: store.nextTargetSeq },
      connections: this.connectionCounts(),
      parser: this.session.parser.counters,
      memory: { rssBytes: process.memoryUsage.rss(), heapUsedBytes: process.memoryUsage().heapUsed },
      tcp: this.tcpStats(),
    })
    if (failure !== undefined) throw new NetError(`FIX session ended: ${failure}`, { op: 'fix session', hint: failure.endsWith('(--no-reconnect)') ? 'without --no-reconnect, fix-tcp reconnects and logs on again' : 'rerun with --reset to start both sides from sequence number 1' })
  }
}
