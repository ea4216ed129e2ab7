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

export interface OrderCounters {
  sent: number
  acked: number
  filled: number
  rejected: number
  unmatched: number
}

export class OrderFlow {
  readonly counters: OrderCounters = { sent: 0, acked: 0, filled: 0, rejected: 0, unmatched: 0 }
  /** ClOrdID → hrtime (ns) when sent; removed at the first ExecutionReport. */
  private readonly pending = new Map<number, bigint>()
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

  send(): number {
    const store = this.session.store
    const clOrdId = store.nextClOrdId++
    this.session.sendApp('D', (w) => {
      w.int(Tag.ClOrdID, clOrdId)
      this.fieldsBeforeTime(w)
      w.bytes(Tag.TransactTime, this.clock.now())
      this.fieldsAfterTime(w)
    })
    this.pending.set(clOrdId, process.hrtime.bigint())
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
  reflexTemplate(beginString: string, senderCompId: string, targetCompId: string): ReflexTemplate {
    const w = new FixWriter(beginString).begin('D')
    const start = w.mark()
    this.fieldsBeforeTime(w)
    const pre = w.bodySince(start)
    const middle = w.mark()
    this.fieldsAfterTime(w)
    return { beginString, senderCompId, targetCompId, msgType: 'D', pre, timeTag: Tag.TransactTime, post: w.bodySince(middle) }
  }

  /** An order the reflex sent: recorded as if send() had sent it (the session records its message). */
  adopt(clOrdId: number, sentNs: bigint): void {
    const store = this.session.store
    if (clOrdId !== store.nextClOrdId) throw new Error(`adopted order has ClOrdID ${clOrdId}, the next is ${store.nextClOrdId}`)
    store.nextClOrdId = clOrdId + 1
    this.pending.set(clOrdId, sentNs)
    this.counters.sent++
  }

  private readonly clock = new UtcClock()

  /** An application message from the session. */
  onApp(msg: FixMessageView): void {
    if (msg.msgType !== MsgType.ExecutionReport) return
    const clOrdId = msg.int(Tag.ClOrdID)
    const execType = msg.char(Tag.ExecType)
    const sentAt = this.pending.get(clOrdId)
    if (sentAt !== undefined) {
      const ns = Number(process.hrtime.bigint() - sentAt)
      this.latency.record(ns)
      this.intervalLatency.record(ns)
      this.pending.delete(clOrdId)
    } else if (execType === 0x30 || execType === 0x38) {
      this.counters.unmatched++
    }
    if (execType === 0x30) this.counters.acked++
    else if (execType === 0x46 || execType === 0x32) this.counters.filled++
    else if (execType === 0x38) this.counters.rejected++
  }
}
