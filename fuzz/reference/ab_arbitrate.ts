/**
 * Reference of bpf/ab_arbitrate.bpf.c, from include/ab_arbitrate.h and include/ab_format.h (documented
 * semantics, not the code). Edit here when those semantics change (sequence wrap/restart, --max-streams).
 *
 * Feed packet = IPv4 UDP, not fragmented (first fragments included), destination port in
 * [feed_port_min, feed_port_max]; malformed → malformed, anything else → passed; a payload shorter than
 * the format's header (per UDP length, and present in the frame) → short_payload (XDP_PASS).
 * optiq: stream {session_id (LE u32 at 4), 0}, sequence LE u32 at 8. moldudp64: stream {session[0..8) LE,
 * session[8..10) LE}, sequence BE u64 at 10, count BE u16 at 18: count 0 → heartbeat, 0xFFFF →
 * end_of_session, both XDP_DROP. Only the packet's first sequence number is arbitrated.
 *
 * Per stream: logical numbers L (u64): moldudp64 L = sequence + offset; optiq's u32 is unwrapped against
 * the newest L (`top`) by serial-number arithmetic. A number d = L − top with d ≤ −reset_distance restarts
 * the stream: offset = top + 2·window − sequence, `resets` counts it, the packet wins. d ≤ −window →
 * stale_x (XDP_DROP). Otherwise the first copy of L wins (won_x; then steered: without socket
 * won_nosocket, XDP_PASS) and every later copy is dup_x_after_y (y = the winner's line, XDP_DROP), with
 * skew_samples counted when L & skew_sample_mask == 0. new_streams counts streams created.
 *
 * Assumptions (noted where the header is silent):
 *   A1. every sequence number 0 .. 2^64−1 can win once (the MoldUDP64 range is the whole u64);
 *   A2. the first number of a new stream is taken as is (no unwrapping); a stream that exists is never
 *       "new" again, even when its newest number is 0 (the program's comment treats top == 0 as new: the
 *       divergences this causes are reported with path suffix "-top-0");
 *   A3. a stale check uses the top before this packet; top only moves up;
 *   A4. claim_retries and skew_unknown stay 0 on one CPU (the harness runs one CPU).
 */
import { parseFrame, type Arrival, type Expected, type ReferenceModel } from './parse.js'

const U64 = (1n << 64n) - 1n
const u64 = (x: bigint): bigint => x & U64
const s64 = (x: bigint): bigint => BigInt.asIntN(64, x)

export interface AbConfig {
  format: 'optiq' | 'moldudp64'
  portMin: number
  portMax: number
  window: bigint
  resetDistance: bigint
  skewMask: bigint
}

interface Stream {
  top: bigint
  offset: bigint
  winners: Map<bigint, boolean> /* L → won on line B */
}

export function rodataOf(c: AbConfig, lineBIfindex: number): Record<string, number | bigint> {
  return {
    feed_format: c.format === 'optiq' ? 0 : 1,
    feed_port_min: c.portMin,
    feed_port_max: c.portMax,
    line_b_ifindex: lineBIfindex,
    window: Number(c.window),
    reset_distance: c.resetDistance,
    skew_sample_mask: c.skewMask,
  }
}

/** The streams-map key (struct ab_stream_key) of a feed payload. */
function streamKey(c: AbConfig, f: Buffer, at: number): Buffer {
  const key = Buffer.alloc(16)
  if (c.format === 'optiq') {
    key.writeBigUInt64LE(BigInt(f.readUInt32LE(at + 4)), 0)
  } else {
    f.copy(key, 0, at, at + 8)
    key.writeUInt32LE(f[at + 8]! | (f[at + 9]! << 8), 8)
    key.writeUInt32LE(1, 12)
  }
  return key
}

export function createModel(c: AbConfig): ReferenceModel & { keys(): Buffer[] } {
  const streams = new Map<string, { key: Buffer; s: Stream }>()
  const logical = (s: Stream, seq: bigint): bigint =>
    c.format === 'optiq' ? u64(s.top + BigInt.asIntN(32, seq - ((s.top - s.offset) & 0xffffffffn))) : u64(seq + s.offset)
  return {
    keys: () => [...streams.values()].map((v) => v.key),
    reset: () => streams.clear(),
    classify(a: Arrival): Expected {
      const p = parseFrame(a.frame)
      const line = a.lineB ? 'b' : 'a'
      const out = (verdict: Expected['verdict'], path: string, counters: Record<string, bigint>): Expected => ({ verdict, path, counters: { rx: 1n, ...counters } })
      if (p.cls === 'malformed') return out('pass', 'malformed', { malformed: 1n })
      if (p.cls !== 'udp' || p.fragment !== 'none' || p.dport! < c.portMin || p.dport! > c.portMax) return out('pass', `passed-${p.cls}`, { passed: 1n })
      const header = c.format === 'optiq' ? 36 : 20
      if (p.payloadLen! < header || a.frame.length < p.payloadAt! + header) return out('pass', 'short', { short_payload: 1n })
      const f = Buffer.from(a.frame.buffer, a.frame.byteOffset, a.frame.length)
      const at = p.payloadAt!
      let seq: bigint
      if (c.format === 'optiq') seq = BigInt(f.readUInt32LE(at + 8))
      else {
        const count = f.readUInt16BE(at + 18)
        if (count === 0) return out('drop', 'heartbeat', { heartbeat: 1n })
        if (count === 0xffff) return out('drop', 'end', { end_of_session: 1n })
        seq = f.readBigUInt64BE(at + 10)
      }
      const key = streamKey(c, f, at)
      const id = key.toString('hex')
      const counters: Record<string, bigint> = {}
      let entry = streams.get(id)
      if (!entry) {
        entry = { key, s: { top: 0n, offset: 0n, winners: new Map() } }
        streams.set(id, entry)
        counters['new_streams'] = 1n
      }
      const s = entry.s
      let l: bigint
      let path = 'won'
      if (counters['new_streams']) {
        l = u64(seq + s.offset) // A2
        s.top = l
      } else {
        l = logical(s, seq)
        if (s.top === 0n) path = 'won-top-0'
      }
      let d = s64(l - s.top)
      if (d <= -c.resetDistance) {
        s.offset = u64(s.top + 2n * c.window - seq)
        counters['resets'] = 1n
        l = c.format === 'optiq' ? u64((seq & 0xffffffffn) + s.offset) : u64(seq + s.offset)
        d = s64(l - s.top)
        path = s.top === 0n ? 'reset-top-0' : 'reset'
      }
      if (d <= -c.window) return out('drop', s.top === 0n ? 'stale-top-0' : 'stale', { ...counters, [`stale_${line}`]: 1n })
      if (d > 0n) s.top = l
      const winner = s.winners.get(l)
      if (winner !== undefined) {
        counters[`dup_${line}_after_${winner ? 'b' : 'a'}`] = 1n
        if ((l & c.skewMask) === 0n) counters['skew_samples'] = 1n
        return out('drop', `dup-${line}-${winner ? 'b' : 'a'}`, counters)
      }
      s.winners.set(l, a.lineB)
      if (l === U64) path += '-at-2^64-1' // issue 9, finding 2: its slot tag l + 1 wraps to 0
      return out('pass', path, { ...counters, [`won_${line}`]: 1n, won_nosocket: 1n })
    },
  }
}
