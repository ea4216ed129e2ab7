/**
 * Reference of bpf/ab_arbitrate.bpf.c, from include/ab_arbitrate.h and include/ab_format.h (documented
 * semantics, not the code). Edit here when those semantics change.
 *
 * Feed packet = IPv4 UDP, not fragmented (first fragments included), destination port in
 * [feed_port_min, feed_port_max]; malformed → malformed, anything else → passed; a payload shorter than
 * the format's header (per UDP length, and present in the frame) → short_payload (XDP_PASS).
 * optiq: stream {session_id (LE u32 at 4), 0}, sequence LE u32 at 8. moldudp64: stream {session[0..8) LE,
 * session[8..10) LE}, sequence BE u64 at 10, count BE u16 at 18: count 0 → heartbeat (XDP_DROP), 0xFFFF →
 * end_of_session (every copy steered like a winner: XDP_PASS without a socket), neither creates a stream.
 * Only the packet's first sequence number is arbitrated.
 *
 * Per stream, logical numbers L (u64, serial arithmetic): a stream's first number is taken as is (L = raw,
 * its newest); later raw numbers lie at their serial distance d (in the format's width: optiq 32 bits,
 * moldudp64 64) from the newest one's raw number. Epochs:
 *   - |d| ≥ reset_distance restarts the stream (`resets`, the copy wins): the new numbering continues at
 *     newest + window/4 + 1 (the reserve above the old newest is kept for late old copies), and the
 *     epoch before is remembered (one only);
 *   - after a restart, a number outside the current window (d ≤ −window or d > window) that is nearer the
 *     previous epoch's newest (|dp| < |d|, |dp| < reset_distance) is a late copy of the old numbering
 *     (late_old_epoch), never a restart: placed at previous newest + dp while the new epoch is young (its
 *     newest at most reserve + window above the previous newest) and within the reserve (L ≤ previous
 *     newest + reserve), stale otherwise; it never moves the newest.
 * Then: L ≤ newest − window → stale_x (XDP_DROP); else the newest moves up to L, and L claims window slot
 * L mod window, whose claims only grow: the same L there → dup_x_after_y (y = the winner's line, XDP_DROP;
 * skew_samples when L & skew_sample_mask == 0), a newer L there → stale_x, else won_x (no socket here:
 * won_nosocket, XDP_PASS). new_streams counts streams created. Every u64, 2^64 − 1 included, can win.
 * claim_retries and skew_unknown stay 0 (the harness runs one CPU); the stream table never fills.
 *
 * Multicast channels (include/ab_groups.h, match_groups = 1): the port range is not used; a feed packet is
 * one whose (line's interface, destination address, destination port, source address) is in the group
 * table, or whose (interface, destination, port) is with source 0 (any source); anything else is passed.
 * The entry's line is the packet's line. Every counter of a matched packet is also counted on its
 * channel (ch<N>_<field> here): rx, short_payload, heartbeat, end_of_session, won_x, dup_x (either
 * winner), stale_x, won_nosocket.
 */
import { parseFrame, type Arrival, type Expected, type ReferenceModel } from './parse.js'

const U64 = (1n << 64n) - 1n
const u64 = (x: bigint): bigint => x & U64
const s64 = (x: bigint): bigint => BigInt.asIntN(64, x)
const abs = (x: bigint): bigint => (x < 0n ? -x : x)

export interface AbConfig {
  format: 'optiq' | 'moldudp64'
  portMin: number
  portMax: number
  window: bigint
  resetDistance: bigint
  skewMask: bigint
  /** Multicast channels: the group table instead of the port range. */
  groups?: AbGroupEntry[]
}

export interface AbGroupEntry {
  lineB: boolean
  /** Host-order u32 addresses; source 0 = any source. */
  group: number
  source: number
  port: number
  channel: number
}

/** The channel counter a program counter adds to (the packet's channel), or undefined. */
function channelField(name: string): string | undefined {
  const m = /^dup_([ab])_after_[ab]$/.exec(name)
  if (m) return `dup_${m[1]}`
  return ['rx', 'short_payload', 'heartbeat', 'end_of_session', 'won_a', 'won_b', 'stale_a', 'stale_b', 'won_nosocket'].includes(name) ? name : undefined
}

/** One numbering: its newest logical number and logical − raw. */
interface Epoch {
  newest: bigint
  offset: bigint
}

interface Stream {
  current: Epoch
  previous?: Epoch
  /** window slot → the logical number that claimed it and whether it won on line B */
  slots: Map<bigint, { l: bigint; lineB: boolean }>
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
    ...(c.groups ? { match_groups: 1 } : {}),
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

/** Where a copy's logical number lies, or why it has none. */
type Placement = { l: bigint; kind: 'current' | 'restart' | 'old' } | { stale: 'old-late' | 'old-beyond-reserve' }

export function createModel(c: AbConfig): ReferenceModel & { keys(): Buffer[] } {
  const streams = new Map<string, { key: Buffer; s: Stream }>()
  const reserve = c.window / 4n
  const width = c.format === 'optiq' ? 32 : 64
  /** Serial distance of a raw number from an epoch's newest, in the format's width. */
  const distance = (e: Epoch, raw: bigint): bigint => BigInt.asIntN(width, raw - (e.newest - e.offset))

  const place = (s: Stream, raw: bigint, counters: Record<string, bigint>): Placement => {
    const d = distance(s.current, raw)
    const inWindow = d > -c.window && d <= c.window
    if (s.previous && !inWindow) {
      const prev = s.previous
      const dp = distance(prev, raw)
      if (abs(dp) < c.resetDistance && abs(dp) < abs(d)) {
        counters['late_old_epoch'] = 1n
        if (s64(s.current.newest - prev.newest) > reserve + c.window) return { stale: 'old-late' }
        if (dp > reserve) return { stale: 'old-beyond-reserve' }
        return { l: u64(prev.newest + dp), kind: 'old' }
      }
    }
    if (abs(d) >= c.resetDistance) {
      counters['resets'] = 1n
      s.previous = { ...s.current }
      const l = u64(s.current.newest + reserve + 1n)
      s.current = { newest: s.current.newest, offset: u64(l - raw) }
      return { l, kind: 'restart' }
    }
    return { l: u64(s.current.newest + d), kind: 'current' }
  }

  return {
    keys: () => [...streams.values()].map((v) => v.key),
    reset: () => streams.clear(),
    classify(a: Arrival): Expected {
      const p = parseFrame(a.frame)
      const line = a.lineB ? 'b' : 'a'
      let channel: number | undefined
      const out = (verdict: Expected['verdict'], path: string, counters: Record<string, bigint>): Expected => {
        const all: Record<string, bigint> = { rx: 1n, ...counters }
        if (channel !== undefined)
          for (const [k, v] of Object.entries(all)) {
            const field = channelField(k)
            if (field) all[`ch${channel}_${field}`] = v
          }
        return { verdict, path, counters: all }
      }
      if (p.cls === 'malformed') return out('pass', 'malformed', { malformed: 1n })
      if (p.cls !== 'udp' || p.fragment !== 'none') return out('pass', `passed-${p.cls}`, { passed: 1n })
      if (c.groups) {
        const match = (source: number) => c.groups!.find((g) => g.lineB === a.lineB && g.group === p.daddr && g.port === p.dport && g.source === source)
        const g = match(p.saddr!) ?? match(0)
        if (!g) return out('pass', 'passed-no-group', { passed: 1n })
        channel = g.channel
      } else if (p.dport! < c.portMin || p.dport! > c.portMax) return out('pass', `passed-${p.cls}`, { passed: 1n })
      const header = c.format === 'optiq' ? 36 : 20
      if (p.payloadLen! < header || a.frame.length < p.payloadAt! + header) return out('pass', 'short', { short_payload: 1n })
      const f = Buffer.from(a.frame.buffer, a.frame.byteOffset, a.frame.length)
      const at = p.payloadAt!
      let raw: bigint
      if (c.format === 'optiq') raw = BigInt(f.readUInt32LE(at + 8))
      else {
        const count = f.readUInt16BE(at + 18)
        if (count === 0) return out('drop', 'heartbeat', { heartbeat: 1n })
        if (count === 0xffff) return out('pass', 'end-of-session', { end_of_session: 1n })
        raw = f.readBigUInt64BE(at + 10)
      }
      const key = streamKey(c, f, at)
      const id = key.toString('hex')
      const counters: Record<string, bigint> = {}
      let entry = streams.get(id)
      if (!entry) {
        entry = { key, s: { current: { newest: raw, offset: 0n }, slots: new Map() } }
        streams.set(id, entry)
        counters['new_streams'] = 1n
      }
      const s = entry.s
      const placed = place(s, raw, counters)
      if ('stale' in placed) return out('drop', placed.stale, { ...counters, [`stale_${line}`]: 1n })
      const { l, kind } = placed
      const stale = (why: string): Expected => out('drop', `${kind}-${why}`, { ...counters, [`stale_${line}`]: 1n })
      if (s64(l - s.current.newest) <= -c.window) return stale('stale')
      if (kind !== 'old' && s64(l - s.current.newest) > 0n) s.current.newest = l
      const slot = l & (c.window - 1n)
      const held = s.slots.get(slot)
      if (held && held.l === l) {
        const winner = held.lineB ? 'b' : 'a'
        counters[`dup_${line}_after_${winner}`] = 1n
        if ((l & c.skewMask) === 0n) counters['skew_samples'] = 1n
        return out('drop', `${kind}-dup-${line}-${winner}`, counters)
      }
      if (held && s64(held.l - l) > 0n) return stale('slot-newer')
      s.slots.set(slot, { l, lineB: a.lineB })
      return out('pass', `${kind}-won${l === U64 ? '-at-2^64-1' : ''}`, { ...counters, [`won_${line}`]: 1n, won_nosocket: 1n })
    },
  }
}
