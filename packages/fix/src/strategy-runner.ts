// A strategy at work in a run: its context (orders through the session, the lifecycle and the throttle; its book;
// its events; the native reflex), its handlers called from the session's step, and what ends it (stop(), a throw).
import type { JsonLines, Logger } from '@kbx/stats'
import { PRICE_SCALE, parsePrice } from './codec.js'
import type { FixMessageView } from './codec.js'
import type { LifecycleCounts, Transition } from './lifecycle.js'
import type { OrderFlow, OrderSpec } from './orders.js'
import type { ReflexOrder } from './reflex.js'
import { THROTTLE_REJECTED } from './session.js'
import { RESERVED_EVENTS } from './strategy.js'
import type { BookOrder, ExecutionReport, LogoutInfo, OrderTerms, ReflexPlan, Reject, Side, Strategy, StrategyConfig, StrategyContext } from './strategy.js'
import { MsgType, Tag } from './tags.js'

/** What the run gives its strategy. */
export interface StrategyHost {
  readonly flow: OrderFlow
  readonly json: JsonLines
  readonly log: Logger
  /** Our messages waiting for an answer (orders without a first report, cancels and replaces; throttle-held ones included). */
  inFlight(): number
  /** The transport's reflex on with orders of these terms (undefined: off); false when it has none or may not. */
  useReflex(spec: OrderSpec | undefined): boolean
}

interface BookEntry {
  spec: OrderSpec
  filled: number
}

const sideOf = (code: string): Side => (code === '2' ? 'sell' : 'buy')
const BOOK_SWEEP_MS = 1000

function quantity(msg: FixMessageView, tag: number): number {
  const text = msg.string(tag)
  const n = text === undefined ? NaN : Number(text)
  return Number.isFinite(n) ? n : 0
}

function decimalPrice(msg: FixMessageView, tag: number): number {
  const fixed = msg.price(tag)
  return Number.isNaN(fixed) ? 0 : fixed / PRICE_SCALE
}

export class StrategyRunner implements StrategyContext {
  readonly log: Logger
  loggedOn = false
  /** Why the strategy wants the run to end (stop() or a throw); undefined while it runs. */
  stopReason: string | undefined
  /** The handler that threw and its error. */
  failure: { handler: string; error: unknown } | undefined
  reflexRemaining = 0
  readonly counters = { events: 0, handlerCalls: 0, reflexOrders: 0 }
  private reflexSpec: OrderSpec | undefined
  private lastReflex: { triggerSeq: number; clOrdId: number } | undefined
  private timerMs = 0
  private timerDueMs = 0
  private sweepDueMs = 0
  private readonly book = new Map<number, BookEntry>()
  /** Replacements sent, not yet answered (their book entries wait for the report), by when sent. */
  private readonly openReplaces = new Map<number, number>()

  constructor(
    readonly strategy: Strategy & { name: string },
    private readonly host: StrategyHost,
    readonly config: StrategyConfig,
    readonly params: Readonly<Record<string, string>>,
    private readonly defaults: OrderSpec,
  ) {
    this.log = host.log.child({ strategy: strategy.name })
  }

  get stopping(): boolean {
    return this.stopReason !== undefined
  }

  /** The reflex may be armed for the next step: on, orders left, the strategy running. */
  get reflexArmable(): boolean {
    return this.reflexSpec !== undefined && this.reflexRemaining > 0 && !this.stopping
  }

  // StrategyContext

  get inFlight(): number {
    return this.host.inFlight()
  }

  newOrder(terms: OrderTerms = {}): number | undefined {
    if (!this.loggedOn || this.stopping) return undefined
    const spec = this.specOf(terms, this.defaults)
    const id = this.host.flow.send(spec)
    if (id === THROTTLE_REJECTED) return undefined
    this.book.set(id, { spec, filled: 0 })
    return id
  }

  cancel(clOrdId: number): number | undefined {
    if (!this.loggedOn || !this.host.flow.lifecycle.canAmend(clOrdId)) return undefined
    const id = this.host.flow.cancel(clOrdId, this.book.get(clOrdId)?.spec ?? this.defaults)
    return id === THROTTLE_REJECTED ? undefined : id
  }

  replace(clOrdId: number, terms: Omit<OrderTerms, 'symbol' | 'side'>): number | undefined {
    if (!this.loggedOn || this.stopping || !this.host.flow.lifecycle.canAmend(clOrdId)) return undefined
    const was = this.book.get(clOrdId) ?? { spec: this.defaults, filled: 0 }
    const spec = this.specOf(terms, was.spec)
    const id = this.host.flow.replace(clOrdId, spec)
    if (id === THROTTLE_REJECTED) return undefined
    this.book.set(id, { spec, filled: was.filled })
    this.openReplaces.set(id, Date.now())
    return id
  }

  status(clOrdId: number): boolean {
    if (!this.loggedOn) return false
    return this.host.flow.status(clOrdId, this.book.get(clOrdId)?.spec ?? this.defaults) !== THROTTLE_REJECTED
  }

  cancelAll(): number {
    let n = 0
    for (const [id] of [...this.host.flow.lifecycle.liveOrders()]) if (this.cancel(id) !== undefined) n++
    return n
  }

  order(clOrdId: number): BookOrder | undefined {
    const state = this.host.flow.lifecycle.state(clOrdId)
    if (state === undefined) return undefined
    const entry = this.book.get(clOrdId) ?? { spec: this.defaults, filled: 0 }
    const { symbol, side, qty, price } = entry.spec
    return { clOrdId, state, symbol, side: sideOf(side), qty, price: price / PRICE_SCALE, filled: entry.filled }
  }

  orders(): BookOrder[] {
    const out: BookOrder[] = []
    for (const [id] of this.host.flow.lifecycle.liveOrders()) {
      const o = this.order(id)
      if (o !== undefined) out.push(o)
    }
    return out
  }

  counts(): LifecycleCounts {
    return this.host.flow.lifecycle.counts()
  }

  setTimer(intervalMs: number): void {
    if (!(intervalMs >= 0) || !Number.isFinite(intervalMs)) throw new RangeError(`setTimer: expected milliseconds ≥ 0, got ${intervalMs}`)
    this.timerMs = intervalMs
    this.timerDueMs = Date.now() + intervalMs
  }

  reflex(plan: ReflexPlan | null): boolean {
    if (plan === null || this.stopping) {
      this.reflexOff()
      return false
    }
    const spec = this.specOf(plan, this.defaults)
    if (!this.host.useReflex(spec)) {
      this.reflexOff()
      return false
    }
    this.reflexSpec = spec
    this.reflexRemaining = plan.count ?? Infinity
    return true
  }

  emit(eventOrData: string | Record<string, unknown>, data?: Record<string, unknown>): void {
    const event = typeof eventOrData === 'string' ? eventOrData : 'strategy'
    if (RESERVED_EVENTS.has(event)) throw new Error(`emit: "${event}" is one of fix-tcp's own events; pick another name`)
    this.counters.events++
    this.host.json.emit(event, typeof eventOrData === 'string' ? (data ?? {}) : eventOrData)
  }

  stop(reason = 'stopped by the strategy'): void {
    if (this.stopping) return
    this.stopReason = reason
    this.reflexOff()
    this.log.info({ reason }, 'strategy stopping: Logout once nothing is in flight')
  }

  // The run's calls

  logon(): void {
    this.loggedOn = true
    this.call('onLogon')
  }

  /** The session on this connection ended (Logout exchanged, or the connection lost). */
  loggedOut(reason: string, reconnecting: boolean): void {
    if (!this.loggedOn) return
    this.loggedOn = false
    const info: LogoutInfo = { reason, reconnecting }
    this.call('onLogout', info)
  }

  onApp(msg: FixMessageView, transition: Transition): void {
    switch (msg.msgType) {
      case MsgType.ExecutionReport:
        return this.onReport(msg, transition)
      case MsgType.OrderCancelReject: {
        const clOrdId = msg.int(Tag.ClOrdID)
        const origClOrdId = msg.int(Tag.OrigClOrdID)
        this.answered(clOrdId, origClOrdId)
        return this.call('onReject', { kind: 'cancel', clOrdId, origClOrdId, ordStatus: msg.string(Tag.OrdStatus), responseTo: msg.string(Tag.CxlRejResponseTo) === '2' ? 'replace' : 'cancel', reason: msg.string(Tag.CxlRejReason), text: msg.string(Tag.Text) } satisfies Reject)
      }
      case MsgType.BusinessReject: {
        const refId = msg.string(Tag.BusinessRejectRefID)
        const id = refId === undefined ? -1 : Number(refId)
        if (Number.isInteger(id)) this.answered(id, -1)
        return this.call('onReject', { kind: 'business', refId, refMsgType: msg.string(Tag.RefMsgType), reason: msg.string(Tag.BusinessRejectReason), text: msg.string(Tag.Text) } satisfies Reject)
      }
    }
  }

  /** A session-level Reject(3) of one of our messages. */
  sessionReject(refSeqNum: number, text: string | undefined): void {
    this.call('onReject', { kind: 'session', refSeqNum, text } satisfies Reject)
  }

  /** Housekeeping: the timer when due (while logged on), the book's leftovers swept now and then. */
  tick(nowMs: number): void {
    if (this.timerMs > 0 && nowMs >= this.timerDueMs && this.loggedOn && !this.stopping) {
      this.timerDueMs = Math.max(this.timerDueMs + this.timerMs, nowMs)
      this.call('onTimer')
    }
    if (nowMs >= this.sweepDueMs) {
      this.sweepDueMs = nowMs + BOOK_SWEEP_MS
      this.sweep(nowMs)
    }
  }

  /** Milliseconds until the timer is due (Infinity: no timer). */
  msUntilDue(nowMs: number): number {
    return this.timerMs > 0 && this.loggedOn && !this.stopping ? Math.max(0, this.timerDueMs - nowMs) : Infinity
  }

  /** The reflex sent this order (recorded by the run already): its terms into the book, the count down. */
  reflexSent(o: ReflexOrder): void {
    this.reflexRemaining--
    this.counters.reflexOrders++
    this.book.set(o.clOrdId, { spec: this.reflexSpec ?? this.defaults, filled: 0 })
    this.lastReflex = { triggerSeq: o.triggerSeq, clOrdId: o.clOrdId }
    if (this.reflexRemaining <= 0) this.reflexOff()
  }

  stats(): Record<string, unknown> {
    return { name: this.strategy.name, ...this.counters, stopReason: this.stopReason ?? null, ...(this.failure === undefined ? {} : { failed: { handler: this.failure.handler, message: messageOf(this.failure.error) } }) }
  }

  private onReport(msg: FixMessageView, transition: Transition): void {
    const clOrdId = msg.int(Tag.ClOrdID)
    const orig = msg.int(Tag.OrigClOrdID)
    const cumQty = quantity(msg, Tag.CumQty)
    const entry = this.book.get(clOrdId) ?? this.book.get(orig)
    if (entry !== undefined && msg.has(Tag.CumQty)) entry.filled = cumQty
    const seq = msg.int(Tag.MsgSeqNum)
    const reflex = this.lastReflex !== undefined && this.lastReflex.triggerSeq === seq ? this.lastReflex.clOrdId : undefined
    if (reflex !== undefined) this.lastReflex = undefined
    this.answered(clOrdId, orig)
    const side = msg.string(Tag.Side)
    const report: ExecutionReport = {
      clOrdId,
      origClOrdId: orig >= 0 ? orig : undefined,
      execType: msg.string(Tag.ExecType) ?? '',
      ordStatus: msg.string(Tag.OrdStatus) ?? '',
      order: transition?.clOrdId,
      state: transition === undefined ? this.host.flow.lifecycle.state(clOrdId) : transition.to,
      from: transition?.from,
      orderId: msg.string(Tag.OrderID),
      symbol: msg.string(Tag.Symbol),
      side: side === undefined ? undefined : sideOf(side),
      lastQty: quantity(msg, Tag.LastQty),
      lastPx: decimalPrice(msg, Tag.LastPx),
      cumQty,
      leavesQty: quantity(msg, Tag.LeavesQty),
      text: msg.string(Tag.Text),
      reflexClOrdId: reflex,
    }
    this.call('onExecutionReport', report)
  }

  /** A report or reject about these ClOrdIDs: book entries of orders no longer live go. */
  private answered(clOrdId: number, origClOrdId: number): void {
    this.openReplaces.delete(clOrdId)
    const lifecycle = this.host.flow.lifecycle
    for (const id of [clOrdId, origClOrdId]) if (id >= 0 && lifecycle.state(id) === undefined && !this.openReplaces.has(id)) this.book.delete(id)
  }

  private sweep(nowMs: number): void {
    const lifecycle = this.host.flow.lifecycle
    const giveUpMs = 2 * lifecycle.requestTimeoutMs
    for (const [id, sentMs] of this.openReplaces) if (nowMs - sentMs > giveUpMs) this.openReplaces.delete(id)
    for (const id of this.book.keys()) if (lifecycle.state(id) === undefined && !this.openReplaces.has(id)) this.book.delete(id)
  }

  private reflexOff(): void {
    if (this.reflexSpec !== undefined) this.host.useReflex(undefined)
    this.reflexSpec = undefined
    this.reflexRemaining = 0
  }

  /** Terms filled in from `base`; an Error (the strategy's bug) for a bad quantity, price or side. */
  private specOf(terms: OrderTerms, base: OrderSpec): OrderSpec {
    const qty = terms.qty ?? base.qty
    if (!Number.isSafeInteger(qty) || qty < 1) throw new RangeError(`order quantity must be a positive integer, got ${String(terms.qty)}`)
    let price = base.price
    if (terms.price !== undefined) {
      const text = typeof terms.price === 'number' ? terms.price.toFixed(8) : terms.price
      price = parsePrice(Buffer.from(text, 'latin1'), 0, Buffer.byteLength(text, 'latin1'))
      if (!(price > 0)) throw new RangeError(`order price must be a positive decimal with at most 8 decimals, got ${JSON.stringify(terms.price)}`)
    }
    if (terms.side !== undefined && terms.side !== 'buy' && terms.side !== 'sell') throw new RangeError(`order side must be "buy" or "sell", got ${JSON.stringify(terms.side)}`)
    const side = terms.side === undefined ? base.side : terms.side === 'buy' ? '1' : '2'
    const symbol = terms.symbol ?? base.symbol
    if (symbol.length === 0 || symbol.includes('\x01')) throw new RangeError(`order symbol must be non-empty text without SOH, got ${JSON.stringify(symbol)}`)
    return { symbol, side, qty, price }
  }

  /** A handler, if the strategy has it; a throw (or a rejected promise) fails the strategy: no more calls. */
  private call<H extends 'onLogon' | 'onExecutionReport' | 'onReject' | 'onTimer' | 'onLogout'>(handler: H, arg?: unknown): void {
    const fn = this.strategy[handler] as ((ctx: StrategyContext, arg?: unknown) => unknown) | undefined
    if (fn === undefined || this.failure !== undefined) return
    this.counters.handlerCalls++
    try {
      const r = fn(this, arg)
      if (typeof (r as PromiseLike<unknown> | undefined)?.then === 'function') (r as PromiseLike<unknown>).then(undefined, (err: unknown) => this.fail(handler, err))
    } catch (err) {
      this.fail(handler, err)
    }
  }

  private fail(handler: string, error: unknown): void {
    if (this.failure !== undefined) return
    this.failure = { handler, error }
    const message = messageOf(error)
    this.log.error({ handler }, `strategy ${this.strategy.name} threw in ${handler}: ${message}; logging out`)
    if (error instanceof Error) this.log.debug({ stack: error.stack }, 'strategy error stack')
    this.host.json.emit('strategy-error', { strategy: this.strategy.name, handler, message })
    this.stopReason ??= `strategy threw in ${handler}`
    this.reflexOff()
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
