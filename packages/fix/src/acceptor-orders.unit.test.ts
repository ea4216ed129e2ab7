// Our acceptor's order handling against the client's OrderFlow, back to back in memory (two FixSessions): resting
// orders canceled, replaced and asked about; requests for orders not resting refused with OrderCancelReject; an
// unsupported message refused with a BusinessMessageReject; every ClOrdID of the client ends final.
import t from 'tap'
import { AcceptorOrders } from './acceptor-orders.js'
import { OrderFlow } from './orders.js'
import { FixSession } from './session.js'
import { MemorySeqStore } from './store.js'

function backToBack(fillEvery: number) {
  const toAcceptor: Buffer[] = []
  const toClient: Buffer[] = []
  const orders = new AcceptorOrders({ fillEvery, maxQty: 1000 })
  const client = new FixSession({ role: 'initiator', senderCompId: 'CLIENT1', targetCompId: 'EXCH', store: new MemorySeqStore(), send: (b) => toAcceptor.push(Buffer.from(b)), onApp: (m) => flow.onApp(m) })
  const acceptor: FixSession = new FixSession({ role: 'acceptor', senderCompId: 'EXCH', targetCompId: 'CLIENT1', store: new MemorySeqStore(), send: (b) => toClient.push(Buffer.from(b)), onApp: (m) => orders.onApp('CLIENT1', acceptor, m) })
  const flow = new OrderFlow(client, { symbol: 'KBX', side: '1', qty: 100, price: 100 * 1e8 })
  const flush = () => {
    for (let rounds = 0; rounds < 50 && (toAcceptor.length > 0 || toClient.length > 0); rounds++) {
      for (const b of toAcceptor.splice(0)) acceptor.receive(b)
      for (const b of toClient.splice(0)) client.receive(b)
    }
  }
  client.start(true)
  flush()
  return { client, flow, orders, flush }
}

t.test('nothing filled, cancel and replace ratios: every order canceled in the end, each replace replaced', (t) => {
  const { flow, orders, flush } = backToBack(0)
  flow.policy = { cancelRatio: 0.5, replaceRatio: 0.5, statusRatio: 0 }
  for (let i = 0; i < 20; i++) {
    flow.send()
    flush()
  }
  const l = flow.lifecycle.counts()
  t.same({ new: l.new, pending: l.pending, canceled: l.canceled, unknown: l.unknown, cancelRejects: l.cancelRejects }, { new: 0, pending: 0, canceled: 20, unknown: 0, cancelRejects: 0 })
  t.equal(l.replaced, flow.counters.replacesSent)
  t.ok(l.replaced > 0)
  t.same({ cancels: orders.counters.cancels, replaces: orders.counters.replaces, resting: orders.counters.resting }, { cancels: 20, replaces: l.replaced, resting: 0 })
  t.end()
})

t.test('every order filled at once: cancels come too late (OrderCancelReject), orders end filled', (t) => {
  const { flow, orders, flush } = backToBack(1)
  flow.policy = { cancelRatio: 1, replaceRatio: 0, statusRatio: 0 }
  for (let i = 0; i < 5; i++) flow.send()
  flush()
  const l = flow.lifecycle.counts()
  t.same({ filled: l.filled, canceled: l.canceled, cancelRejects: l.cancelRejects, unknown: l.unknown, pending: l.pending }, { filled: 5, canceled: 0, cancelRejects: 5, unknown: 0, pending: 0 })
  t.equal(orders.counters.cancelRejects, 5)
  t.equal(flow.lifecycle.awaiting, 0, 'no request left open')
  t.end()
})

t.test('status requests answered with the resting order\'s status; an unsupported message gets a BusinessMessageReject', (t) => {
  const { client, flow, orders, flush } = backToBack(0)
  flow.policy = { cancelRatio: 0, replaceRatio: 0, statusRatio: 1 }
  const id = flow.send()
  flush()
  t.equal(orders.counters.statusRequests, 1)
  t.equal(flow.lifecycle.state(id), 'new', 'still resting after its status')
  client.sendApp('R', (w) => w.str(131, 'Q1')) // a QuoteRequest: not handled here
  flush()
  t.equal(orders.counters.businessRejects, 1)
  t.equal(flow.lifecycle.counts().businessRejects, 1, 'the client counted it')
  t.equal(flow.lifecycle.counts().unknown, 0)
  t.end()
})
