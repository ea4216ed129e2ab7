import { formatIPv4, formatIPv6, formatMac, readIPv4 } from './address.js'
import { checksumPartial, ipv4PseudoHeaderSum, ipv6PseudoHeaderSum } from './checksum.js'
import {
  ARP_LENGTH,
  ETH_HEADER_LENGTH,
  EtherType,
  IPV4_HEADER_LENGTH,
  IPV6_HEADER_LENGTH,
  IpProtocol,
  TCP_HEADER_LENGTH,
  UDP_HEADER_LENGTH,
} from './constants.js'

export interface EthernetHeader {
  dstMac: string
  srcMac: string
  /** EtherType after any VLAN tags (e.g. 0x0800). */
  etherType: number
}

export interface VlanTag {
  tpid: number
  pcp: number
  dei: boolean
  vid: number
}

export interface ParsedIPv4 {
  /** Offset of the IPv4 header in the frame. */
  offset: number
  headerLength: number
  tos: number
  totalLength: number
  id: number
  dontFragment: boolean
  moreFragments: boolean
  /** In bytes. */
  fragmentOffset: number
  ttl: number
  protocol: number
  checksum: number
  checksumValid: boolean
  src: string
  dst: string
  /** Host-order u32 addresses. */
  srcAddr: number
  dstAddr: number
  options: Buffer
}

export interface ParsedIPv6 {
  offset: number
  trafficClass: number
  flowLabel: number
  payloadLength: number
  /** Next header of the fixed header (before extension headers). */
  nextHeader: number
  /** Upper-layer protocol after skipping extension headers. */
  protocol: number
  hopLimit: number
  src: string
  dst: string
  /** Present when a fragment header was found. */
  fragment?: { offset: number; moreFragments: boolean; id: number }
}

export interface ParsedUdp {
  offset: number
  srcPort: number
  dstPort: number
  length: number
  checksum: number
  /** undefined when the checksum cannot be checked (fragment) or is absent (0 over IPv4). */
  checksumValid: boolean | undefined
}

export interface ParsedTcp {
  offset: number
  srcPort: number
  dstPort: number
  seq: number
  ack: number
  headerLength: number
  flags: number
  window: number
  checksum: number
  /** undefined when the checksum cannot be checked (fragment). */
  checksumValid: boolean | undefined
  urgentPointer: number
  options: Buffer
}

export interface ParsedArp {
  offset: number
  htype: number
  ptype: number
  /** 1 request, 2 reply. */
  opcode: number
  op: 'request' | 'reply' | 'other'
  senderMac: string
  senderIp: string
  targetMac: string
  targetIp: string
}

export interface ParsedFrameOk {
  ok: true
  eth: EthernetHeader
  vlans: VlanTag[]
  /** Offset of the L3 header (after Ethernet and VLAN tags). */
  l3Offset: number
  ipv4?: ParsedIPv4
  ipv6?: ParsedIPv6
  udp?: ParsedUdp
  tcp?: ParsedTcp
  arp?: ParsedArp
  /** Where the innermost parsed layer's payload starts and how long it is (trailing padding excluded). */
  payloadOffset: number
  payloadLength: number
}

export interface ParsedFrameError {
  ok: false
  error: string
}

export type ParsedFrame = ParsedFrameOk | ParsedFrameError

function fail(error: string): ParsedFrameError {
  return { ok: false, error }
}

function u16(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!
}

function u32(b: Uint8Array, o: number): number {
  return readIPv4(b, o)
}

function isVlanTpid(type: number): boolean {
  return type === EtherType.VLAN || type === EtherType.QinQ || type === 0x9100
}

/**
 * Parses Ethernet (+VLAN tags), IPv4/IPv6, UDP/TCP and ARP. Never throws: malformed input gives
 * { ok: false, error }. Unknown EtherTypes and L4 protocols are ok with the payload at the first
 * unparsed byte. Non-first fragments have no L4 header.
 */
export function parseFrame(b: Uint8Array): ParsedFrame {
  try {
    return parseFrameUnchecked(b)
  } catch (err) {
    return fail(`unparseable frame: ${err instanceof Error ? err.message : String(err)}`)
  }
}

function parseFrameUnchecked(b: Uint8Array): ParsedFrame {
  if (b.length < ETH_HEADER_LENGTH) return fail('truncated ethernet header')
  let p = 12
  let etherType = u16(b, p)
  const vlans: VlanTag[] = []
  while (isVlanTpid(etherType)) {
    if (b.length < p + 6) return fail('truncated vlan tag')
    const tci = u16(b, p + 2)
    vlans.push({ tpid: etherType, pcp: tci >>> 13, dei: (tci & 0x1000) !== 0, vid: tci & 0x0fff })
    p += 4
    etherType = u16(b, p)
  }
  const l3 = p + 2
  const frame: ParsedFrameOk = {
    ok: true,
    eth: { dstMac: formatMac(b, 0), srcMac: formatMac(b, 6), etherType },
    vlans,
    l3Offset: l3,
    payloadOffset: l3,
    payloadLength: b.length - l3,
  }
  switch (etherType) {
    case EtherType.IPv4:
      return parseIPv4(b, l3, frame)
    case EtherType.IPv6:
      return parseIPv6(b, l3, frame)
    case EtherType.ARP:
      return parseArp(b, l3, frame)
    default:
      return frame
  }
}

function parseIPv4(b: Uint8Array, l3: number, frame: ParsedFrameOk): ParsedFrame {
  if (b.length < l3 + IPV4_HEADER_LENGTH) return fail('truncated ipv4 header')
  const versionIhl = b[l3]!
  if (versionIhl >>> 4 !== 4) return fail(`bad ipv4 version ${versionIhl >>> 4}`)
  const headerLength = (versionIhl & 0x0f) * 4
  if (headerLength < IPV4_HEADER_LENGTH) return fail(`bad ipv4 header length ${headerLength}`)
  if (b.length < l3 + headerLength) return fail('truncated ipv4 header')
  const totalLength = u16(b, l3 + 2)
  if (totalLength < headerLength) return fail(`bad ipv4 total length ${totalLength}`)
  if (b.length < l3 + totalLength) return fail('truncated ipv4 packet')
  const flagsAndOffset = u16(b, l3 + 6)
  const srcAddr = u32(b, l3 + 12)
  const dstAddr = u32(b, l3 + 16)
  const ipv4: ParsedIPv4 = {
    offset: l3,
    headerLength,
    tos: b[l3 + 1]!,
    totalLength,
    id: u16(b, l3 + 4),
    dontFragment: (flagsAndOffset & 0x4000) !== 0,
    moreFragments: (flagsAndOffset & 0x2000) !== 0,
    fragmentOffset: (flagsAndOffset & 0x1fff) * 8,
    ttl: b[l3 + 8]!,
    protocol: b[l3 + 9]!,
    checksum: u16(b, l3 + 10),
    checksumValid: checksumPartial(b, l3, l3 + headerLength) === 0xffff,
    src: formatIPv4(srcAddr),
    dst: formatIPv4(dstAddr),
    srcAddr,
    dstAddr,
    options: Buffer.from(b.subarray(l3 + IPV4_HEADER_LENGTH, l3 + headerLength)),
  }
  frame.ipv4 = ipv4
  const l4 = l3 + headerLength
  const l4Length = totalLength - headerLength
  frame.payloadOffset = l4
  frame.payloadLength = l4Length
  if (ipv4.fragmentOffset !== 0) return frame
  const isFragment = ipv4.moreFragments
  const pseudo = (length: number): number => ipv4PseudoHeaderSum(srcAddr, dstAddr, ipv4.protocol, length)
  return parseL4(b, l4, l4Length, ipv4.protocol, isFragment, pseudo, true, frame)
}

const ipv6ExtensionHeaders = new Set([0 /* hop-by-hop */, 43 /* routing */, 60 /* destination options */])

function parseIPv6(b: Uint8Array, l3: number, frame: ParsedFrameOk): ParsedFrame {
  if (b.length < l3 + IPV6_HEADER_LENGTH) return fail('truncated ipv6 header')
  const word0 = u32(b, l3)
  if (word0 >>> 28 !== 6) return fail(`bad ipv6 version ${word0 >>> 28}`)
  const payloadLength = u16(b, l3 + 4)
  if (b.length < l3 + IPV6_HEADER_LENGTH + payloadLength) return fail('truncated ipv6 packet')
  const nextHeader = b[l3 + 6]!
  const ipv6: ParsedIPv6 = {
    offset: l3,
    trafficClass: (word0 >>> 20) & 0xff,
    flowLabel: word0 & 0xfffff,
    payloadLength,
    nextHeader,
    protocol: nextHeader,
    hopLimit: b[l3 + 7]!,
    src: formatIPv6(b, l3 + 8),
    dst: formatIPv6(b, l3 + 24),
  }
  frame.ipv6 = ipv6
  const end = l3 + IPV6_HEADER_LENGTH + payloadLength
  let p = l3 + IPV6_HEADER_LENGTH
  let protocol = nextHeader
  for (;;) {
    if (ipv6ExtensionHeaders.has(protocol)) {
      if (end < p + 8) return fail('truncated ipv6 extension header')
      const length = (b[p + 1]! + 1) * 8
      if (end < p + length) return fail('truncated ipv6 extension header')
      protocol = b[p]!
      p += length
    } else if (protocol === 44 /* fragment */) {
      if (end < p + 8) return fail('truncated ipv6 fragment header')
      const offsetAndFlags = u16(b, p + 2)
      ipv6.fragment = { offset: offsetAndFlags & 0xfff8, moreFragments: (offsetAndFlags & 1) !== 0, id: u32(b, p + 4) }
      protocol = b[p]!
      p += 8
    } else {
      break
    }
  }
  ipv6.protocol = protocol
  frame.payloadOffset = p
  frame.payloadLength = end - p
  if (ipv6.fragment !== undefined && ipv6.fragment.offset !== 0) return frame
  const isFragment = ipv6.fragment?.moreFragments === true
  const pseudo = (length: number): number => ipv6PseudoHeaderSum(b, l3 + 8, l3 + 24, protocol, length)
  return parseL4(b, p, end - p, protocol, isFragment, pseudo, false, frame)
}

function parseL4(
  b: Uint8Array,
  l4: number,
  l4Length: number,
  protocol: number,
  isFragment: boolean,
  pseudoHeaderSum: (length: number) => number,
  zeroUdpChecksumAllowed: boolean,
  frame: ParsedFrameOk,
): ParsedFrame {
  if (protocol === IpProtocol.UDP) {
    if (l4Length < UDP_HEADER_LENGTH) return fail('truncated udp header')
    const length = u16(b, l4 + 4)
    if (length < UDP_HEADER_LENGTH) return fail(`bad udp length ${length}`)
    if (!isFragment && length > l4Length) return fail('truncated udp datagram')
    const checksum = u16(b, l4 + 6)
    let checksumValid: boolean | undefined
    if (!isFragment && !(checksum === 0 && zeroUdpChecksumAllowed)) {
      checksumValid = checksumPartial(b, l4, l4 + length, pseudoHeaderSum(length)) === 0xffff
    }
    frame.udp = { offset: l4, srcPort: u16(b, l4), dstPort: u16(b, l4 + 2), length, checksum, checksumValid }
    frame.payloadOffset = l4 + UDP_HEADER_LENGTH
    frame.payloadLength = (isFragment ? l4Length : length) - UDP_HEADER_LENGTH
    return frame
  }
  if (protocol === IpProtocol.TCP) {
    if (l4Length < TCP_HEADER_LENGTH) return fail('truncated tcp header')
    const headerLength = (b[l4 + 12]! >>> 4) * 4
    if (headerLength < TCP_HEADER_LENGTH) return fail(`bad tcp header length ${headerLength}`)
    if (l4Length < headerLength) return fail('truncated tcp header')
    frame.tcp = {
      offset: l4,
      srcPort: u16(b, l4),
      dstPort: u16(b, l4 + 2),
      seq: u32(b, l4 + 4),
      ack: u32(b, l4 + 8),
      headerLength,
      flags: b[l4 + 13]!,
      window: u16(b, l4 + 14),
      checksum: u16(b, l4 + 16),
      checksumValid: isFragment
        ? undefined
        : checksumPartial(b, l4, l4 + l4Length, pseudoHeaderSum(l4Length)) === 0xffff,
      urgentPointer: u16(b, l4 + 18),
      options: Buffer.from(b.subarray(l4 + TCP_HEADER_LENGTH, l4 + headerLength)),
    }
    frame.payloadOffset = l4 + headerLength
    frame.payloadLength = l4Length - headerLength
    return frame
  }
  return frame
}

function parseArp(b: Uint8Array, l3: number, frame: ParsedFrameOk): ParsedFrame {
  if (b.length < l3 + 8) return fail('truncated arp header')
  const htype = u16(b, l3)
  const ptype = u16(b, l3 + 2)
  const hlen = b[l3 + 4]!
  const plen = b[l3 + 5]!
  if (htype !== 1 || ptype !== EtherType.IPv4 || hlen !== 6 || plen !== 4) {
    // Not IPv4-over-Ethernet ARP: report it as an unknown L3 payload.
    return frame
  }
  if (b.length < l3 + ARP_LENGTH) return fail('truncated arp packet')
  const opcode = u16(b, l3 + 6)
  frame.arp = {
    offset: l3,
    htype,
    ptype,
    opcode,
    op: opcode === 1 ? 'request' : opcode === 2 ? 'reply' : 'other',
    senderMac: formatMac(b, l3 + 8),
    senderIp: formatIPv4(u32(b, l3 + 14)),
    targetMac: formatMac(b, l3 + 18),
    targetIp: formatIPv4(u32(b, l3 + 24)),
  }
  frame.payloadOffset = l3 + ARP_LENGTH
  frame.payloadLength = 0
  return frame
}
