// Order accounting: every order sent is acked, rejected, unknown or outstanding, never two of them;
// duplicates and late reports do not move an order; the map of outstanding orders is all there is.
import t from 'tap'
import { FixParser, Tag, buildMessage } from './codec.js'
import { Backoff } from './backoff.js'
import { OrderFlow } from './orders.js'
import { FixSession } from './session.js'
import { MemorySeqStore } from './store.js'

function flow() {
  const session = new FixSession({ role: 'initiator', senderCompId: 'CLIENT1', targetCompId: 'EXCH', store: new MemorySeqStore(), send: () => {} })
  const f = new OrderFlow(session, { symbol: 'KBX', side: '1', qty: 100, price: 100 })
  let seq = 1
  const parser = new FixParser()
  const report = (clOrdId: number, execType: string, possDup = false) => {
    parser.push(buildMessage([[35, '8'], [49, 'EXCH'], [56, 'CLIENT1'], [34, seq++], ...(possDup ? [[43, 'Y'] as [number, string]] : []), [Tag.ClOrdID, clOrdId], [Tag.ExecType, execType], [Tag.OrdStatus, execType]]))
    f.onApp(parser.next()!)
  }
  return { f, report }
}

const balanced = (f: OrderFlow) => f.counters.sent === f.counters.acked + f.counters.rejected + f.counters.unknown + f.outstanding

t.test('each order in exactly one bucket: acked, rejected, unknown or outstanding', (t) => {
  const { f, report } = flow()
  f.orderTimeoutMs = 1000
  const ids = Array.from({ length: 6 }, () => f.send())
  report(ids[0]!, '0')
  report(ids[0]!, 'F') // its fill: counted as a fill, the order stays acked
  report(ids[1]!, '8')
  report(ids[2]!, 'F') // a fill as the first report: acked
  report(ids[0]!, '0', true) // a PossDup duplicate of a report we had
  t.same(f.counters, { sent: 6, acked: 2, filled: 2, rejected: 1, unknown: 0, unmatched: 1, throttled: 0, cancelsSent: 0, replacesSent: 0, statusRequestsSent: 0 })
  t.equal(f.outstanding, 3)
  t.ok(balanced(f))
  t.equal(f.expire(Date.now()), 0, 'nothing past its deadline yet')
  f.renewDeadlines(Date.now() - 5000) // as if logged on long ago
  t.equal(f.expire(Date.now()), 3, 'the three unanswered orders turn unknown')
  t.same({ unknown: f.counters.unknown, outstanding: f.outstanding }, { unknown: 3, outstanding: 0 })
  report(ids[3]!, '0') // a late report for an unknown order
  t.same({ acked: f.counters.acked, unknown: f.counters.unknown, unmatched: f.counters.unmatched }, { acked: 2, unknown: 3, unmatched: 2 }, 'does not move it')
  t.ok(balanced(f))
  t.end()
})

t.test('a logon renews the deadlines: orders in flight over a reconnection get a full timeout again', (t) => {
  const { f, report } = flow()
  f.orderTimeoutMs = 1000
  const id = f.send()
  const later = Date.now() + 900
  f.renewDeadlines(later) // logged on again 900 ms later
  t.equal(f.expire(later + 500), 0, 'not unknown 1.4 s after it was sent: 0.5 s after the logon')
  report(id, '0')
  t.same({ acked: f.counters.acked, outstanding: f.outstanding }, { acked: 1, outstanding: 0 })
  t.end()
})

t.test('reconnection backoff: the interval, doubled per failure, capped, reset by a logon', (t) => {
  const b = new Backoff(500, 4000)
  const delays: number[] = []
  for (let i = 0; i < 6; i++) {
    delays.push(b.nextMs)
    b.failed()
  }
  t.same(delays, [500, 1000, 2000, 4000, 4000, 4000])
  b.reset()
  t.equal(b.nextMs, 500)
  t.end()
})

t.test('cancel→ack latency: one sample per OrderCancelRequest at its first answer (report or cancel reject), none for orders', (t) => {
  const { f, report } = flow()
  f.orderTimeoutMs = 1000
  const a = f.send()
  const b = f.send()
  report(a, '0')
  report(b, '0')
  const cancelA = f.cancel(a)
  const cancelB = f.cancel(b)
  t.equal(f.cancelLatency.count, 0, 'order acks are not cancel samples')
  report(cancelA, '4')
  report(cancelA, '4', true) // a PossDup copy: not a second sample
  t.equal(f.cancelLatency.count, 1)
  t.ok(f.cancelLatency.maxValueNs > 0)
  const c = f.send()
  report(c, '0')
  const cancelC = f.cancel(c)
  report(cancelC, '4')
  t.equal(f.cancelLatency.count, 2, 'the third cancel answered')
  f.expire(Date.now() + 5000) // the second given up: forgotten, never a sample
  report(cancelB, '4')
  t.equal(f.cancelLatency.count, 2, 'a late answer to a request given up is no sample')
  t.equal(f.counters.cancelsSent, 3)
  t.end()
})
