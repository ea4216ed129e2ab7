// The order lifecycle: every ClOrdID we sent (NewOrderSingle, or the new ClOrdID of an OrderCancelReplaceRequest)
// followed through ExecutionReports (by OrdStatus, the order found by ClOrdID or OrigClOrdID), OrderCancelReject
// and BusinessMessageReject to a final state. No I/O: OrderFlow feeds it what was sent and what came back.

export type OrderState = 'pending-new' | 'new' | 'partially-filled' | 'filled' | 'pending-cancel' | 'pending-replace' | 'canceled' | 'replaced' | 'rejected'

const FINAL: ReadonlySet<OrderState> = new Set(['filled', 'canceled', 'replaced', 'rejected'])

export function isFinal(state: OrderState): boolean {
  return FINAL.has(state)
}

/** OrdStatus(39) → our state; undefined for statuses that do not move an order (done for day, calculated, …). */
export function stateOfOrdStatus(ordStatus: string): OrderState | undefined {
  switch (ordStatus) {
    case '0':
      return 'new'
    case '1':
      return 'partially-filled'
    case '2':
      return 'filled'
    case '4':
    case 'C': // expired: off the book like a cancel
      return 'canceled'
    case '5': // FIX.4.2 Replaced
      return 'replaced'
    case '6':
      return 'pending-cancel'
    case '8':
      return 'rejected'
    case 'A':
      return 'pending-new'
    case 'E':
      return 'pending-replace'
    default:
      return undefined
  }
}

/**
 * Counts by state. Final ones (filled, canceled, replaced, rejected) are cumulative; newOrders, partiallyFilled and
 * pending are the orders in those states now. unknown: ExecutionReports (or cancel rejects) for a ClOrdID we never
 * sent; late: reports for an order of ours already final (a status answered after a fill, a duplicate).
 */
export interface LifecycleCounts {
  new: number
  partiallyFilled: number
  /** Orders waiting for an answer: pending new, cancel or replace (ours or the venue's pending states). */
  pending: number
  filled: number
  canceled: number
  replaced: number
  rejected: number
  unknown: number
  late: number
  cancelRejects: number
  businessRejects: number
  /** Cancel or replace requests given up unanswered (the order back in its state before the request). */
  requestsTimedOut: number
}

export interface ReportFields {
  clOrdId: number
  /** -1 when absent. */
  origClOrdId: number
  execType: string
  ordStatus: string
}

interface LiveOrder {
  state: OrderState
  /** While a cancel or replace of it is out: the request's ClOrdID, and the state to return to if refused. */
  requestId: number
  stateBeforeRequest: OrderState
}

interface OpenRequest {
  kind: 'cancel' | 'replace'
  origClOrdId: number
  deadlineMs: number
}

/** What a report did, for the caller's decisions (cancel or replace an order that became new). */
export type Transition = { clOrdId: number; from: OrderState | undefined; to: OrderState } | undefined

export class OrderLifecycle {
  private readonly live = new Map<number, LiveOrder>()
  private readonly requests = new Map<number, OpenRequest>()
  private readonly finals = { filled: 0, canceled: 0, replaced: 0, rejected: 0 }
  private readonly other = { unknown: 0, late: 0, cancelRejects: 0, businessRejects: 0, requestsTimedOut: 0 }
  requestTimeoutMs = 30_000

  /** wasSent(id): a ClOrdID this session ever used (tells a late report from one for an order we never sent). */
  constructor(private readonly wasSent: (clOrdId: number) => boolean) {}

  state(clOrdId: number): OrderState | undefined {
    return this.live.get(clOrdId)?.state
  }

  /** Orders not final, by ClOrdID. */
  liveOrders(): IterableIterator<[number, { state: OrderState }]> {
    return this.live.entries()
  }

  /**
   * Cancel and replace requests still waiting for an answer (each given up after requestTimeoutMs): the run does not
   * log out before they have one. NewOrderSingles waiting for their first report are OrderFlow's outstanding.
   */
  get awaiting(): number {
    return this.requests.size
  }

  counts(): LifecycleCounts {
    let newOrders = 0
    let partiallyFilled = 0
    let pending = 0
    for (const o of this.live.values()) {
      if (o.state === 'new') newOrders++
      else if (o.state === 'partially-filled') partiallyFilled++
      else pending++
    }
    return { new: newOrders, partiallyFilled, pending, ...this.finals, ...this.other }
  }

  newOrderSent(clOrdId: number): void {
    this.live.set(clOrdId, { state: 'pending-new', requestId: 0, stateBeforeRequest: 'pending-new' })
  }

  /** Only an order resting (new or partially filled) without a request out can be canceled or replaced. */
  canAmend(clOrdId: number): boolean {
    const o = this.live.get(clOrdId)
    return o !== undefined && o.requestId === 0 && (o.state === 'new' || o.state === 'partially-filled')
  }

  cancelSent(requestId: number, origClOrdId: number, nowMs = Date.now()): void {
    this.requestSent('cancel', 'pending-cancel', requestId, origClOrdId, nowMs)
  }

  replaceSent(newClOrdId: number, origClOrdId: number, nowMs = Date.now()): void {
    this.requestSent('replace', 'pending-replace', newClOrdId, origClOrdId, nowMs)
  }

  private requestSent(kind: OpenRequest['kind'], state: OrderState, requestId: number, origClOrdId: number, nowMs: number): void {
    const o = this.live.get(origClOrdId)
    if (o === undefined || o.requestId !== 0) throw new Error(`ClOrdID ${origClOrdId} cannot be amended now (${o?.state ?? 'not live'})`)
    o.stateBeforeRequest = o.state
    o.state = state
    o.requestId = requestId
    this.requests.set(requestId, { kind, origClOrdId, deadlineMs: nowMs + this.requestTimeoutMs })
  }

  onExecutionReport(r: ReportFields): Transition {
    const request = this.requests.get(r.clOrdId)
    // Replaced: the original is final, its replacement (the request's ClOrdID) lives on with the report's status.
    if (r.execType === '5') {
      const origId = r.origClOrdId >= 0 ? r.origClOrdId : (request?.origClOrdId ?? -1)
      const orig = this.live.get(origId)
      if (orig === undefined && request === undefined) return this.unmatched(r.clOrdId)
      this.requests.delete(r.clOrdId)
      if (orig !== undefined) this.finish(origId, orig, 'replaced')
      const to = stateOfOrdStatus(r.ordStatus === '5' ? '0' : r.ordStatus) ?? 'new'
      return this.move(r.clOrdId, { state: 'pending-new', requestId: 0, stateBeforeRequest: 'pending-new' }, to)
    }
    if (request !== undefined) {
      // the answer to our cancel (canceled, pending cancel) or a refusal as an ExecutionReport
      const orig = this.live.get(request.origClOrdId)
      const to = stateOfOrdStatus(r.ordStatus)
      if (to === 'pending-cancel' || to === 'pending-replace') return orig === undefined ? undefined : { clOrdId: request.origClOrdId, from: orig.state, to: orig.state }
      this.requests.delete(r.clOrdId)
      if (orig === undefined) return undefined
      orig.requestId = 0
      if (r.execType === '8' || to === 'rejected' || to === undefined) return this.move(request.origClOrdId, orig, orig.stateBeforeRequest)
      return this.move(request.origClOrdId, orig, to)
    }
    const id = this.live.has(r.clOrdId) ? r.clOrdId : r.origClOrdId
    const order = this.live.get(id)
    if (order === undefined) return this.unmatched(r.clOrdId)
    const to = r.execType === '8' ? 'rejected' : stateOfOrdStatus(r.ordStatus)
    if (to === undefined) return undefined
    // while our cancel/replace is out, fills still move the order; the request's own answer settles the rest
    if (order.requestId !== 0 && !isFinal(to) && to !== 'partially-filled') return undefined
    if (order.requestId !== 0 && to === 'partially-filled') {
      order.stateBeforeRequest = to
      return { clOrdId: id, from: order.state, to: order.state }
    }
    return this.move(id, order, to)
  }

  /** OrderCancelReject(9): the request refused; the order back where it was, or where OrdStatus says it is. */
  onCancelReject(requestId: number, origClOrdId: number, ordStatus: string): Transition {
    this.other.cancelRejects++
    const request = this.requests.get(requestId)
    const origId = request?.origClOrdId ?? origClOrdId
    this.requests.delete(requestId)
    const order = this.live.get(origId)
    if (order === undefined) {
      if (!this.wasSent(origId) && !this.wasSent(requestId)) this.other.unknown++
      return undefined
    }
    order.requestId = 0
    const said = stateOfOrdStatus(ordStatus)
    const to = said === undefined || said === 'rejected' || said === 'pending-cancel' || said === 'pending-replace' ? order.stateBeforeRequest : said
    return this.move(origId, order, to)
  }

  /** BusinessMessageReject(j) naming one of our ClOrdIDs in BusinessRejectRefID(379): that message was refused. */
  onBusinessReject(refId: number): Transition {
    this.other.businessRejects++
    const request = this.requests.get(refId)
    if (request !== undefined) {
      this.requests.delete(refId)
      const orig = this.live.get(request.origClOrdId)
      if (orig === undefined) return undefined
      orig.requestId = 0
      return this.move(request.origClOrdId, orig, orig.stateBeforeRequest)
    }
    const order = this.live.get(refId)
    if (order !== undefined && order.state === 'pending-new') return this.move(refId, order, 'rejected')
    return undefined
  }

  /** Requests unanswered past their deadline: given up, each order back in its state before the request. */
  expireRequests(nowMs = Date.now()): number {
    let n = 0
    for (const [id, request] of this.requests) {
      if (request.deadlineMs > nowMs) break
      this.requests.delete(id)
      const orig = this.live.get(request.origClOrdId)
      if (orig !== undefined) {
        orig.requestId = 0
        orig.state = orig.stateBeforeRequest
      }
      n++
    }
    this.other.requestsTimedOut += n
    return n
  }

  /** A NewOrderSingle given up unanswered (OrderFlow's order timeout): no longer live, counted there as unknown. */
  forget(clOrdId: number): void {
    const o = this.live.get(clOrdId)
    if (o !== undefined && o.state === 'pending-new') this.live.delete(clOrdId)
  }

  private unmatched(clOrdId: number): Transition {
    if (this.wasSent(clOrdId)) this.other.late++
    else this.other.unknown++
    return undefined
  }

  private move(clOrdId: number, order: LiveOrder, to: OrderState): Transition {
    const from = this.live.has(clOrdId) ? order.state : undefined
    if (isFinal(to)) {
      this.finish(clOrdId, order, to)
    } else {
      order.state = to
      this.live.set(clOrdId, order)
    }
    return { clOrdId, from, to }
  }

  private finish(clOrdId: number, order: LiveOrder, to: 'filled' | 'canceled' | 'replaced' | 'rejected' | OrderState): void {
    order.state = to
    this.live.delete(clOrdId)
    if (order.requestId !== 0 && to !== 'replaced') this.requests.delete(order.requestId)
    this.finals[to as keyof typeof this.finals]++
  }
}
