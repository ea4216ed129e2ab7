/**
 * Frames for the xdp-* targets: generated from a few choices (VLAN stack of 0–3 tags, IPv4 with options
 * and fragments, IPv6, ARP, UDP/TCP, optiq and MoldUDP64 payloads with sequence edges and counts), and
 * an input format carrying several frames, each with the line it arrives on:
 *   input = variant u8, then records of { meta u8 (bit 0: line B), length u16 BE, frame }.
 */
import { Rng } from '../engine.js'
import { parseFrame } from '../reference/parse.js'

export interface FrameRecord {
  lineB: boolean
  frame: Buffer
}

export interface FrameInput {
  variant: number
  frames: FrameRecord[]
}

export const MAX_FRAMES = 16

export function decodeInput(input: Buffer): FrameInput {
  const frames: FrameRecord[] = []
  let at = 1
  while (at + 3 <= input.length && frames.length < MAX_FRAMES) {
    const meta = input[at]!
    const len = input.readUInt16BE(at + 1)
    const frame = input.subarray(at + 3, Math.min(input.length, at + 3 + len))
    at += 3 + len
    if (frame.length >= 14) frames.push({ lineB: (meta & 1) === 1, frame: Buffer.from(frame) })
  }
  return { variant: input[0] ?? 0, frames }
}

export function encodeInput(x: FrameInput): Buffer {
  const parts: Buffer[] = [Buffer.from([x.variant & 0xff])]
  for (const r of x.frames.slice(0, MAX_FRAMES)) {
    const head = Buffer.alloc(3)
    head[0] = r.lineB ? 1 : 0
    head.writeUInt16BE(Math.min(r.frame.length, 0xffff), 1)
    parts.push(head, r.frame.subarray(0, 0xffff))
  }
  return Buffer.concat(parts)
}

const SEQ_EDGES = [0n, 1n, 2n, 63n, 64n, 0x100000n, 0xfffffffen, 0xffffffffn, 0x100000000n, 1n << 63n, (1n << 64n) - 2n, (1n << 64n) - 1n]
const PORTS = [8080, 8081, 8079, 8082, 8000, 8010, 7999, 8011, 9878, 40000, 53, 0, 65535]
// unicast, 0, broadcast, and the multicast groups of the xdp-ab_arbitrate channel variants
const ADDRS = [0x0a00000b, 0x0a000301, 0x0a000302, 0x0a000101, 0x0a000102, 0, 0xffffffff, 0xe9360c01, 0xe8010101]
const SESSIONS = ['SESSION001', 'SESSION002', 'WRAPSESS00', '\0\0\0\0\0\0\0\0\0\0']

function checksum(b: Buffer): number {
  let sum = 0
  for (let i = 0; i + 1 < b.length; i += 2) sum += b.readUInt16BE(i)
  if (b.length & 1) sum += b[b.length - 1]! << 8
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16)
  return ~sum & 0xffff
}

export function feedPayload(rng: Rng): Buffer {
  if (rng.chance(0.5)) {
    const b = Buffer.alloc(36 + (rng.chance(0.2) ? rng.int(8) : 0))
    b[0] = 1
    b[1] = 36
    b.writeUInt32LE(rng.int(3), 4)
    b.writeUInt32LE(Number(rng.pick(SEQ_EDGES) & 0xffffffffn) + (rng.chance(0.5) ? rng.int(200) : 0) >>> 0, 8)
    return b
  }
  const b = Buffer.alloc(20 + rng.int(3) * 8)
  b.write(rng.pick(SESSIONS), 0, 10, 'latin1')
  b.writeBigUInt64BE(BigInt.asUintN(64, rng.pick(SEQ_EDGES) + BigInt(rng.chance(0.5) ? rng.int(200) - 100 : 0)), 10)
  b.writeUInt16BE(rng.pick([0, 1, 2, 3, 0xffff, 0xfffe, rng.int(65536)]), 18)
  return b
}

/** One frame from random choices; mostly well formed, sometimes inconsistent on purpose. */
export function generateFrame(rng: Rng): Buffer {
  const eth = Buffer.alloc(14)
  eth.set([2, 0, 0, 0, 0, 2], 0)
  eth.set([2, 0, 0, 0, 0, 1], 6)
  const vlans = rng.pick([0, 0, 0, 1, 2, 3])
  const tags: Buffer[] = []
  const kind = rng.pick(['ipv4', 'ipv4', 'ipv4', 'ipv4', 'ipv6', 'arp', 'other'])
  const ethertype = kind === 'ipv4' ? 0x0800 : kind === 'ipv6' ? 0x86dd : kind === 'arp' ? 0x0806 : rng.int(65536)
  let outer = ethertype
  for (let i = vlans - 1; i >= 0; i--) {
    const tag = Buffer.alloc(4)
    tag.writeUInt16BE(rng.int(4096), 0)
    tag.writeUInt16BE(outer, 2)
    tags.unshift(tag)
    outer = rng.chance(0.5) ? 0x8100 : 0x88a8
  }
  eth.writeUInt16BE(outer, 12)
  let body: Buffer
  if (kind === 'arp') {
    body = Buffer.alloc(28)
    body.writeUInt16BE(rng.chance(0.9) ? 1 : rng.int(4), 0)
    body.writeUInt16BE(rng.chance(0.9) ? 0x0800 : 0x86dd, 2)
    body[4] = rng.chance(0.9) ? 6 : rng.int(9)
    body[5] = rng.chance(0.9) ? 4 : rng.int(9)
    body.writeUInt16BE(rng.pick([1, 1, 2, 0, 3]), 6)
    body.writeUInt32BE(rng.pick(ADDRS) >>> 0, 14)
    body.writeUInt32BE(rng.pick(ADDRS) >>> 0, 24)
  } else if (kind === 'ipv6') {
    body = Buffer.alloc(40 + 8 + 20)
    body[0] = 0x60
    body.writeUInt16BE(28, 4)
    body[6] = 17
    body.writeUInt16BE(rng.pick(PORTS), 42)
  } else if (kind === 'ipv4') {
    body = ipv4(rng)
  } else body = Buffer.from(Array.from({ length: rng.int(64) }, () => rng.int(256)))
  const frame = Buffer.concat([eth, ...tags, body])
  return rng.chance(0.1) ? frame.subarray(0, 14 + rng.int(frame.length - 13)) : frame
}

function ipv4(rng: Rng): Buffer {
  const ihl = rng.chance(0.8) ? 5 : 5 + rng.int(11)
  const header = Buffer.alloc(ihl * 4)
  for (let i = 20; i < header.length; i++) header[i] = rng.chance(0.7) ? 1 : rng.int(256)
  const proto = rng.pick([17, 17, 17, 6, 6, 1, 47, rng.int(256)])
  let l4: Buffer
  if (proto === 17) {
    const payload = rng.chance(0.85) ? feedPayload(rng) : Buffer.from(Array.from({ length: rng.int(40) }, () => rng.int(256)))
    l4 = Buffer.alloc(8)
    l4.writeUInt16BE(rng.pick(PORTS), 0)
    l4.writeUInt16BE(rng.pick(PORTS), 2)
    l4.writeUInt16BE(rng.chance(0.9) ? 8 + payload.length : rng.int(80), 4)
    l4 = Buffer.concat([l4, payload])
  } else if (proto === 6) {
    const doff = rng.chance(0.8) ? 5 : rng.int(16)
    l4 = Buffer.alloc(Math.max(20, doff * 4) + rng.int(16))
    l4.writeUInt16BE(rng.pick(PORTS), 0)
    l4.writeUInt16BE(rng.pick(PORTS), 2)
    l4[12] = doff << 4
    l4[13] = rng.int(256)
  } else l4 = Buffer.alloc(rng.int(32))
  header[0] = (rng.chance(0.97) ? 0x40 : rng.int(16) << 4) | ihl
  const total = header.length + l4.length
  header.writeUInt16BE(rng.chance(0.9) ? total : rng.int(total + 40), 2)
  header.writeUInt16BE(rng.pick([0, 0, 0, 0x4000, 0x2000, 0x2001, 0x0001, 0x1fff, rng.int(65536)]), 6)
  header[8] = 64
  header[9] = proto
  header.writeUInt32BE(rng.pick(ADDRS) >>> 0, 12)
  header.writeUInt32BE(rng.pick(ADDRS) >>> 0, 16)
  header.writeUInt16BE(checksum(header), 10)
  const padding = rng.chance(0.2) ? Buffer.alloc(rng.int(20)) : Buffer.alloc(0)
  return Buffer.concat([header, l4, padding])
}

const WINDOWS = [1n, 63n, 64n, 65n, 4095n, 4096n, 0x100000n, 0xfffffn, 1n << 32n]

/** Moves a feed frame's sequence number by an interesting distance (window edges, reset distance, wraps). */
export function shiftSequence(frame: Buffer, rng: Rng): Buffer {
  const p = parseFrame(frame)
  if (p.cls !== 'udp' || p.payloadAt === undefined) return frame
  const out = Buffer.from(frame)
  const delta = rng.pick(WINDOWS) * (rng.chance(0.5) ? 1n : -1n)
  if (out.length >= p.payloadAt + 18 && rng.chance(0.5)) {
    const at = p.payloadAt + 10
    out.writeBigUInt64BE(BigInt.asUintN(64, out.readBigUInt64BE(at) + delta), at)
  } else if (out.length >= p.payloadAt + 12) {
    const at = p.payloadAt + 8
    out.writeUInt32LE(Number(BigInt.asUintN(32, BigInt(out.readUInt32LE(at)) + delta)), at)
  }
  return out
}
