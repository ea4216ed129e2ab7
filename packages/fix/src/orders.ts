// The application side of the client: NewOrderSingle (limit) out, ExecutionReports matched by ClOrdID,
// order→ack latency.
import { LatencyHistogram } from '@kbx/stats'
import { FixWriter, MsgType, Tag, UtcClock } from './codec.js'
import type { FixMessageView } from './codec.js'
import { OrderLifecycle } from './lifecycle.js'
import type { Transition } from './lifecycle.js'
import type { ReflexTemplate } from './reflex.js'
import { THROTTLE_REJECTED } from './session.js'
import type { FixSession } from './session.js'

export interface OrderSpec {
  symbol: string
  side: '1' | '2'
  qty: number
  /** Fixed point (× PRICE_SCALE). */
  price: number
}

/**
 * Every order sent is, at any moment, in exactly one of: acked (its first ExecutionReport was not a
 * reject), rejected (ExecType 8), unknown (no report within the order timeout of logged-on time: given up,
 * see expire()), or outstanding: sent == acked + rejected + unknown + outstanding.
 */
export interface OrderCounters {
  sent: number
  acked: number
  /** Fill reports (ExecType F or 2), counted apart: an acked order may be filled later. */
  filled: number
  rejected: number
  unknown: number
  /** ExecutionReports for no outstanding order: duplicates resent with PossDupFlag, reports after unknown. */
  unmatched: number
  /** NewOrderSingles the throttle did not send (--throttle-mode reject, or its queue full): not in sent. */
  throttled: number
  /** OrderCancelRequests, OrderCancelReplaceRequests and OrderStatusRequests sent (or held by the throttle). */
  cancelsSent: number
  replacesSent: number
  statusRequestsSent: number
}

/**
 * Shares of the orders that become new (acked, resting) that get an OrderCancelRequest, an
 * OrderCancelReplaceRequest (the replacement too: it rests again) or an OrderStatusRequest; 0 = never.
 * Deterministic (no randomness): the k-th such order draws frac(k·φ), evenly spread over [0, 1); below cancelRatio
 * it is canceled, below cancelRatio + replaceRatio replaced, and so on. The three add up to at most 1.
 */
export interface AmendPolicy {
  cancelRatio: number
  replaceRatio: number
  statusRatio: number
}

/** A replacement's price: the original's plus this (fixed point: 0.01). */
const REPLACE_PRICE_STEP = 1_000_000
const GOLDEN_RATIO_FRACTION = (Math.sqrt(5) - 1) / 2

interface PendingOrder {
  sentNs: bigint
  /** Date.now() after which it counts as unknown (pushed back at each logon). */
  deadlineMs: number
}

export class OrderFlow {
  readonly counters: OrderCounters = { sent: 0, acked: 0, filled: 0, rejected: 0, unknown: 0, unmatched: 0, throttled: 0, cancelsSent: 0, replacesSent: 0, statusRequestsSent: 0 }
  /** Every ClOrdID to a final state (counts in the end event's lifecycle). */
  readonly lifecycle: OrderLifecycle
  policy: AmendPolicy = { cancelRatio: 0, replaceRatio: 0, statusRatio: 0 }
  /** Orders that became new so far: the k-th draws frac(k·φ), an even spread over [0, 1) without randomness. */
  private amendable = 0
  /** Terms of live orders (for cancels and replaces), only while a policy can amend them. */
  private readonly terms = new Map<number, OrderSpec>()
  /**
   * ClOrdID → when sent; removed at the first ExecutionReport or when given up (expire()), so it holds only
   * the orders in flight: memory stays flat however long the run.
   */
  private readonly pending = new Map<number, PendingOrder>()
  /** Milliseconds an order may wait for its first ExecutionReport while logged on. */
  orderTimeoutMs = 30_000
  readonly latency = new LatencyHistogram()
  intervalLatency = new LatencyHistogram()
  /** OrderCancelRequest sent → its first answer (an ExecutionReport or OrderCancelReject for the request's ClOrdID). */
  readonly cancelLatency = new LatencyHistogram()
  /** Request ClOrdID → when sent, until answered or given up (as old as the order timeout): memory stays flat. */
  private readonly cancelsInFlight = new Map<number, { sentNs: bigint; sentMs: number }>()
  /** Per-order stamps (breakdown.ts): told of each order sent and of its first ExecutionReport. */
  breakdown: { decided(clOrdId: number, decidedNs: bigint): void; matched(clOrdId: number, matchedNs: bigint): void } | undefined

  constructor(
    private readonly session: FixSession,
    private readonly spec: OrderSpec,
  ) {
    this.lifecycle = new OrderLifecycle((id) => id >= 1 && id < session.store.nextClOrdId)
  }

  /** The policy sends requests of its own: orders are answered by more than one report. */
  get amends(): boolean {
    return this.policy.cancelRatio > 0 || this.policy.replaceRatio > 0 || this.policy.statusRatio > 0
  }

  /** NewOrderSingles sent or refused by the throttle: what --orders and --rate count. */
  get attempts(): number {
    return this.counters.sent + this.counters.throttled
  }

  get outstanding(): number {
    return this.pending.size
  }

  /** The one order waiting for its first ExecutionReport (one at a time), else undefined. */
  get soleOutstanding(): number | undefined {
    return this.pending.size === 1 ? (this.pending.keys().next().value as number) : undefined
  }

  /** Logged on (again): every outstanding order gets a full order timeout from now to be answered or resent. */
  renewDeadlines(nowMs = Date.now()): void {
    for (const o of this.pending.values()) o.deadlineMs = nowMs + this.orderTimeoutMs
  }

  /** Orders past their deadline become unknown (the map is in deadline order). Returns how many. */
  expire(nowMs = Date.now()): number {
    let n = 0
    for (const [id, o] of this.pending) {
      if (o.deadlineMs > nowMs) break
      this.pending.delete(id)
      this.lifecycle.forget(id)
      this.terms.delete(id)
      n++
    }
    this.counters.unknown += n
    for (const [id, c] of this.cancelsInFlight) {
      if (c.sentMs + this.orderTimeoutMs > nowMs) break
      this.cancelsInFlight.delete(id)
    }
    this.lifecycle.expireRequests(nowMs)
    return n
  }

  /** A NewOrderSingle (the --symbol/--side/--qty/--price order unless given); its ClOrdID, or THROTTLE_REJECTED when the throttle did not send it. */
  send(spec: OrderSpec = this.spec): number {
    const store = this.session.store
    const clOrdId = store.nextClOrdId
    const order: PendingOrder = { sentNs: process.hrtime.bigint(), deadlineMs: Date.now() + this.orderTimeoutMs }
    const sent = this.session.sendApp('D', (w) => {
      // held by the throttle: latency and the order timeout from when it left
      order.sentNs = process.hrtime.bigint()
      order.deadlineMs = Date.now() + this.orderTimeoutMs
      w.int(Tag.ClOrdID, clOrdId)
      this.fieldsBeforeTime(w, spec)
      w.bytes(Tag.TransactTime, this.clock.now())
      this.fieldsAfterTime(w, spec)
    })
    if (sent === THROTTLE_REJECTED) {
      this.counters.throttled++
      return THROTTLE_REJECTED
    }
    store.nextClOrdId++
    this.pending.set(clOrdId, order)
    this.breakdown?.decided(clOrdId, order.sentNs)
    this.lifecycle.newOrderSent(clOrdId)
    if (this.amends) this.terms.set(clOrdId, spec)
    this.counters.sent++
    return clOrdId
  }

  /** OrderCancelRequest for a resting order (terms: the order's, when the flow does not keep them); the request's ClOrdID, or THROTTLE_REJECTED. */
  cancel(origClOrdId: number, terms: OrderSpec = this.terms.get(origClOrdId) ?? this.spec): number {
    const id = this.request('F', origClOrdId, terms, (w) => w.int(Tag.OrderQty, terms.qty))
    if (id !== THROTTLE_REJECTED) {
      this.lifecycle.cancelSent(id, origClOrdId)
      this.cancelsInFlight.set(id, { sentNs: process.hrtime.bigint(), sentMs: Date.now() })
      this.counters.cancelsSent++
    }
    return id
  }

  /** OrderCancelReplaceRequest: to `terms` (default: the same quantity at a price one step up); the replacement's ClOrdID, or THROTTLE_REJECTED. */
  replace(origClOrdId: number, to?: OrderSpec): number {
    const was = this.terms.get(origClOrdId) ?? this.spec
    const terms = to ?? { ...was, price: was.price + REPLACE_PRICE_STEP }
    const id = this.request('G', origClOrdId, terms, (w) => w.int(Tag.OrderQty, terms.qty).str(Tag.OrdType, '2').price(Tag.Price, terms.price))
    if (id !== THROTTLE_REJECTED) {
      this.lifecycle.replaceSent(id, origClOrdId)
      this.terms.delete(origClOrdId)
      this.terms.set(id, terms)
      this.counters.replacesSent++
    }
    return id
  }

  /** OrderStatusRequest for one of our orders (answered by an ExecutionReport); THROTTLE_REJECTED if not sent. */
  status(clOrdId: number, terms: OrderSpec = this.terms.get(clOrdId) ?? this.spec): number {
    const sent = this.session.sendApp('H', (w) => {
      w.int(Tag.ClOrdID, clOrdId)
      this.fieldsBeforeTime(w, terms)
    })
    if (sent !== THROTTLE_REJECTED) this.counters.statusRequestsSent++
    return sent
  }

  private request(msgType: 'F' | 'G', origClOrdId: number, terms: OrderSpec, after: (w: FixWriter) => void): number {
    const store = this.session.store
    const id = store.nextClOrdId
    const sent = this.session.sendApp(msgType, (w) => {
      w.int(Tag.OrigClOrdID, origClOrdId).int(Tag.ClOrdID, id)
      this.fieldsBeforeTime(w, terms)
      w.bytes(Tag.TransactTime, this.clock.now())
      after(w)
    })
    if (sent === THROTTLE_REJECTED) return THROTTLE_REJECTED
    store.nextClOrdId++
    return id
  }

  private fieldsBeforeTime(w: FixWriter, spec: OrderSpec): void {
    w.str(Tag.Symbol, spec.symbol).str(Tag.Side, spec.side)
  }

  private fieldsAfterTime(w: FixWriter, spec: OrderSpec): void {
    w.int(Tag.OrderQty, spec.qty).str(Tag.OrdType, '2').price(Tag.Price, spec.price).str(Tag.TimeInForce, '0')
  }

  /** The NewOrderSingle as the native reflex builds it: the same fields as send(spec), TransactTime = SendingTime. */
  reflexTemplate(beginString: string, senderCompId: string, targetCompId: string, headerFields: readonly (readonly [number, string])[] = [], spec: OrderSpec = this.spec): ReflexTemplate {
    const header = Buffer.from(headerFields.map(([tag, value]) => `${tag}=${value}\x01`).join(''), 'latin1')
    const w = new FixWriter(beginString).begin('D')
    const start = w.mark()
    this.fieldsBeforeTime(w, spec)
    const pre = w.bodySince(start)
    const middle = w.mark()
    this.fieldsAfterTime(w, spec)
    return { beginString, senderCompId, targetCompId, msgType: 'D', pre, timeTag: Tag.TransactTime, post: w.bodySince(middle), header }
  }

  /** An order the reflex sent: recorded as if send() had sent it (the session records its message). */
  adopt(clOrdId: number, sentNs: bigint): void {
    const store = this.session.store
    if (clOrdId !== store.nextClOrdId) throw new Error(`adopted order has ClOrdID ${clOrdId}, the next is ${store.nextClOrdId}`)
    store.nextClOrdId = clOrdId + 1
    this.pending.set(clOrdId, { sentNs, deadlineMs: Date.now() + this.orderTimeoutMs })
    this.lifecycle.newOrderSent(clOrdId)
    this.counters.sent++
  }

  private readonly clock = new UtcClock()

  /** An application message from the session; the order it moved, if any. */
  onApp(msg: FixMessageView): Transition {
    switch (msg.msgType) {
      case MsgType.ExecutionReport:
        return this.onExecutionReport(msg)
      case MsgType.OrderCancelReject:
        this.cancelAnswered(msg.int(Tag.ClOrdID))
        return this.settled(this.lifecycle.onCancelReject(msg.int(Tag.ClOrdID), msg.int(Tag.OrigClOrdID), msg.string(Tag.OrdStatus) ?? ''))
      case MsgType.BusinessReject: {
        const refId = msg.int(Tag.BusinessRejectRefID)
        if (this.pending.delete(refId)) this.counters.rejected++
        return this.settled(this.lifecycle.onBusinessReject(refId))
      }
    }
    return undefined
  }

  private onExecutionReport(msg: FixMessageView): Transition {
    const clOrdId = msg.int(Tag.ClOrdID)
    const execType = msg.char(Tag.ExecType)
    this.cancelAnswered(clOrdId)
    const order = this.pending.get(clOrdId)
    if (order !== undefined) {
      const matchedNs = process.hrtime.bigint()
      const ns = Number(matchedNs - order.sentNs)
      this.breakdown?.matched(clOrdId, matchedNs)
      this.latency.record(ns)
      this.intervalLatency.record(ns)
      this.pending.delete(clOrdId)
      if (execType === 0x38) this.counters.rejected++
      else this.counters.acked++
    } else if (execType === 0x30 || execType === 0x38) {
      this.counters.unmatched++
    }
    if (execType === 0x46 || execType === 0x32) this.counters.filled++
    const transition = this.lifecycle.onExecutionReport({ clOrdId, origClOrdId: msg.int(Tag.OrigClOrdID), execType: msg.string(Tag.ExecType) ?? '', ordStatus: msg.string(Tag.OrdStatus) ?? '' })
    return this.settled(transition)
  }

  private cancelAnswered(requestId: number): void {
    const c = this.cancelsInFlight.get(requestId)
    if (c === undefined) return
    this.cancelsInFlight.delete(requestId)
    this.cancelLatency.record(process.hrtime.bigint() - c.sentNs)
  }

  /** After a transition: final orders forget their terms; an order that became new meets the amend policy. */
  private settled(transition: Transition): Transition {
    if (transition === undefined || !this.amends) return transition
    const { clOrdId, from, to } = transition
    if (this.lifecycle.state(clOrdId) === undefined) this.terms.delete(clOrdId)
    if (to !== 'new' || from === 'new' || !this.lifecycle.canAmend(clOrdId)) return transition
    const u = (this.amendable++ * GOLDEN_RATIO_FRACTION) % 1
    const { cancelRatio, replaceRatio, statusRatio } = this.policy
    if (u < cancelRatio) this.cancel(clOrdId)
    else if (u < cancelRatio + replaceRatio) this.replace(clOrdId)
    else if (u < cancelRatio + replaceRatio + statusRatio) this.status(clOrdId)
    return transition
  }
}
