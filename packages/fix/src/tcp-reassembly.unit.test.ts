// The userspace TCP's receive path driven by crafted segments: out-of-order data held and reassembled
// (reordered, overlapping, duplicate, beyond the hold bound, wrapped sequence numbers), zero-window probes and
// keep-alives. What the application reads must be the peer's stream, intact and in order, and no ACK may
// acknowledge anything past the contiguous bytes received.
import t from 'tap'
import type { Test } from 'tap'
import { TcpFlags } from '@kbx/net'
import { ISN, S, established, parse, segment } from './tcp-peer.js'
import type { Conn } from './tcp-peer.js'

const { PSH, ACK, RST } = TcpFlags
const MS = 1_000_000n
const HOLD_RANGES = 8 // KBX_TCP_OOO_RANGES

/** The peer's byte at sequence offset i from its first data byte: a known function, so any misplacement shows. */
const peerByte = (i: number) => (i * 167 + 13) & 0xff
const stream = (from: number, len: number) => Buffer.from(Array.from({ length: len }, (_, k) => peerByte(from + k)))

/**
 * Sends the peer's bytes [from, from+len) (offsets from its first data byte) and returns the ACK numbers of our
 * replies, as offsets too.
 */
function send(c: Conn, from: number, len: number): number[] {
  const base = c.peerSeq
  return c
    .feed({ seq: (base + from) >>> 0, ack: (ISN + 1) >>> 0, flags: ACK | PSH, payload: stream(from, len) })
    .filter((f) => (f.tcp!.flags & ACK) !== 0)
    .map((f) => (f.tcp!.ack - base) >>> 0)
}

/** Our frames with their TCP payloads. */
function sentFrames(c: Conn): { seq: number; flags: number; payload: Buffer }[] {
  const raw = c.tcp.frames()
  return parse(raw).map((p, i) => ({ seq: p.tcp!.seq, flags: p.tcp!.flags, payload: raw[i]!.subarray(p.payloadOffset, p.payloadOffset + p.payloadLength) }))
}

function readAll(c: Conn): Buffer {
  const parts: Buffer[] = []
  for (let b = c.tcp.read(); b.length; b = c.tcp.read()) parts.push(b)
  return Buffer.concat(parts)
}

const received = new WeakMap<Conn, Set<number>>()

/** Feeds [start, len] pieces in the given order; checks each ACK against the contiguous prefix so far. */
function feedPieces(t: Test, c: Conn, pieces: [number, number][]): void {
  const have = received.get(c) ?? new Set<number>()
  received.set(c, have)
  let contiguous = 0
  while (have.has(contiguous)) contiguous++
  for (const [from, len] of pieces) {
    for (let i = from; i < from + len; i++) have.add(i)
    while (have.has(contiguous)) contiguous++
    const acks = send(c, from, len)
    for (const ack of acks) t.ok(ack <= contiguous, `ACK ${ack} after [${from}, ${from + len}) is not past the contiguous ${contiguous}`)
    c.out() // the pending ACK (if not sent with the segment's reply)
  }
}

t.test('reordered segments are held and the stream is delivered intact and in order', (t) => {
  const c = established(t)
  const order = [0, 2, 1, 4, 3, 6, 5, 9, 8, 7]
  feedPieces(t, c, order.map((i) => [i * 100, 100]))
  t.same(readAll(c), stream(0, 1000), 'the stream, intact')
  const st = c.tcp.stats()
  t.equal(st.ooo_held, 5, 'segments 2, 4, 6, 9 and 8 were held')
  t.equal(st.ooo_reassembled_bytes, 500)
  t.equal(st.ooo_overflows, 0)
  t.equal(st.bytes_in, 1000)
  t.equal((c.tcp.seq().rcv_nxt - c.peerSeq) >>> 0, 1000, 'rcv_nxt at the end of the stream')
  t.end()
})

t.test('while a hole is open every ACK is a duplicate for the hole; filling it ACKs everything held', (t) => {
  const c = established(t)
  t.same(send(c, 0, 100), [100])
  t.same(send(c, 300, 100), [100], 'duplicate ACK')
  t.same(send(c, 200, 100), [100], 'duplicate ACK')
  t.equal(c.tcp.read().length, 100, 'only the in-order bytes are readable')
  const acks = [...send(c, 100, 100), ...c.out().map((f) => (f.tcp!.ack - c.peerSeq) >>> 0)]
  t.same(acks, [400], 'the hole filled: one ACK for all')
  t.same(readAll(c), stream(100, 300))
  t.end()
})

t.test('overlapping and duplicate segments: held ranges merge, the stream stays intact', (t) => {
  const c = established(t)
  feedPieces(t, c, [
    [500, 100], // held
    [500, 100], // duplicate of a held range
    [550, 200], // overlaps its end
    [300, 100], // another range
    [350, 200], // bridges the two into one
    [900, 50], // a third
    [100, 850], // overlaps all of them and the hole before the third
    [50, 100], // still before rcv_nxt: only 50..99 missing
    [0, 60], // the start, overlapping
  ])
  t.same(readAll(c), stream(0, 950))
  const st = c.tcp.stats()
  t.equal(st.ooo_overflows, 0)
  t.equal(st.bytes_in, 950, 'every byte counted once')
  t.end()
})

t.test('beyond the hold bound: the extra range is dropped (counted) and recovered by the peer retransmitting', (t) => {
  const c = established(t)
  // ranges at 200, 400, ... : HOLD_RANGES of them fit, the next one does not
  const held = Array.from({ length: HOLD_RANGES + 1 }, (_, i): [number, number] => [200 * (i + 1), 100])
  feedPieces(t, c, held)
  let st = c.tcp.stats()
  t.equal(st.ooo_held, HOLD_RANGES)
  t.equal(st.ooo_overflows, 1, 'the ninth range did not fit')
  t.equal(c.tcp.read().length, 0, 'nothing in order yet')
  // a segment touching a held range still merges when all ranges are used
  feedPieces(t, c, [[300, 50]])
  t.equal(c.tcp.stats().ooo_overflows, 1, 'merging needs no new range')
  // the peer fills every hole and retransmits the dropped segment
  const fill: [number, number][] = [[0, 200]]
  for (let i = 1; i <= HOLD_RANGES + 1; i++) fill.push([200 * i + 100, 100])
  feedPieces(t, c, [...fill, [200 * (HOLD_RANGES + 1), 100]])
  t.same(readAll(c), stream(0, 200 * (HOLD_RANGES + 2)))
  st = c.tcp.stats()
  t.equal(st.bytes_in, 200 * (HOLD_RANGES + 2))
  t.end()
})

t.test('sequence numbers wrapping past 2^32 while segments are held', (t) => {
  const c = established(t, { irs: 0xffffff00 })
  t.equal(c.peerSeq, 0xffffff01)
  // bytes 0..1023 straddle the wrap at offset 255
  feedPieces(t, c, [[512, 256], [768, 256], [256, 256], [0, 256]])
  t.same(readAll(c), stream(0, 1024))
  t.equal(c.tcp.stats().ooo_reassembled_bytes, 768)
  t.equal(c.tcp.seq().rcv_nxt, (0xffffff01 + 1024) >>> 0)
  t.end()
})

t.test('out-of-order data is held only inside the receive window: the part beyond it is not', (t) => {
  const c = established(t, { rcvBuf: 4096 })
  t.same(send(c, 10_000, 100), [0], 'far beyond the window: not held, ACK of what we have')
  t.equal(c.tcp.stats().ooo_held, 0)
  t.equal(c.tcp.stats().out_of_window, 1)
  t.same(send(c, 4000, 200), [0], 'straddling the right edge: the part inside is held')
  t.equal(c.tcp.stats().ooo_held, 1)
  t.same(send(c, 0, 4000), [4096], 'the hole filled: ACK of the window-full, not a byte past its edge')
  t.same(readAll(c), stream(0, 4096))
  t.same(c.out().map((f) => (f.tcp!.ack - c.peerSeq) >>> 0), [4096], 'a window update once the application read')
  // the peer retransmits what did not fit
  t.same(send(c, 4096, 104), [4200])
  t.same(readAll(c), stream(4096, 104))
  t.end()
})

t.test('a zero window: probes of one byte with a doubling interval up to a cap, never giving up while answered', (t) => {
  const c = established(t, { window: 0 })
  t.equal(c.tcp.stats().snd_wnd, 0)
  c.tcp.write(Buffer.from('NewOrderSingle'))
  c.tcp.poll(c.now)
  t.same(c.out(), [], 'nothing sent into a zero window')
  const probeTimes: bigint[] = []
  const end = c.now + 400n * S
  for (let now = c.now; now < end; now += 100n * MS) {
    c.now = now
    c.tcp.poll(now)
    for (const f of sentFrames(c)) {
      if (f.payload.length === 0) continue
      t.equal(f.payload.length, 1, 'a probe carries one byte')
      t.equal(f.seq, (ISN + 1) >>> 0, 'the first unacknowledged byte')
      probeTimes.push(now)
      c.feed({ seq: c.peerSeq, ack: (ISN + 1) >>> 0, flags: ACK, window: 0 }) // the peer answers: still closed
    }
  }
  t.ok(probeTimes.length >= 5, `${probeTimes.length} probes`)
  const gaps = probeTimes.slice(1).map((p, i) => p - probeTimes[i]!)
  for (let i = 1; i < gaps.length; i++) t.ok(gaps[i]! >= gaps[i - 1]!, `interval ${i} not shorter than the one before`)
  t.ok(gaps.at(-1)! > gaps[0]!, 'backed off')
  t.ok(gaps.every((g) => g <= 1000n * MS), 'up to the 1 s cap (PERSIST_MAX_US): a lost window update costs no more')
  t.equal(c.tcp.stats().stateName, 'established', 'probing never gives up while the peer answers')
  t.equal(c.tcp.stats().zero_window_probes, probeTimes.length)
  // the window opens: the whole message goes out, in order from the first byte
  c.tcp.input(segment({ seq: c.peerSeq, ack: (ISN + 1) >>> 0, flags: ACK, window: 512 }), c.now)
  const sent = sentFrames(c).filter((f) => f.payload.length > 0)
  const data = Buffer.concat(sent.map((f) => f.payload))
  t.equal(sent[0]?.seq, (ISN + 1) >>> 0)
  t.equal(data.toString(), 'NewOrderSingle')
  t.end()
})

t.test('keep-alives: off by default; after the idle time a probe, answered resets, 5 unanswered close', (t) => {
  const off = established(t)
  off.tcp.poll(off.now + 3600n * S)
  t.same(off.out(), [], 'no keep-alive by default')

  const c = established(t, { keepaliveS: 10 })
  const start = c.now
  c.tcp.poll(start + 9n * S)
  t.same(c.out(), [], 'not yet idle long enough')
  c.tcp.poll(start + 10n * S)
  const [probe] = c.out()
  t.equal(probe?.tcp!.flags, ACK)
  t.equal(probe?.tcp!.seq, ISN >>> 0, 'an old sequence number (snd_nxt - 1) makes the peer answer')
  t.equal(probe?.payloadLength, 0)
  c.now = start + 10n * S
  c.feed({ seq: c.peerSeq, ack: (ISN + 1) >>> 0, flags: ACK })
  c.tcp.poll(start + 19n * S)
  t.same(c.out(), [], 'answered: idle counts from the answer')
  let probes = 0
  let rst = false
  for (let s = 20n; s <= 100n; s += 1n) {
    c.tcp.poll(start + s * S)
    for (const f of c.out()) {
      if (f.tcp!.flags & RST) rst = true
      else probes++
    }
  }
  t.equal(probes, 5, 'five unanswered probes')
  t.ok(rst, 'then a RST')
  const st = c.tcp.stats()
  t.equal(st.stateName, 'closed')
  t.equal(st.closeReason, 'timed-out')
  t.equal(st.keepalives, 6)
  t.end()
})
