// The peer's window closing and reopening under load (fix-tcp at 20000 orders/s against a stalled acceptor):
// a zero window's ACKs are not duplicate ACKs, the sender resumes the moment a window update arrives (also
// what was in flight past the closed window), and a lost window update costs at most the persist cap.
import t from 'tap'
import { TcpFlags } from '@kbx/net'
import { ISN, MSS, S, established, segment } from './tcp-peer.js'
import type { Conn } from './tcp-peer.js'

const { ACK } = TcpFlags
const MS = 1_000_000n
const PERSIST_MAX = 1000n * MS // PERSIST_MAX_US in native/src/tcp_internal.h

const at = (offset: number) => (ISN + 1 + offset) >>> 0
/** Our data segments in the frames taken now: [offset from our first data byte, length]. */
const dataSegments = (frames: ReturnType<Conn['out']>) => frames.filter((f) => f.payloadLength > 0).map((f) => [(f.tcp!.seq - at(0)) >>> 0, f.payloadLength])
const peerAck = (c: Conn, ackOffset: number, window: number) => c.feed({ seq: c.peerSeq, ack: at(ackOffset), flags: ACK, window })

t.test('the answers to zero-window probes are not duplicate ACKs: no fast retransmit, the congestion window kept', (t) => {
  const c = established(t, { window: 0, ws: 0 })
  const cwnd = c.tcp.stats().cwnd
  c.tcp.write(Buffer.alloc(20 * MSS, 0x41))
  c.tcp.poll(c.now)
  t.same(c.out(), [], 'nothing sent into a zero window')
  let probes = 0
  for (let i = 0; i < 60; i++) {
    c.now += 100n * MS
    c.tcp.poll(c.now)
    for (const [offset, len] of dataSegments(c.out())) {
      t.same([offset, len], [0, 1], 'a one-byte probe at the first unacknowledged byte')
      probes++
      peerAck(c, 0, 0) // still closed
    }
  }
  t.ok(probes >= 5, `${probes} probes, each answered with a zero window`)
  const st = c.tcp.stats()
  t.equal(st.dup_acks, 0, 'no duplicate ACK counted')
  t.equal(st.fast_retransmits, 0, 'no fast retransmit')
  t.equal(st.cwnd, cwnd, 'the congestion window untouched by flow control')
  // the window update: a full congestion window goes out at once, from the first byte
  const resumed = dataSegments(peerAck(c, 0, 65535))
  t.same(resumed[0], [0, MSS], 'from the first byte, in full segments')
  t.equal(resumed.reduce((n, [, len]) => n + len!, 0), cwnd, 'a whole congestion window at once, no timer waited for')
  t.equal(c.tcp.stats().timeouts, 0)
  t.end()
})

t.test('data in flight past a window that closed is sent again the moment the window reopens, not after an RTO', (t) => {
  const c = established(t, { window: 65535, ws: 0 })
  c.tcp.write(Buffer.alloc(4 * MSS, 0x42))
  c.tcp.poll(c.now)
  t.same(dataSegments(c.out()), [[0, MSS], [MSS, MSS], [2 * MSS, MSS], [3 * MSS, MSS]], 'four segments in flight')
  c.now += 1n * MS
  // the peer took one segment and closed its window: the other three were beyond it and dropped
  t.same(dataSegments(peerAck(c, MSS, 0)), [], 'a zero window: nothing more')
  c.now += 5n * MS
  const again = dataSegments(peerAck(c, MSS, 8 * MSS))
  t.same(again[0], [MSS, MSS], 'the first byte the peer did not take goes out again at once')
  t.same(again.map(([offset]) => offset), [MSS, 2 * MSS, 3 * MSS], 'then the rest of what was in flight')
  const st = c.tcp.stats()
  t.equal(st.timeouts, 0, 'no retransmission timeout waited for')
  t.equal(st.fast_retransmits, 0)
  t.equal(st.snd_wnd, 8 * MSS)
  t.end()
})

t.test('a lost window update: the persist probe finds the open window within its cap, however long it was closed', (t) => {
  const c = established(t, { window: 0, ws: 0 })
  c.tcp.write(Buffer.from('NewOrderSingle'))
  c.tcp.poll(c.now)
  const probeTimes: bigint[] = []
  const closedUntil = c.now + 30n * S
  let windowOpen = false
  let resumedAt = 0n
  for (let now = c.now; now < closedUntil + 5n * S && resumedAt === 0n; now += 10n * MS) {
    c.now = now
    c.tcp.poll(now)
    if (now >= closedUntil) windowOpen = true // its update was lost: only a probe's answer says so
    const sent = dataSegments(c.out())
    if (sent.length === 0) continue
    if (sent.some(([, len]) => len! > 1)) {
      resumedAt = now
      break
    }
    probeTimes.push(now)
    const answer = dataSegments(peerAck(c, windowOpen ? 1 : 0, windowOpen ? 4096 : 0)) // open: the peer took the probe's byte
    if (answer.length > 0) resumedAt = now
  }
  const gaps = probeTimes.slice(1).map((p, i) => p - probeTimes[i]!)
  t.ok(gaps.length >= 5, `${probeTimes.length} probes`)
  t.ok(gaps.every((g) => g <= PERSIST_MAX + 10n * MS), `no probe interval above the cap (largest ${Number(gaps.reduce((a, b) => (a > b ? a : b), 0n) / MS)} ms)`)
  t.ok(resumedAt > 0n, 'the data went out once a probe found the window open')
  t.ok(resumedAt - closedUntil <= PERSIST_MAX + 10n * MS, `resumed ${Number((resumedAt - closedUntil) / MS)} ms after the window opened`)
  t.equal(c.tcp.stats().dup_acks, 0)
  t.end()
})


t.test('a window larger than the TX queue: the rest waits for the next poll, no segment lost to a full queue', (t) => {
  const c = established(t, { window: 65535, ws: 7 })
  const total = 600 * MSS
  c.tcp.write(Buffer.alloc(total, 0x43))
  // a window update opening 8 MB and a grown congestion window would let more than the queue's 256 frames out
  // each segment ACKed on its own, the frames taken once a round: slow start doubles the congestion window
  // each round, past the queue's 256 frames
  let largestBurst = 0
  c.tcp.poll(c.now)
  let sent = dataSegments(c.out())
  for (let round = 0; round < 20 && sent.length > 0; round++) {
    for (const [offset, len] of sent) c.tcp.input(segment({ seq: c.peerSeq, ack: at(offset! + len!), flags: ACK, window: 65535 }), c.now)
    c.tcp.poll(c.now)
    sent = dataSegments(c.out())
    largestBurst = Math.max(largestBurst, sent.length)
  }
  t.ok(largestBurst >= 200, `bursts reached the TX queue's size (${largestBurst} frames)`)
  const st = c.tcp.stats()
  t.equal(st.tx_queue_full, 0, 'never a segment emitted into a full TX queue')
  t.equal(st.unacked + st.unsent, 0, `all ${total} bytes sent and acknowledged`)
  t.equal(st.retransmits, 0)
  t.end()
})
