// The application side of the client: NewOrderSingle (limit) out, ExecutionReports matched by ClOrdID,
// order→ack latency.
import { LatencyHistogram } from '@kbx/stats'
import { MsgType, Tag, UtcClock } from './codec.js'
import type { FixMessageView } from './codec.js'
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

  send(): number {
    const store = this.session.store
    const clOrdId = store.nextClOrdId++
    const spec = this.spec
    this.session.sendApp('D', (w) => {
      w.int(Tag.ClOrdID, clOrdId).str(Tag.Symbol, spec.symbol).str(Tag.Side, spec.side)
      w.bytes(Tag.TransactTime, this.clock.now())
      w.int(Tag.OrderQty, spec.qty).str(Tag.OrdType, '2').price(Tag.Price, spec.price).str(Tag.TimeInForce, '0')
    })
    this.pending.set(clOrdId, process.hrtime.bigint())
    this.counters.sent++
    return clOrdId
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
