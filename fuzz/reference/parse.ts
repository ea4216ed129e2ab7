/**
 * Reference frame classifier for the xdp-* targets, written from the documented rules of
 * bpf/include/kbx_parse.h (not from its code): Ethernet, at most two VLAN tags (0x8100 / 0x88a8), then
 * IPv6 (fixed header present, not parsed further), IPv4 (version 4, IHL >= 5, header and total length
 * within the frame, total >= header), fragments (offset > 0: no L4; offset 0 with MF: first fragment, L4
 * header present), UDP (length >= 8 and, unfragmented, within the IPv4 payload; a first fragment's UDP
 * length may exceed what is there) and TCP (data offset >= 5, header within the IPv4 payload and frame).
 * Truncated or inconsistent → malformed. Checksums are not checked (documented).
 */
export type PacketClass = 'malformed' | 'not-ip' | 'ipv6' | 'ipv4-fragment' | 'ipv4' | 'udp' | 'tcp'
export type Fragment = 'none' | 'first' | 'later'

export interface Parsed {
  cls: PacketClass
  vlanCount: number
  ethertype: number
  fragment: Fragment
  protocol: number
  saddr?: number
  daddr?: number
  sport?: number
  dport?: number
  /** UDP payload: offset in the frame and length (UDP length − 8, or for a first fragment what the IPv4 payload holds). */
  payloadAt?: number
  payloadLen?: number
}

const be16 = (f: Uint8Array, at: number): number => (f[at]! << 8) | f[at + 1]!
const be32 = (f: Uint8Array, at: number): number => ((f[at]! << 24) | (f[at + 1]! << 16) | (f[at + 2]! << 8) | f[at + 3]!) >>> 0

export function parseFrame(f: Uint8Array): Parsed {
  const p: Parsed = { cls: 'malformed', vlanCount: 0, ethertype: 0, fragment: 'none', protocol: 0 }
  if (f.length < 14) return p
  let type = be16(f, 12)
  let at = 14
  while (p.vlanCount < 2 && (type === 0x8100 || type === 0x88a8)) {
    if (f.length < at + 4) return p
    type = be16(f, at + 2)
    at += 4
    p.vlanCount++
  }
  p.ethertype = type
  if (type === 0x86dd) {
    p.cls = f.length >= at + 40 ? 'ipv6' : 'malformed'
    return p
  }
  if (type !== 0x0800) {
    p.cls = 'not-ip'
    return p
  }
  if (f.length < at + 20) return p
  const version = f[at]! >> 4
  const headerLen = (f[at]! & 15) * 4
  if (version !== 4 || headerLen < 20 || f.length < at + headerLen) return p
  const total = be16(f, at + 2)
  if (total < headerLen || f.length < at + total) return p
  const frag = be16(f, at + 6)
  p.fragment = frag & 0x1fff ? 'later' : frag & 0x2000 ? 'first' : 'none'
  p.protocol = f[at + 9]!
  p.saddr = be32(f, at + 12)
  p.daddr = be32(f, at + 16)
  if (p.fragment === 'later') {
    p.cls = 'ipv4-fragment'
    return p
  }
  const l4 = at + headerLen
  const ipPayload = total - headerLen
  if (p.protocol === 17) {
    if (f.length < l4 + 8) return p
    const udpLen = be16(f, l4 + 4)
    if (ipPayload < 8 || udpLen < 8) return p
    if (p.fragment === 'none' && udpLen > ipPayload) return p
    p.sport = be16(f, l4)
    p.dport = be16(f, l4 + 2)
    p.payloadAt = l4 + 8
    p.payloadLen = p.fragment === 'none' ? udpLen - 8 : ipPayload - 8
    p.cls = 'udp'
    return p
  }
  if (p.protocol === 6) {
    if (f.length < l4 + 20) return p
    const doff = (f[l4 + 12]! >> 4) * 4
    if (doff < 20 || doff > ipPayload || f.length < l4 + doff) return p
    p.sport = be16(f, l4)
    p.dport = be16(f, l4 + 2)
    p.cls = 'tcp'
    return p
  }
  p.cls = 'ipv4'
  return p
}

/** Counter changes of one frame (names as in the program's stats struct). */
export type Counters = Record<string, bigint>

export function add(into: Counters, from: Counters): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0n) + v
}

export interface Expected {
  verdict: 'pass' | 'drop' | 'redirect' | 'tx' | 'aborted'
  counters: Counters
  /** A short name of the path taken, for the fuzzer's behaviour signature. */
  path: string
}

/** How the harness presents a frame: on line/interface A (lo, queue 0, slotted) or B (another interface, no slot). */
export interface Arrival {
  frame: Uint8Array
  lineB: boolean
}

export interface ReferenceModel {
  /** Expected verdict and counter changes of one frame; updates the model's state. */
  classify(arrival: Arrival): Expected
  /** Forget all state (the harness empties the program's maps at the same time). */
  reset(): void
}
