// The order lifecycle state machine: every transition an ExecutionReport, OrderCancelReject or
// BusinessMessageReject makes, reports for ClOrdIDs we never sent, and the counts that come out.
import t from 'tap'
import { OrderLifecycle, stateOfOrdStatus } from './lifecycle.js'

const SENT_BELOW = 1000
const book = () => new OrderLifecycle((id) => id >= 1 && id < SENT_BELOW)
const er = (clOrdId: number, execType: string, ordStatus: string, origClOrdId = -1) => ({ clOrdId, execType, ordStatus, origClOrdId })

t.test('OrdStatus values map to states', (t) => {
  t.same(['0', '1', '2', '4', '5', '6', '8', 'A', 'C', 'E', '3'].map(stateOfOrdStatus), ['new', 'partially-filled', 'filled', 'canceled', 'replaced', 'pending-cancel', 'rejected', 'pending-new', 'canceled', 'pending-replace', undefined])
  t.end()
})

t.test('new → partially filled → filled; pending new first; rejected', (t) => {
  const b = book()
  b.newOrderSent(1)
  b.newOrderSent(2)
  t.equal(b.awaiting, 0, 'new orders are not requests')
  t.equal(b.counts().pending, 2)
  t.same(b.onExecutionReport(er(1, 'A', 'A')), { clOrdId: 1, from: 'pending-new', to: 'pending-new' })
  t.same(b.onExecutionReport(er(1, '0', '0')), { clOrdId: 1, from: 'pending-new', to: 'new' })
  t.same(b.onExecutionReport(er(1, 'F', '1')), { clOrdId: 1, from: 'new', to: 'partially-filled' })
  t.same(b.onExecutionReport(er(1, 'F', '2')), { clOrdId: 1, from: 'partially-filled', to: 'filled' })
  t.same(b.onExecutionReport(er(2, '8', '8')), { clOrdId: 2, from: 'pending-new', to: 'rejected' })
  t.same(b.counts(), { new: 0, partiallyFilled: 0, pending: 0, filled: 1, canceled: 0, replaced: 0, rejected: 1, unknown: 0, late: 0, cancelRejects: 0, businessRejects: 0, requestsTimedOut: 0 })
  t.equal(b.state(1), undefined, 'final orders leave the book')
  t.equal(b.awaiting, 0)
  t.end()
})

t.test('cancel: pending cancel, then canceled (report under the request\'s ClOrdID)', (t) => {
  const b = book()
  b.newOrderSent(1)
  b.onExecutionReport(er(1, '0', '0'))
  t.ok(b.canAmend(1))
  b.cancelSent(2, 1)
  t.notOk(b.canAmend(1), 'one request at a time')
  t.equal(b.state(1), 'pending-cancel')
  t.equal(b.awaiting, 1)
  b.onExecutionReport(er(2, '6', '6', 1))
  t.equal(b.state(1), 'pending-cancel', 'the venue\'s pending cancel keeps it there')
  t.same(b.onExecutionReport(er(2, '4', '4', 1)), { clOrdId: 1, from: 'pending-cancel', to: 'canceled' })
  t.equal(b.counts().canceled, 1)
  t.equal(b.awaiting, 0)
  t.end()
})

t.test('cancel/replace: the original replaced, the new ClOrdID lives on and can be canceled', (t) => {
  const b = book()
  b.newOrderSent(1)
  b.onExecutionReport(er(1, '0', '0'))
  b.replaceSent(2, 1)
  t.equal(b.state(1), 'pending-replace')
  b.onExecutionReport(er(2, 'E', 'E', 1))
  t.equal(b.state(1), 'pending-replace')
  t.same(b.onExecutionReport(er(2, '5', '0', 1)), { clOrdId: 2, from: undefined, to: 'new' })
  t.equal(b.state(1), undefined)
  t.equal(b.state(2), 'new')
  b.cancelSent(3, 2)
  b.onExecutionReport(er(3, '4', '4', 2))
  const c = b.counts()
  t.same({ replaced: c.replaced, canceled: c.canceled, new: c.new }, { replaced: 1, canceled: 1, new: 0 })
  t.end()
})

t.test('cancel reject: back to the state before, or to the one OrdStatus names (filled: too late to cancel)', (t) => {
  const b = book()
  b.newOrderSent(1)
  b.newOrderSent(2)
  b.onExecutionReport(er(1, '0', '0'))
  b.onExecutionReport(er(2, '0', '0'))
  b.cancelSent(3, 1)
  t.same(b.onCancelReject(3, 1, '0'), { clOrdId: 1, from: 'pending-cancel', to: 'new' })
  t.ok(b.canAmend(1), 'amendable again')
  b.replaceSent(4, 2)
  t.same(b.onCancelReject(4, 2, '2'), { clOrdId: 2, from: 'pending-replace', to: 'filled' })
  // filled while our cancel was out: the fill settles it, the later cancel reject finds nothing live
  b.cancelSent(5, 1)
  t.same(b.onExecutionReport(er(1, 'F', '2')), { clOrdId: 1, from: 'pending-cancel', to: 'filled' })
  t.equal(b.onCancelReject(5, 1, '2'), undefined)
  const c = b.counts()
  t.same({ filled: c.filled, cancelRejects: c.cancelRejects, unknown: c.unknown, awaiting: b.awaiting }, { filled: 2, cancelRejects: 3, unknown: 0, awaiting: 0 })
  t.end()
})

t.test('partial fill while a cancel is out: still pending cancel, the cancel then settles it', (t) => {
  const b = book()
  b.newOrderSent(1)
  b.onExecutionReport(er(1, '0', '0'))
  b.cancelSent(2, 1)
  b.onExecutionReport(er(1, 'F', '1'))
  t.equal(b.state(1), 'pending-cancel')
  t.same(b.onCancelReject(2, 1, '1'), { clOrdId: 1, from: 'pending-cancel', to: 'partially-filled' })
  b.cancelSent(3, 1)
  b.onExecutionReport(er(3, '4', '4', 1))
  t.equal(b.counts().canceled, 1)
  t.end()
})

t.test('reports for ClOrdIDs never sent count unknown; for finished orders of ours, late', (t) => {
  const b = book()
  t.equal(b.onExecutionReport(er(5000, '0', '0')), undefined)
  t.equal(b.onCancelReject(5001, 5002, '0'), undefined)
  b.newOrderSent(1)
  b.onExecutionReport(er(1, '0', '0'))
  b.onExecutionReport(er(1, 'F', '2'))
  b.onExecutionReport(er(1, 'I', '2')) // a status answered after the fill
  const c = b.counts()
  t.same({ unknown: c.unknown, late: c.late, cancelRejects: c.cancelRejects }, { unknown: 2, late: 1, cancelRejects: 1 })
  t.end()
})

t.test('status reports (ExecType I) move nothing that did not change', (t) => {
  const b = book()
  b.newOrderSent(1)
  b.onExecutionReport(er(1, '0', '0'))
  t.same(b.onExecutionReport(er(1, 'I', '0')), { clOrdId: 1, from: 'new', to: 'new' })
  t.equal(b.state(1), 'new')
  t.end()
})

t.test('BusinessMessageReject: a refused order is rejected, a refused request returns the order', (t) => {
  const b = book()
  b.newOrderSent(1)
  b.newOrderSent(2)
  b.onExecutionReport(er(2, '0', '0'))
  b.cancelSent(3, 2)
  t.same(b.onBusinessReject(1), { clOrdId: 1, from: 'pending-new', to: 'rejected' })
  t.same(b.onBusinessReject(3), { clOrdId: 2, from: 'pending-cancel', to: 'new' })
  t.equal(b.onBusinessReject(77), undefined)
  t.same({ rejected: b.counts().rejected, businessRejects: b.counts().businessRejects }, { rejected: 1, businessRejects: 3 })
  t.end()
})

t.test('unanswered requests time out; an executing report for a request sets the state it names', (t) => {
  const b = book()
  b.requestTimeoutMs = 1000
  b.newOrderSent(1)
  b.onExecutionReport(er(1, '0', '0'))
  b.cancelSent(2, 1, 0)
  t.equal(b.expireRequests(500), 0)
  t.equal(b.expireRequests(1000), 1)
  t.equal(b.state(1), 'new')
  t.equal(b.counts().requestsTimedOut, 1)
  b.replaceSent(3, 1, 2000)
  b.onExecutionReport(er(3, '8', '8', 1)) // the replace refused as an ExecutionReport
  t.equal(b.state(1), 'new')
  t.throws(() => b.cancelSent(4, 99), /cannot be amended/)
  t.end()
})
