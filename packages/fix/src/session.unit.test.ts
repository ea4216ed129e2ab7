// The session layer in memory: two FixSessions wired back to back, plus hand-made messages.
import t from 'tap'
import { FixParser, MsgType, Tag, buildMessage } from './codec.js'
import type { FixMessageView } from './codec.js'
import { FixSession } from './session.js'
import type { SessionEvent } from './session.js'
import { MemorySeqStore } from './store.js'

function pair(options: { resetOnLogon?: boolean } = {}) {
  let clock = 1_000_000
  const now = () => clock
  const toAcceptor: Buffer[] = []
  const toInitiator: Buffer[] = []
  const events: { initiator: SessionEvent[]; acceptor: SessionEvent[] } = { initiator: [], acceptor: [] }
  const appAtAcceptor: number[] = []
  const initiator = new FixSession({
    role: 'initiator',
    senderCompId: 'CLIENT1',
    targetCompId: 'EXCH',
    heartBtInt: 2,
    store: new MemorySeqStore(),
    send: (b) => toAcceptor.push(Buffer.from(b)),
    onEvent: (e) => events.initiator.push(e),
    now,
    ...options,
  })
  const acceptor = new FixSession({
    role: 'acceptor',
    senderCompId: 'EXCH',
    targetCompId: 'CLIENT1',
    store: new MemorySeqStore(),
    send: (b) => toInitiator.push(Buffer.from(b)),
    onEvent: (e) => events.acceptor.push(e),
    onApp: (m: FixMessageView) => appAtAcceptor.push(m.int(Tag.MsgSeqNum)),
    now,
  })
  const flush = () => {
    for (let rounds = 0; rounds < 20 && (toAcceptor.length > 0 || toInitiator.length > 0); rounds++) {
      for (const b of toAcceptor.splice(0)) acceptor.receive(b)
      for (const b of toInitiator.splice(0)) initiator.receive(b)
    }
  }
  return { initiator, acceptor, events, flush, appAtAcceptor, toAcceptor, advance: (ms: number) => (clock += ms) }
}

t.test('logon both ways, HeartBtInt adopted by the acceptor', (t) => {
  const p = pair()
  p.initiator.start()
  p.flush()
  t.equal(p.initiator.state, 'active')
  t.equal(p.acceptor.state, 'active')
  t.equal(p.acceptor.heartBtInt, 2)
  t.equal(p.initiator.store.nextSenderSeq, 2)
  t.equal(p.initiator.store.nextTargetSeq, 2)
  t.end()
})

t.test('heartbeat after HeartBtInt of silence on our side, TestRequest after 1.2×HeartBtInt of silence from the peer', (t) => {
  const p = pair()
  p.initiator.start()
  p.flush()
  p.advance(2000)
  p.initiator.tick()
  t.equal(p.initiator.counters.heartbeatsSent, 1)
  p.flush()
  p.advance(500)
  p.initiator.tick()
  t.equal(p.initiator.counters.testRequestsSent, 1, 'peer silent for 2.5 s')
  p.flush()
  t.equal(p.acceptor.counters.heartbeatsSent, 1, 'the acceptor answered the TestRequest')
  p.advance(2100)
  p.initiator.tick()
  t.equal(p.initiator.state, 'active', 'the answer cleared the TestRequest')
  p.advance(10_000)
  p.initiator.tick()
  p.advance(3000)
  p.initiator.tick()
  t.equal(p.initiator.state, 'closed', 'an unanswered TestRequest ends the session')
  t.ok(p.events.initiator.some((e) => e.event === 'timeout'))
  t.end()
})

t.test('a lost application message: ResendRequest, resent with PossDupFlag and OrigSendingTime', (t) => {
  const p = pair()
  p.initiator.start()
  p.flush()
  for (let i = 0; i < 3; i++) p.initiator.sendApp('D', (w) => w.int(Tag.ClOrdID, i + 1))
  p.toAcceptor.shift() // the first order (seq 2) never arrives
  for (const b of p.toAcceptor.splice(0)) p.acceptor.receive(b)
  t.same(p.appAtAcceptor, [], 'nothing delivered past the gap')
  t.equal(p.acceptor.counters.resendRequestsSent, 1, 'one ResendRequest for the gap')
  p.flush()
  t.equal(p.initiator.counters.messagesResent, 3)
  t.same(p.appAtAcceptor, [2, 3, 4], 'delivered in order once resent')

  // what a resent order looks like
  p.initiator.receive(buildMessage([[35, '2'], [49, 'EXCH'], [56, 'CLIENT1'], [34, p.initiator.store.nextTargetSeq], [52, '20260101-00:00:00.000'], [7, 2], [16, 2]]))
  const parser = new FixParser()
  parser.push(p.toAcceptor.splice(0)[0]!)
  const m = parser.next()!
  t.equal(m.msgType, MsgType.NewOrderSingle)
  t.equal(m.int(Tag.MsgSeqNum), 2)
  t.equal(m.char(Tag.PossDupFlag), 0x59)
  t.ok(m.has(Tag.OrigSendingTime))
  t.equal(m.int(Tag.ClOrdID), 1)
  t.end()
})

t.test('resend of admin messages is a SequenceReset-GapFill', (t) => {
  const p = pair()
  p.initiator.start()
  p.flush()
  const out: Buffer[] = []
  const initiatorStore = p.initiator.store
  // the acceptor asks for everything from 1: the Logon is gap-filled, never resent
  p.initiator.receive(buildMessage([[35, '2'], [49, 'EXCH'], [56, 'CLIENT1'], [34, 2], [52, '20260101-00:00:00.000'], [7, 1], [16, 0]]))
  out.push(...p.toAcceptor.splice(0))
  const parser = new FixParser()
  for (const b of out) parser.push(b)
  const m = parser.next()!
  t.equal(m.msgType, MsgType.SequenceReset)
  t.equal(m.char(Tag.GapFillFlag), 0x59)
  t.equal(m.char(Tag.PossDupFlag), 0x59)
  t.ok(m.has(Tag.OrigSendingTime))
  t.equal(m.int(Tag.MsgSeqNum), 1)
  t.equal(m.int(Tag.NewSeqNo), initiatorStore.nextSenderSeq)
  t.end()
})

t.test('MsgSeqNum too low without PossDupFlag ends the session; with it, ignored', (t) => {
  const p = pair()
  p.initiator.start()
  p.flush()
  p.initiator.receive(buildMessage([[35, '0'], [49, 'EXCH'], [56, 'CLIENT1'], [34, 1], [43, 'Y'], [52, '20260101-00:00:00.000'], [122, '20260101-00:00:00.000']]))
  t.equal(p.initiator.counters.duplicatesIgnored, 1)
  t.equal(p.initiator.state, 'active')
  p.initiator.receive(buildMessage([[35, '0'], [49, 'EXCH'], [56, 'CLIENT1'], [34, 1], [52, '20260101-00:00:00.000']]))
  t.equal(p.initiator.state, 'closed')
  t.ok(p.events.initiator.some((e) => e.event === 'seq-too-low'))
  t.end()
})

t.test('wrong CompIDs end the session', (t) => {
  const p = pair()
  p.initiator.start()
  p.flush()
  p.initiator.receive(buildMessage([[35, '0'], [49, 'OTHER'], [56, 'CLIENT1'], [34, 2], [52, '20260101-00:00:00.000']]))
  t.equal(p.initiator.state, 'closed')
  t.end()
})

t.test('SequenceReset (reset mode) moves the expected number regardless of MsgSeqNum', (t) => {
  const p = pair()
  p.initiator.start()
  p.flush()
  p.initiator.receive(buildMessage([[35, '4'], [49, 'EXCH'], [56, 'CLIENT1'], [34, 99], [52, '20260101-00:00:00.000'], [36, 50]]))
  t.equal(p.initiator.store.nextTargetSeq, 50)
  t.equal(p.initiator.counters.resendRequestsSent, 0)
  t.end()
})

t.test('logout handshake, either side first', (t) => {
  const p = pair()
  p.initiator.start()
  p.flush()
  p.initiator.logout()
  p.flush()
  t.equal(p.initiator.state, 'closed')
  t.equal(p.acceptor.state, 'closed')
  t.ok(p.events.initiator.some((e) => e.event === 'logout' && e['initiatedBy'] === 'us'))
  t.ok(p.events.acceptor.some((e) => e.event === 'logout' && e['initiatedBy'] === 'peer'))
  t.end()
})

t.test('a message sent outside the session (the native reflex) is adopted: next number taken, kept for resending', (t) => {
  const p = pair()
  p.initiator.start()
  p.flush()
  const seq = p.initiator.store.nextSenderSeq
  t.throws(() => p.initiator.adoptSent(seq + 1, 'D', Buffer.alloc(0), Buffer.alloc(21)), /MsgSeqNum/, 'only with the next number')
  const sendingTime = Buffer.from('20260101-00:00:00.123', 'latin1')
  p.initiator.adoptSent(seq, 'D', Buffer.from('11=42\x0155=KBX\x01', 'latin1'), sendingTime)
  t.equal(p.initiator.store.nextSenderSeq, seq + 1)
  t.equal(p.initiator.counters.sent, 2, 'counted as sent (Logon + adopted order)')
  p.initiator.sendApp('D', (w) => w.int(Tag.ClOrdID, 43))
  const parser = new FixParser()
  parser.push(p.toAcceptor.splice(0)[0]!)
  t.equal(parser.next()!.int(Tag.MsgSeqNum), seq + 1, 'the session goes on after it')
  // the acceptor asks for the adopted one
  p.initiator.receive(buildMessage([[35, '2'], [49, 'EXCH'], [56, 'CLIENT1'], [34, p.initiator.store.nextTargetSeq], [52, '20260101-00:00:00.000'], [7, seq], [16, seq]]))
  parser.push(p.toAcceptor.splice(0)[0]!)
  const m = parser.next()!
  t.equal(m.msgType, MsgType.NewOrderSingle, 'resent as it was')
  t.equal(m.int(Tag.MsgSeqNum), seq)
  t.equal(m.int(Tag.ClOrdID), 42)
  t.equal(m.char(Tag.PossDupFlag), 0x59)
  t.equal(m.string(Tag.OrigSendingTime), '20260101-00:00:00.123')
  t.end()
})

t.test('a resend store shared across connections: a new session resends what the lost one sent; a reset clears it', (t) => {
  const resendStore = new Map()
  const store = new MemorySeqStore()
  const out: Buffer[] = []
  const make = () => new FixSession({ role: 'acceptor', senderCompId: 'EXCH', targetCompId: 'CLIENT1', store, resendStore, send: (b) => out.push(Buffer.from(b)) })
  const logon = (seq: number, reset = false) => buildMessage([[35, 'A'], [49, 'CLIENT1'], [56, 'EXCH'], [34, seq], [52, '20260101-00:00:00.000'], [98, 0], [108, 30], ...(reset ? [[141, 'Y'] as [number, string]] : [])])
  const first = make()
  first.receive(logon(1, true))
  first.sendApp('8', (w) => w.int(Tag.ClOrdID, 42))
  first.disconnected()
  const second = make()
  second.receive(logon(2))
  out.length = 0
  second.receive(buildMessage([[35, '2'], [49, 'CLIENT1'], [56, 'EXCH'], [34, 3], [52, '20260101-00:00:00.000'], [7, 2], [16, 2]]))
  const p = new FixParser()
  p.push(Buffer.concat(out))
  const resent = p.next()
  t.equal(resent?.string(Tag.MsgType), '8', 'the report sent on the lost connection is resent, not gap-filled')
  t.equal(resent?.int(Tag.ClOrdID), 42)
  t.equal(resent?.string(Tag.PossDupFlag), 'Y')
  second.disconnected()
  const third = make()
  third.receive(logon(1, true))
  t.equal(resendStore.size, 0, 'a ResetSeqNumFlag logon clears it')
  t.end()
})
