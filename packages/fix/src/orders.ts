// The application side of the client: NewOrderSingle (limit) out, ExecutionReports matched by ClOrdID,
// order→ack latency.
import { LatencyHistogram } from '@kbx/stats'
import { FixWriter, MsgType, Tag, UtcClock } from './codec.js'
import type { FixMessageView } from './codec.js'
import type { ReflexTemplate } from './reflex.js'
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
}

interface PendingOrder {
  sentNs: bigint
  /** Date.now() after which it counts as unknown (pushed back at each logon). */
  deadlineMs: number
}

export class OrderFlow {
  readonly counters: OrderCounters = { sent: 0, acked: 0, filled: 0, rejected: 0, unknown: 0, unmatched: 0 }
  /**
   * ClOrdID → when sent; removed at the first ExecutionReport or when given up (expire()), so it holds only
   * the orders in flight: memory stays flat however long the run.
   */
  private readonly pending = new Map<number, PendingOrder>()
  /** Milliseconds an order may wait for its first ExecutionReport while logged on. */
  orderTimeoutMs = 30_000
  readonly latency = new LatencyHistogram()
  intervalLatency = new LatencyHistogram()

  constructor(
    private readonly session: FixSession,
    private readonly spec: OrderSpec,
  ) {}

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
      n++
    }
    this.counters.unknown += n
    return n
  }

  send(): number {
    const store = this.session.store
    const clOrdId = store.nextClOrdId++
    this.session.sendApp('D', (w) => {
      w.int(Tag.ClOrdID, clOrdId)
      this.fieldsBeforeTime(w)
      w.bytes(Tag.TransactTime, this.clock.now())
      this.fieldsAfterTime(w)
    })
    this.pending.set(clOrdId, { sentNs: process.hrtime.bigint(), deadlineMs: Date.now() + this.orderTimeoutMs })
    this.counters.sent++
    return clOrdId
  }

  private fieldsBeforeTime(w: FixWriter): void {
    w.str(Tag.Symbol, this.spec.symbol).str(Tag.Side, this.spec.side)
  }

  private fieldsAfterTime(w: FixWriter): void {
    w.int(Tag.OrderQty, this.spec.qty).str(Tag.OrdType, '2').price(Tag.Price, this.spec.price).str(Tag.TimeInForce, '0')
  }

  /** The NewOrderSingle as the native reflex builds it: the same fields as send(), TransactTime = SendingTime. */
  reflexTemplate(beginString: string, senderCompId: string, targetCompId: string, headerFields: readonly (readonly [number, string])[] = []): ReflexTemplate {
    const header = Buffer.from(headerFields.map(([tag, value]) => `${tag}=${value}\x01`).join(''), 'latin1')
    const w = new FixWriter(beginString).begin('D')
    const start = w.mark()
    this.fieldsBeforeTime(w)
    const pre = w.bodySince(start)
    const middle = w.mark()
    this.fieldsAfterTime(w)
    return { beginString, senderCompId, targetCompId, msgType: 'D', pre, timeTag: Tag.TransactTime, post: w.bodySince(middle), header }
  }

  /** An order the reflex sent: recorded as if send() had sent it (the session records its message). */
  adopt(clOrdId: number, sentNs: bigint): void {
    const store = this.session.store
    if (clOrdId !== store.nextClOrdId) throw new Error(`adopted order has ClOrdID ${clOrdId}, the next is ${store.nextClOrdId}`)
    store.nextClOrdId = clOrdId + 1
    this.pending.set(clOrdId, { sentNs, deadlineMs: Date.now() + this.orderTimeoutMs })
    this.counters.sent++
  }

  private readonly clock = new UtcClock()

  /** An application message from the session. */
  onApp(msg: FixMessageView): void {
    if (msg.msgType !== MsgType.ExecutionReport) return
    const clOrdId = msg.int(Tag.ClOrdID)
    const execType = msg.char(Tag.ExecType)
    const order = this.pending.get(clOrdId)
    if (order !== undefined) {
      const ns = Number(process.hrtime.bigint() - order.sentNs)
      this.latency.record(ns)
      this.intervalLatency.record(ns)
      this.pending.delete(clOrdId)
      if (execType === 0x38) this.counters.rejected++
      else this.counters.acked++
    } else if (execType === 0x30 || execType === 0x38) {
      this.counters.unmatched++
    }
    if (execType === 0x46 || execType === 0x32) this.counters.filled++
  }
}
