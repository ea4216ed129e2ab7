// One fix-tcp run on @kbx/cli's runLoop: the session over a transport (xdp or socket) that is made again when
// lost, orders, interval and end stats. Each loop step belongs to one phase: the session on a connection,
// the backoff before a reconnection, or a reconnection attempt.
import { join } from 'node:path'
import { runLoop } from '@kbx/cli'
import type { ToolContext } from '@kbx/cli'
import { KbxError, NetError } from '@kbx/errors'
import { LatencyRecording } from '@kbx/report'
import { RateMeter, formatLiveLine } from '@kbx/stats'
import { Backoff } from './backoff.js'
import { PRICE_SCALE } from './codec.js'
import { OrderBreakdown } from './breakdown.js'
import type { FixTcpOptions, LogonPlan } from './client.js'
import { redactMessage } from './logon.js'
import { OrderFlow } from './orders.js'
import { OrderPacer } from './pacing.js'
import type { ReflexArm, ReflexOrder } from './reflex.js'
import { FixSession, LOGON_REFUSED } from './session.js'
import { endsTheRun, failureHint } from './session-end.js'
import type { SessionEvent } from './session.js'
import { FileSeqStore } from './store.js'
import type { Strategy } from './strategy.js'
import { StrategyRunner } from './strategy-runner.js'
import { MessageThrottle } from './throttle.js'
import { openTransport } from './transport.js'
import type { FixTransport, TransportHost } from './transport.js'

export const DEFAULT_STORE_DIR = '/var/tmp/kbx-fix'

/**
 * Application messages kept for resending (the orders in flight at a disconnection are among the last few;
 * older ones are gap-filled): a bound on memory that is reached in seconds at full rate, so RSS is flat after.
 */
export const RESEND_CAPACITY = 8192

/** The cap of the reconnection backoff (or --reconnect-interval when larger). */
export const RECONNECT_CAP_S = 30

const ORDER_HEADROOM = 64 * 1024 // transport room a paced order waits for (a slow peer): it and the session's messages
const LOGON_MSG_TYPE = Buffer.from('\x0135=A\x01', 'latin1')

/** Settings the run takes beyond the options: the resolved XDP mode and the gateway-facing address. */
export interface FixTcpRunSetup {
  opts: FixTcpOptions
  mode: 'native' | 'skb' | 'auto'
  price: number
  localAddress: string
  logon: LogonPlan
  /** --strategy: its handlers (loaded) and --strategy-param; the run's orders are then the strategy's. */
  strategy?: { strategy: Strategy & { name: string }; params: Record<string, string> }
}

type Phase =
  | { kind: 'session' }
  | { kind: 'backoff'; attempt: number; retryAt: number; downSince: number }
  | { kind: 'connecting'; attempt: number; downSince: number; done: Promise<void>; error?: Error; settled: boolean }

export class FixTcpRun implements TransportHost {
  readonly store: FileSeqStore
  readonly session: FixSession
  readonly flow: OrderFlow
  /** --max-msg-rate (undefined: no limit). */
  readonly throttle: MessageThrottle | undefined
  readonly opts: FixTcpOptions
  transport!: FixTransport
  /** Why the session or its connection ended (undefined while it runs). */
  closedReason: string | undefined
  /** We sent the Logout that ends the run (done, --duration, signal). */
  stopping = false
  stoppedBy = 'done'
  /** Why the run ends with an error (exit 1), once it does. */
  failure: string | undefined
  readonly sessionEvents: Record<string, number> = {}
  limit: number
  readonly oneAtATime: boolean
  readonly durationMs: number
  readonly started = Date.now()
  /** --rate: when each order is due (moved past the time spent disconnected); undefined one at a time. */
  readonly pacer: OrderPacer | undefined
  readonly breakdown = new OrderBreakdown()
  /** The first order's time, for ordersPerSec. */
  firstOrderNs = 0n
  lastOrderDoneMs = 0
  readonly reconnects = { disconnects: 0, reconnects: 0, failedAttempts: 0, downMs: 0 }
  readonly backoff: Backoff
  /** --hgrm/--hlog/--plot: order→ack latency per interval. */
  readonly recording: LatencyRecording
  phase: Phase = { kind: 'session' }
  /** --duration reached: when the Logout goes out even with orders still in flight (0: not yet). */
  private drainUntil = 0
  /** The strategy's stop: when the Logout goes out even with messages still in flight (0: not yet). */
  private strategyStopAt = 0
  /** --strategy (undefined: the orders of --orders/--rate). */
  strategy: StrategyRunner | undefined
  /** The next session housekeeping (stop checks, timers, pacing): about once per ms between xdp turns. */
  private housekeepingAt = 0
  private readonly orderRates = new RateMeter<{ sent: number; acked: number }>()
  private wake: (() => void) | undefined

  constructor(
    readonly ctx: ToolContext<FixTcpOptions>,
    readonly setup: FixTcpRunSetup,
  ) {
    const opts = (this.opts = setup.opts)
    this.recording = LatencyRecording.open(ctx, { series: [{ name: 'order-ack', label: 'order→ack' }], rateUnit: 'acked orders/s', latencyLabel: 'order→ack latency' })
    this.store = new FileSeqStore(opts.store ?? join(DEFAULT_STORE_DIR, `${opts.sender}-${opts.target}.json`))
    ctx.onCleanup(() => this.store.close())
    this.throttle = opts.maxMsgRate === undefined ? undefined : new MessageThrottle({ maxPerSec: opts.maxMsgRate, mode: opts.throttleMode ?? 'queue', includeAdmin: opts.throttleAdmin === true })
    this.session = this.createSession()
    if (opts.testGapAt !== undefined) this.session.skipOutgoingSeq = opts.testGapAt
    this.flow = new OrderFlow(this.session, { symbol: opts.symbol, side: opts.side === 'buy' ? '1' : '2', qty: opts.qty, price: setup.price })
    this.flow.orderTimeoutMs = opts.orderTimeout * 1000
    this.flow.lifecycle.requestTimeoutMs = opts.orderTimeout * 1000
    this.flow.policy = { cancelRatio: opts.cancelRatio, replaceRatio: opts.replaceRatio, statusRatio: opts.statusRatio }
    this.limit = opts.orders ?? (opts.rate === undefined ? 0 : Infinity)
    if (setup.strategy !== undefined) this.attachStrategy(setup.strategy.strategy, setup.strategy.params)
    this.oneAtATime = opts.rate === undefined
    this.pacer = opts.rate === undefined ? undefined : new OrderPacer(opts.rate, this.limit)
    this.flow.breakdown = this.breakdown
    this.durationMs = (opts.duration ?? 0) * 1000
    this.backoff = new Backoff(opts.reconnectInterval * 1000, Math.max(RECONNECT_CAP_S, opts.reconnectInterval) * 1000)
    ctx.signal.addEventListener('abort', () => this.notify(), { once: true })
  }

  /** The strategy sends the orders (before run()): --orders and --rate are its to read, the run sends nothing of its own. */
  attachStrategy(strategy: Strategy & { name: string }, params: Record<string, string>): void {
    if (this.strategy !== undefined || this.session.state !== 'idle') throw new Error('a strategy is attached once, before the run starts')
    this.limit = 0
    this.strategy = this.createStrategy(strategy, params)
  }

  private createStrategy(strategy: Strategy & { name: string }, params: Record<string, string>): StrategyRunner {
    const { ctx, opts, flow, setup } = this
    const spec = { symbol: opts.symbol, side: opts.side === 'buy' ? ('1' as const) : ('2' as const), qty: opts.qty, price: setup.price }
    const host = {
      flow,
      json: ctx.json,
      log: ctx.log,
      inFlight: () => flow.outstanding + flow.lifecycle.awaiting, // held by the throttle: among them already
      useReflex: (terms: typeof spec | undefined): boolean => {
        if (terms === undefined) return this.transport.useReflex(undefined)
        if (opts.io !== 'xdp' || !opts.reflex || !this.reflexAllowed) return false
        return this.transport.useReflex(flow.reflexTemplate(setup.logon.beginString, opts.sender, opts.target, setup.logon.headerFields, terms))
      },
    }
    const config = { orders: opts.orders, rate: opts.rate, symbol: opts.symbol, side: opts.side, qty: opts.qty, price: setup.price / PRICE_SCALE }
    return new StrategyRunner(strategy, host, config, params, spec)
  }

  private createSession(): FixSession {
    const { ctx, opts } = this
    // --log-level debug shows each Logon sent, Password and RawData redacted (the only message logged)
    const logLogons = ctx.log.isLevelEnabled('debug')
    return new FixSession({
      role: 'initiator',
      senderCompId: opts.sender,
      targetCompId: opts.target,
      beginString: this.setup.logon.beginString,
      heartBtInt: opts.heartbeat,
      resetOnLogon: opts.reset === true,
      logonFields: this.setup.logon.logonFields,
      headerFields: this.setup.logon.headerFields,
      store: this.store,
      saveOnReceive: false, // saved once the replies (the next order) are on the wire
      resendCapacity: RESEND_CAPACITY,
      ...(this.throttle === undefined ? {} : { throttle: this.throttle }),
      send: (bytes) => {
        if (logLogons && bytes.includes(LOGON_MSG_TYPE)) ctx.log.debug({ message: redactMessage(bytes) }, 'Logon sent')
        if (!this.transport.write(bytes)) ctx.log.warn({ bytes: bytes.length }, 'no connection, or 64 MiB already waiting to be sent: message dropped (resent on request)')
      },
      onApp: (msg) => {
        const transition = this.flow.onApp(msg)
        this.strategy?.onApp(msg, transition)
      },
      onEvent: (e: SessionEvent) => {
        this.sessionEvents[e.event] = (this.sessionEvents[e.event] ?? 0) + 1
        const { event, ...data } = e
        ctx.json.emit(event, data)
        if (event === 'logon') {
          ctx.log.info(data, 'logged on')
          this.flow.renewDeadlines()
          this.backoff.reset()
          if (this.strategy !== undefined && this.firstOrderNs === 0n) this.firstOrderNs = process.hrtime.bigint() // ordersPerSec from the first logon
          this.strategy?.logon()
        }
        if (event === 'reject' && typeof e['refSeqNum'] === 'number') this.strategy?.sessionReject(e['refSeqNum'], typeof e['text'] === 'string' ? e['text'] : undefined)
        this.notify()
      },
      onClose: (reason) => {
        this.closedReason ??= reason
        this.notify()
      },
    })
  }

  /** The native reflex answers an ExecutionReport with the next NewOrderSingle in C, outside the session's sendApp:
   * not under --max-msg-rate (the throttle's window is the session's) nor when orders get cancels, replaces or
   * status requests (more than one report per order, and requests of our own between orders). */
  get reflexAllowed(): boolean {
    return this.throttle === undefined && !this.flow.amends
  }

  /** Nothing of ours waiting for an answer or held by the throttle: the run may log out. */
  private get quiet(): boolean {
    return this.flow.outstanding === 0 && this.flow.lifecycle.awaiting === 0 && this.session.heldCount === 0
  }

  /** The first connection (errors are fatal: exit 1); tests hand in their own transport. */
  async open(connect: typeof openTransport = openTransport): Promise<void> {
    const { ctx, opts } = this
    const { beginString, headerFields } = this.setup.logon
    const reflex = opts.io === 'xdp' && this.strategy === undefined && this.oneAtATime && opts.reflex && this.reflexAllowed ? this.flow.reflexTemplate(beginString, opts.sender, opts.target, headerFields) : undefined
    this.transport = await connect(
      {
        io: opts.io,
        connect: opts.connect,
        localAddress: this.setup.localAddress,
        xdp: {
          iface: opts.iface,
          queue: opts.queue,
          mode: this.setup.mode,
          busyPoll: opts.busyPoll === true,
          // paced, both ends sleep between orders: a spin after each send would hold the core the acceptor needs
          ...(this.oneAtATime ? {} : { spinAfterSendUs: 0 }),
          ...(opts.testDropSegment === undefined ? {} : { dropTxNth: opts.testDropSegment }),
          ...(opts.tcpKeepalive === undefined ? {} : { keepaliveS: opts.tcpKeepalive }),
          log: (msg) => ctx.log.info(msg),
        },
        ...(reflex === undefined ? {} : { reflex }),
        busyPoll: opts.busyPoll === true,
      },
      this,
      ctx,
    )
  }

  async run(): Promise<void> {
    const { ctx, opts, store, transport } = this
    ctx.json.start({ io: opts.io, iface: opts.iface, local: transport.local, connect: `${opts.connect.ip}:${opts.connect.port}`, sender: opts.sender, target: opts.target, beginString: this.setup.logon.beginString, credentials: this.setup.logon.credentials, logonFieldTags: this.setup.logon.logonFields.map(([tag]) => tag), headerFields: Object.fromEntries(this.setup.logon.headerFields), store: store.path, nextSenderSeq: store.nextSenderSeq, nextTargetSeq: store.nextTargetSeq, reconnect: opts.reconnect, amend: this.flow.policy, ...(this.strategy === undefined ? {} : { strategy: { name: this.strategy.strategy.name, params: this.strategy.params } }), ...(opts.maxMsgRate === undefined ? {} : { throttle: { maxMsgRate: opts.maxMsgRate, mode: opts.throttleMode ?? 'queue', admin: opts.throttleAdmin === true } }), ...transport.startFields() })
    this.session.start()
    this.recording.begin()
    // The run winds down by itself on ctx.signal (a Logout exchanged first), so the loop ends only when a step
    // says so; --duration likewise (orders in flight answered first).
    await runLoop({ signal: new AbortController().signal }, () => this.step(), {
      intervalSec: opts.interval,
      durationSec: 0,
      sliceMs: 0, // the xdp turn waits in the native call: back to the event loop after each
      onInterval: (tick) => this.emitInterval(Date.now(), Number(tick.elapsedNs) / 1e9),
      wait: () => this.waitBeforeStep(),
    })
    await this.finish()
  }

  /** One step of the loop; false ends the run. */
  step(): boolean {
    switch (this.phase.kind) {
      case 'session':
        return this.sessionStep()
      case 'backoff':
        return this.backoffStep(this.phase)
      case 'connecting':
        return this.connectingStep(this.phase)
    }
  }

  private waitBeforeStep(): Promise<void> | undefined {
    const phase = this.phase
    switch (phase.kind) {
      case 'session':
        return this.transport.waitsForEvents ? this.waitForChange(this.strategy !== undefined ? Math.min(this.msToNextOrder(), this.strategy.msUntilDue(Date.now())) : this.msToNextOrder()) : undefined
      case 'backoff':
        return this.waitForChange(Math.max(0, Math.min(100, phase.retryAt - Date.now())))
      case 'connecting':
        return phase.settled ? undefined : phase.done
    }
  }

  /** An event-driven transport's wait: until the next paced order (whole ms: a timer's grain), at most 100 ms. */
  private msToNextOrder(): number {
    const at = this.wakeAtNs()
    if (at === 0n) return 100
    return Math.min(100, Math.max(0, Math.ceil(Number(at - process.hrtime.bigint()) / 1e6)))
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

  /** The session on the current connection: housekeeping when due, then a transport turn. */
  private sessionStep(): boolean {
    const now = Date.now()
    if (now >= this.housekeepingAt || this.session.state === 'closed' || this.ctx.signal.aborted) {
      if (!this.housekeeping(now)) {
        const going = this.sessionEnded()
        this.strategy?.loggedOut(this.closedReason ?? 'logout', this.phase.kind === 'backoff')
        return going
      }
      this.housekeepingAt = now + (this.transport.waitsForEvents ? 0 : 1)
    }
    this.transport.turn()
    return true
  }

  /** Stop conditions, session timers, order pacing; false when the session is over. */
  private housekeeping(now: number): boolean {
    const { ctx, session } = this
    if (session.state === 'closed') return false
    if (ctx.signal.aborted && session.state === 'active') {
      this.stoppedBy = 'signal'
      this.stopping = true
      session.logout()
    } else if (this.durationMs > 0 && now - this.started >= this.durationMs && session.state === 'active') {
      // no new orders; the Logout once those in flight are answered (or after a short grace)
      this.drainUntil ||= now + Math.min(5000, this.flow.orderTimeoutMs)
      this.strategy?.stop('--duration reached')
      if (this.quiet || now >= this.drainUntil) {
        this.stoppedBy = 'duration'
        this.stopping = true
        session.logout()
      }
    } else if (this.strategy?.stopping === true && session.state === 'active') {
      // the strategy stopped (or threw): nothing new from it; the Logout once what is in flight is answered
      this.strategyStopAt ||= now + this.flow.orderTimeoutMs
      if (this.quiet || now >= this.strategyStopAt) {
        this.stoppedBy = this.strategy.failure === undefined ? 'strategy' : 'strategy-error'
        this.stopping = true
        session.logout()
      }
    } else if (session.state === 'active' && this.strategy === undefined && this.limit !== Infinity && this.flow.attempts >= this.limit && this.quiet) {
      if (this.lastOrderDoneMs === 0) this.lastOrderDoneMs = now
      if (now - this.lastOrderDoneMs >= this.opts.linger * 1000) {
        this.stopping = true
        session.logout()
      }
    } else if (ctx.signal.aborted && session.state !== 'logout-sent') {
      this.stoppedBy = 'signal'
      this.stopping = true
      return false
    }
    session.tick()
    if (session.active) this.flow.expire(now)
    this.transport.batch(() => {
      this.strategy?.tick(now)
      this.pump()
    })
    return (session.state as string) !== 'closed'
  }

  /** The session on this connection ended: the run ends, or a reconnection after a backoff. */
  private sessionEnded(): boolean {
    const { ctx, opts, store } = this
    if (this.stopping || ctx.signal.aborted) return false
    const reason = this.closedReason ?? 'connection lost'
    if (endsTheRun(reason, opts.retryRefusedLogon === true)) {
      this.failure = reason
      return false
    }
    this.reconnects.disconnects++
    const willReconnect = opts.reconnect && !this.timeUp()
    ctx.json.emit('disconnect', { reason, connection: this.transport.connections, elapsedSec: (Date.now() - this.started) / 1000, orders: this.orderCounts(), nextSenderSeq: store.nextSenderSeq, nextTargetSeq: store.nextTargetSeq, willReconnect, ...(willReconnect ? { retryInSec: this.backoff.nextMs / 1000 } : {}) })
    ctx.log.warn({ reason }, willReconnect ? 'disconnected: reconnecting' : 'disconnected')
    this.transport.drop()
    if (!opts.reconnect) {
      this.failure = `${reason} (--no-reconnect)`
      return false
    }
    const now = Date.now()
    this.phase = { kind: 'backoff', attempt: 1, retryAt: now + this.backoff.nextMs, downSince: now }
    return true
  }

  private timeUp(): boolean {
    return this.ctx.signal.aborted || (this.durationMs > 0 && Date.now() - this.started >= this.durationMs)
  }

  /** Waiting before an attempt; the run ends here on a signal or at --duration. */
  private backoffStep(phase: Extract<Phase, { kind: 'backoff' }>): boolean {
    if (this.timeUp()) {
      this.reconnects.downMs += Date.now() - phase.downSince
      this.stoppedBy = this.ctx.signal.aborted ? 'signal' : 'duration'
      return false
    }
    if (Date.now() < phase.retryAt) return true
    const attempt: Extract<Phase, { kind: 'connecting' }> = { kind: 'connecting', attempt: phase.attempt, downSince: phase.downSince, done: Promise.resolve(), settled: false }
    attempt.done = this.transport.reconnect(Math.max(5000, this.backoff.intervalMs)).then(
      () => void (attempt.settled = true),
      (err: unknown) => {
        attempt.error = err instanceof Error ? err : new Error(String(err))
        attempt.settled = true
      },
    )
    this.phase = attempt
    return true
  }

  /** A reconnection attempt: up (the session logs on again), or failed (a longer backoff). */
  private connectingStep(phase: Extract<Phase, { kind: 'connecting' }>): boolean {
    if (!phase.settled) return true
    const { ctx } = this
    if (phase.error !== undefined) {
      this.reconnects.failedAttempts++
      this.backoff.failed()
      ctx.json.emit('reconnect-failed', { attempt: phase.attempt, error: phase.error.message, retryInSec: this.backoff.nextMs / 1000 })
      this.phase = { kind: 'backoff', attempt: phase.attempt + 1, retryAt: Date.now() + this.backoff.nextMs, downSince: phase.downSince }
      return true
    }
    const downMs = Date.now() - phase.downSince
    this.reconnects.reconnects++
    this.reconnects.downMs += downMs
    this.backoff.failed() // until the logon: a connection the peer logs off at once backs off too
    // --rate: no burst of the orders "due" while down: the schedule resumes where it stopped
    if (this.pacer?.started === true) this.pacer.resume(this.flow.attempts, process.hrtime.bigint())
    this.breakdown.forget()
    ctx.json.emit('reconnect', { connection: this.transport.connections, attempts: phase.attempt, downMs, local: this.transport.local, nextSenderSeq: this.store.nextSenderSeq, nextTargetSeq: this.store.nextTargetSeq, outstanding: this.flow.outstanding })
    this.closedReason = undefined
    this.session.restart()
    this.phase = { kind: 'session' }
    this.housekeepingAt = 0
    return true
  }

  pump(): void {
    const { session, flow } = this
    if (!session.active || flow.attempts >= this.limit || this.drainUntil !== 0) return
    if (this.firstOrderNs === 0n) this.firstOrderNs = process.hrtime.bigint()
    const pacer = this.pacer
    if (pacer === undefined) {
      // the next order once the last is answered (and its cancel, replace or status too); not past a full window
      if (this.quiet && (this.throttle === undefined || this.throttle.hasRoom(Date.now()))) flow.send()
      return
    }
    const now = process.hrtime.bigint()
    pacer.start(now)
    const due = pacer.dueBy(now)
    while (flow.attempts < due && this.transport.room >= ORDER_HEADROOM) {
      this.breakdown.pacingLate.record(process.hrtime.bigint() - pacer.deadlineNs(flow.attempts))
      flow.send() // a NewOrderSingle the throttle rejects counts as an attempt
    }
  }

  /** fix-tcp's own paced orders (a strategy paces its own: --rate is its to read): nothing due, no deadline. */
  private get pacing(): OrderPacer | undefined {
    return this.strategy === undefined && this.session.active && this.drainUntil === 0 ? this.pacer : undefined
  }

  paceDue(): boolean {
    const pacer = this.pacing
    if (pacer === undefined) return false
    const before = this.flow.attempts
    if (pacer.started && before >= pacer.dueBy(process.hrtime.bigint())) return false
    this.transport.batch(() => this.pump())
    return this.flow.attempts > before
  }

  wakeAtNs(): bigint {
    const pacer = this.pacing
    if (pacer === undefined) return 0n
    return pacer.deadlineNs(this.flow.attempts)
  }

  // TransportHost

  receive(bytes: Buffer): void {
    this.session.receive(bytes)
    this.pump()
    this.notify()
  }

  received(): void {
    this.store.save()
  }

  /** The transport went away under the session. */
  gone(reason: string): void {
    if (this.session.state === 'closed') return
    // Closed after our Logon, unanswered: a refusal if we never logged on in this run (wrong CompIDs, credentials or
    // version, most likely); after a logon, a gateway restarting does the same, so it is a lost connection (backoff).
    const refused = this.session.state === 'logon-sent' && this.sessionEvents['logon'] === undefined
    this.session.disconnected()
    this.closedReason ??= refused ? `${LOGON_REFUSED}: the gateway closed the connection after our Logon, without a Logon or Logout (${reason})` : reason
    this.notify()
  }

  /** --io xdp, one order at a time: the native reflex, armed before each step with the session's current
   * numbers, answers the outstanding order's ExecutionReport with the next order in the step that received
   * it; anything unusual (admin message, gap, duplicate, framing error, TCP unable to send at once) is left
   * to the session. Armed only while the session is active, in sequence and has orders left to send. */
  reflexArm(): ReflexArm | undefined {
    const { session, flow, store } = this
    if (!this.reflexAllowed || !session.active || !session.inSequence || session.skipOutgoingSeq !== 0 || this.ctx.signal.aborted) return undefined
    if (this.strategy === undefined ? flow.counters.sent >= this.limit : !this.strategy.reflexArmable) return undefined
    if (this.durationMs > 0 && Date.now() - this.started >= this.durationMs) return undefined
    const clOrdId = flow.soleOutstanding
    if (clOrdId === undefined) return undefined
    return { clOrdId, expectSeq: store.nextTargetSeq, nextSeq: store.nextSenderSeq, nextClOrdId: store.nextClOrdId }
  }

  reflexSent(o: ReflexOrder): void {
    this.session.adoptSent(o.seq, 'D', o.body, o.sendingTime)
    this.flow.adopt(o.clOrdId, o.sentNs)
    this.strategy?.reflexSent(o)
  }

  // Stats

  /** sent == acked + rejected + unknown + outstanding. */
  private orderCounts() {
    return { ...this.flow.counters, outstanding: this.flow.outstanding }
  }

  /** Every ClOrdID's state (final ones cumulative), and the throttle when there is one. */
  private lifecycleFields() {
    const throttle = this.throttle
    return {
      lifecycle: this.flow.lifecycle.counts(),
      ...(throttle === undefined ? {} : { throttle: { maxMsgRate: throttle.options.maxPerSec, mode: throttle.options.mode, admin: throttle.options.includeAdmin, held: this.session.heldCount, ...throttle.counters } }),
    }
  }

  private connectionCounts() {
    return { made: this.transport.connections, ...this.reconnects }
  }

  private emitInterval(now: number, elapsedSec: number): void {
    const c = this.flow.counters
    const rates = this.orderRates.sample({ sent: c.sent, acked: c.acked }).rates
    const transportFields = this.transport.intervalFields()
    this.ctx.json.interval({
      elapsedSec: (now - this.started) / 1000,
      orders: this.orderCounts(),
      ...this.lifecycleFields(),
      perSec: { sent: rates.sent, acked: rates.acked },
      latencyUs: this.flow.intervalLatency.summary(),
      ...transportFields,
      session: { state: this.session.state, nextSenderSeq: this.store.nextSenderSeq, nextTargetSeq: this.store.nextTargetSeq },
      connections: this.connectionCounts(),
      memory: { rssBytes: process.memoryUsage.rss(), heapUsedBytes: process.memoryUsage().heapUsed },
      tcp: this.transport.tcpStats(),
    })
    this.recording.interval({ 'order-ack': this.flow.intervalLatency }, rates.acked)
    this.flow.intervalLatency.reset()
    if (this.ctx.status.enabled) {
      const latency = this.flow.latency.summary()
      this.ctx.status.update(formatLiveLine({ tool: 'fix-tcp', elapsedSec, rate: { value: rates.acked, unit: 'acked/s' }, totals: { sent: c.sent, acked: c.acked, outstanding: this.flow.outstanding }, latency: { label: 'order→ack', ...latency } }))
    }
  }

  private async finish(): Promise<void> {
    const { ctx, store, flow, failure, strategy } = this
    strategy?.loggedOut(this.closedReason ?? 'logout', false)
    await this.transport.close()
    store.save()
    const c = flow.counters
    const ordersSec = this.firstOrderNs === 0n ? 0 : Number(process.hrtime.bigint() - this.firstOrderNs) / 1e9
    this.recording.interval({ 'order-ack': flow.intervalLatency })
    for (const file of this.recording.finish()) ctx.log.info(`wrote ${file}`)
    ctx.end({
      stoppedBy: failure !== undefined ? 'error' : strategy?.failure !== undefined ? 'strategy-error' : this.stoppedBy,
      closed: failure ?? this.closedReason ?? 'logout',
      io: this.opts.io,
      orders: this.orderCounts(),
      ...this.lifecycleFields(),
      ...(strategy === undefined ? {} : { strategy: strategy.stats() }),
      ordersPerSec: ordersSec > 0 ? Math.round(c.acked / ordersSec) : 0,
      latencyUs: flow.latency.summary(),
      ...(c.cancelsSent > 0 ? { cancelLatencyUs: flow.cancelLatency.summary() } : {}),
      breakdownUs: this.breakdown.summary(),
      ...this.transport.endFields(),
      session: { ...this.session.counters, events: this.sessionEvents, nextSenderSeq: store.nextSenderSeq, nextTargetSeq: store.nextTargetSeq },
      connections: this.connectionCounts(),
      parser: this.session.parser.counters,
      memory: { rssBytes: process.memoryUsage.rss(), heapUsedBytes: process.memoryUsage().heapUsed },
      tcp: this.transport.tcpStats(),
    })
    if (failure !== undefined) throw new NetError(`FIX session ended: ${failure}`, { op: 'fix session', hint: failureHint(failure) })
    if (strategy?.failure !== undefined) {
      const { handler, error } = strategy.failure
      throw new KbxError(`strategy ${strategy.strategy.name} threw in ${handler}: ${error instanceof Error ? error.message : String(error)}`, { op: `strategy ${handler}`, hint: 'the session was logged out cleanly; --log-level debug shows the stack', cause: error })
    }
  }
}
