// The test acceptor's order handling, after QuickFIX's sample executor: every NewOrderSingle acked (ExecType New),
// filled at once when told to (fillEvery), else resting in a book per counterparty until canceled or replaced.
// OrderCancelRequest → ExecutionReport Canceled; OrderCancelReplaceRequest → Replaced (the order now under the
// new ClOrdID); OrderStatusRequest → ExecutionReport ExecType I with the order's status; for an order not resting
// (unknown, or filled already) an OrderCancelReject, or a status of Rejected. Other application messages: a
// BusinessMessageReject (unsupported message type).
import { MsgType, Tag } from './codec.js'
import type { FixMessageView, FixWriter } from './codec.js'
import type { FixSession } from './session.js'

export interface AcceptorOrderCounters {
  /** NewOrderSingles received (resent ones with PossDupFlag included). */
  orders: number
  /** Of those, resent with PossDupFlag=Y (acked again: filled orders are not kept to tell a duplicate). */
  possDupOrders: number
  /** ExecutionReports ExecType New: orders acked. */
  acks: number
  fills: number
  rejects: number
  cancels: number
  replaces: number
  cancelRejects: number
  statusRequests: number
  businessRejects: number
  /** Orders resting now. */
  resting: number
}

interface RestingOrder {
  orderId: number
  symbol: string
  side: string
  qty: number
  /** Fixed point; NaN for none. */
  price: number
}

export class AcceptorOrders {
  readonly counters: AcceptorOrderCounters = { orders: 0, possDupOrders: 0, acks: 0, fills: 0, rejects: 0, cancels: 0, replaces: 0, cancelRejects: 0, statusRequests: 0, businessRejects: 0, resting: 0 }
  /** counterparty → ClOrdID → order. */
  private readonly books = new Map<string, Map<string, RestingOrder>>()
  private nextOrderId = 1
  private nextExecId = 1

  constructor(private readonly options: { fillEvery: number; maxQty: number }) {}

  private book(counterparty: string): Map<string, RestingOrder> {
    let b = this.books.get(counterparty)
    if (b === undefined) this.books.set(counterparty, (b = new Map()))
    return b
  }

  onApp(counterparty: string, session: FixSession, msg: FixMessageView): void {
    switch (msg.msgType) {
      case MsgType.NewOrderSingle:
        return this.newOrder(counterparty, session, msg)
      case MsgType.OrderCancelRequest:
      case MsgType.OrderCancelReplaceRequest:
        return this.amend(counterparty, session, msg)
      case MsgType.OrderStatusRequest:
        return this.status(counterparty, session, msg)
      default:
        this.counters.businessRejects++
        session.sendApp('j', (w) => {
          w.int(Tag.RefSeqNum, msg.int(Tag.MsgSeqNum))
          copyField(w, msg, Tag.MsgType, Tag.RefMsgType)
          w.int(Tag.BusinessRejectReason, 3).str(Tag.Text, 'Unsupported Message Type')
        })
    }
  }

  private report(session: FixSession, o: RestingOrder, clOrdId: string, execType: string, ordStatus: string, extra: (w: FixWriter) => void): void {
    session.sendApp('8', (w) => {
      w.str(Tag.ClOrdID, clOrdId).int(Tag.OrderID, o.orderId).int(Tag.ExecID, this.nextExecId++).str(Tag.ExecType, execType).str(Tag.OrdStatus, ordStatus)
      w.str(Tag.Symbol, o.symbol).str(Tag.Side, o.side).int(Tag.OrderQty, o.qty)
      extra(w)
    })
  }

  private newOrder(counterparty: string, session: FixSession, msg: FixMessageView): void {
    this.counters.orders++
    if (msg.char(Tag.PossDupFlag) === 0x59) this.counters.possDupOrders++
    const clOrdId = msg.string(Tag.ClOrdID) ?? ''
    const o: RestingOrder = { orderId: this.nextOrderId++, symbol: msg.string(Tag.Symbol) ?? '', side: msg.string(Tag.Side) ?? '', qty: msg.int(Tag.OrderQty), price: msg.price(Tag.Price) }
    const reject = o.qty <= 0 || o.qty > this.options.maxQty || (msg.char(Tag.OrdType) === 0x32 && !(o.price > 0))
    if (reject) {
      this.report(session, { ...o, qty: Math.max(0, o.qty) }, clOrdId, '8', '8', (w) => w.int(Tag.LeavesQty, 0).int(Tag.CumQty, 0).int(Tag.AvgPx, 0).int(Tag.OrdRejReason, o.qty > this.options.maxQty ? 13 : 99))
      this.counters.rejects++
      return
    }
    this.report(session, o, clOrdId, '0', '0', (w) => w.int(Tag.LeavesQty, o.qty).int(Tag.CumQty, 0).int(Tag.AvgPx, 0))
    this.counters.acks++
    const fillEvery = this.options.fillEvery
    if (fillEvery > 0 && o.orderId % fillEvery === 0) {
      this.report(session, o, clOrdId, 'F', '2', (w) => {
        w.int(Tag.LastQty, o.qty)
        if (o.price > 0) w.price(Tag.LastPx, o.price)
        w.int(Tag.LeavesQty, 0).int(Tag.CumQty, o.qty)
        if (o.price > 0) w.price(Tag.AvgPx, o.price)
      })
      this.counters.fills++
      return
    }
    this.book(counterparty).set(clOrdId, o)
    this.counters.resting++
  }

  /** OrderCancelRequest (F) or OrderCancelReplaceRequest (G). */
  private amend(counterparty: string, session: FixSession, msg: FixMessageView): void {
    const replace = msg.msgType === MsgType.OrderCancelReplaceRequest
    const clOrdId = msg.string(Tag.ClOrdID) ?? ''
    const origClOrdId = msg.string(Tag.OrigClOrdID) ?? ''
    const book = this.book(counterparty)
    const o = book.get(origClOrdId)
    if (o === undefined) {
      this.counters.cancelRejects++
      session.sendApp('9', (w) => {
        w.str(Tag.OrderID, 'NONE').str(Tag.ClOrdID, clOrdId).str(Tag.OrigClOrdID, origClOrdId).str(Tag.OrdStatus, '8')
        w.str(Tag.CxlRejResponseTo, replace ? '2' : '1').int(Tag.CxlRejReason, 1).str(Tag.Text, 'Unknown order')
      })
      return
    }
    book.delete(origClOrdId)
    const orig = (w: FixWriter) => w.str(Tag.OrigClOrdID, origClOrdId)
    if (!replace) {
      this.report(session, o, clOrdId, '4', '4', (w) => orig(w.int(Tag.LeavesQty, 0).int(Tag.CumQty, 0).int(Tag.AvgPx, 0)))
      this.counters.cancels++
      this.counters.resting--
      return
    }
    const qty = msg.int(Tag.OrderQty)
    const price = msg.price(Tag.Price)
    const replaced: RestingOrder = { ...o, qty: qty > 0 ? qty : o.qty, price: price > 0 ? price : o.price }
    book.set(clOrdId, replaced)
    this.report(session, replaced, clOrdId, '5', '0', (w) => {
      orig(w)
      if (replaced.price > 0) w.price(Tag.Price, replaced.price)
      w.int(Tag.LeavesQty, replaced.qty).int(Tag.CumQty, 0).int(Tag.AvgPx, 0)
    })
    this.counters.replaces++
  }

  private status(counterparty: string, session: FixSession, msg: FixMessageView): void {
    this.counters.statusRequests++
    const clOrdId = msg.string(Tag.ClOrdID) ?? ''
    const o = this.book(counterparty).get(clOrdId)
    const known = o ?? { orderId: 0, symbol: msg.string(Tag.Symbol) ?? '', side: msg.string(Tag.Side) ?? '', qty: 0, price: NaN }
    this.report(session, known, clOrdId, 'I', o === undefined ? '8' : '0', (w) => w.int(Tag.LeavesQty, o?.qty ?? 0).int(Tag.CumQty, 0).int(Tag.AvgPx, 0))
  }
}

function copyField(w: FixWriter, msg: FixMessageView, tag: number, as = tag): void {
  const i = msg.indexOf(tag)
  if (i >= 0) w.bytes(as, msg.buf, msg.valueStarts[i]!, msg.valueEnds[i]!)
}
