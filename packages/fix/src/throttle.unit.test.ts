// The message-rate throttle alone (a sliding 1 s window), and in a session on a fake clock: queue mode holds and
// releases in order with their sequence numbers taken when they leave, reject mode refuses, admin messages are
// never held and count in the window only with includeAdmin, the queue is bounded.
import t from 'tap'
import { FixParser, Tag } from './codec.js'
import { FixSession, THROTTLE_QUEUED, THROTTLE_REJECTED } from './session.js'
import { MemorySeqStore } from './store.js'
import { MessageThrottle } from './throttle.js'
import type { ThrottleOptions } from './throttle.js'

t.test('a sliding window: N in any 1000 ms, room again as the oldest ages out', (t) => {
  const th = new MessageThrottle({ maxPerSec: 3, mode: 'queue', includeAdmin: false })
  t.ok(th.tryTake(0) && th.tryTake(100) && th.tryTake(200))
  t.notOk(th.tryTake(999), 'the fourth inside the window is refused')
  t.equal(th.msUntilRoom(999), 1)
  t.ok(th.tryTake(1000), 'the one at 0 ages out at 1000')
  t.notOk(th.tryTake(1099))
  t.ok(th.tryTake(1100))
  th.admin(1100)
  t.equal(th.counters.adminOverLimit, 0, 'admin not counted without includeAdmin')
  t.throws(() => new MessageThrottle({ maxPerSec: 0, mode: 'queue', includeAdmin: false }), RangeError)
  t.end()
})

function session(options: Partial<ThrottleOptions> = {}) {
  let clock = 1_000_000
  const sent: string[] = []
  const parser = new FixParser()
  const throttle = new MessageThrottle({ maxPerSec: 2, mode: 'queue', includeAdmin: false, ...options })
  const s = new FixSession({
    role: 'initiator',
    senderCompId: 'CLIENT1',
    targetCompId: 'EXCH',
    store: new MemorySeqStore(),
    throttle,
    now: () => clock,
    send: (b) => {
      parser.push(b)
      const m = parser.next()!
      sent.push(`${m.string(Tag.MsgType)}:${m.int(Tag.MsgSeqNum)}:${m.string(Tag.ClOrdID) ?? ''}`)
    },
  })
  s.state = 'active'
  const order = (id: number) => s.sendApp('D', (w) => w.int(Tag.ClOrdID, id))
  return { s, throttle, sent, order, advance: (ms: number) => (clock += ms) }
}

t.test('queue: held beyond the limit, released in order as the window allows, numbered when they leave', (t) => {
  const { s, throttle, sent, order, advance } = session()
  t.equal(order(1), 1)
  t.equal(order(2), 2)
  t.equal(order(3), THROTTLE_QUEUED)
  t.equal(order(4), THROTTLE_QUEUED)
  t.equal(s.heldCount, 2)
  s.tick() // admin messages (here a TestRequest: nothing received yet) are not held, and take no place in the window
  advance(500)
  t.equal(s.releaseHeld(), 0, 'the window is still full')
  advance(500)
  t.equal(order(5), THROTTLE_QUEUED, 'a new message waits behind the held ones')
  const orders = () => sent.filter((m) => m.startsWith('D')).map((m) => m.split(':'))
  t.same(orders().map(([, , id]) => id), ['1', '2', '3', '4'], 'the held ones left first, in order')
  const seqs = orders().map(([, seq]) => Number(seq))
  t.ok(seqs[2]! > Number(sent.find((m) => m.startsWith('1:'))!.split(':')[1]), 'numbered when they left (after the TestRequest sent meanwhile)')
  t.same(seqs, [...seqs].sort((a, b) => a - b))
  advance(1000)
  s.tick()
  t.same(orders().at(-1)?.[2], '5')
  t.same({ queued: throttle.counters.queued, released: throttle.counters.released, rejected: throttle.counters.rejected, maxQueueDepth: throttle.counters.maxQueueDepth }, { queued: 3, released: 3, rejected: 0, maxQueueDepth: 2 })
  t.end()
})

t.test('queue: bounded; the overflow is rejected and counted', (t) => {
  const { s, throttle, order } = session({ queueCapacity: 1 })
  order(1)
  order(2)
  t.equal(order(3), THROTTLE_QUEUED)
  t.equal(order(4), THROTTLE_REJECTED)
  t.same({ rejected: throttle.counters.rejected, queueFull: throttle.counters.queueFull, held: s.heldCount }, { rejected: 1, queueFull: 1, held: 1 })
  t.end()
})

t.test('reject: not sent, no sequence number taken', (t) => {
  const { s, throttle, sent, order } = session({ mode: 'reject' })
  order(1)
  order(2)
  t.equal(order(3), THROTTLE_REJECTED)
  t.equal(s.store.nextSenderSeq, 3, 'the refused message took no MsgSeqNum')
  t.equal(sent.length, 2)
  t.equal(throttle.counters.rejected, 1)
  t.end()
})

t.test('--throttle-admin: admin messages take places in the window, never held', (t) => {
  const { s, throttle, sent, order, advance } = session({ includeAdmin: true })
  advance(60_000)
  s.tick() // a TestRequest (nothing received for a minute) takes one of the two places
  t.equal(sent.at(-1), '1:1:')
  t.equal(order(1), 2)
  t.equal(order(2), THROTTLE_QUEUED, 'the second gives way to the TestRequest')
  s.logout()
  t.equal(sent.at(-1)?.startsWith('5:'), true, 'the Logout is not held')
  t.equal(throttle.counters.adminOverLimit, 1, 'and is counted over the limit')
  t.end()
})
