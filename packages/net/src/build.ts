import { UsageError } from '@kbx/errors'
import { parseIPv4, parseIPv6, writeIPv4, writeMacTo } from './address.js'
import { checksumPartial, foldChecksum, ipv4PseudoHeaderSum, ipv6PseudoHeaderSum } from './checksum.js'
import {
  ARP_LENGTH,
  ETH_HEADER_LENGTH,
  EtherType,
  IPV4_HEADER_LENGTH,
  IPV6_HEADER_LENGTH,
  IpProtocol,
  TCP_HEADER_LENGTH,
  UDP_HEADER_LENGTH,
  VLAN_TAG_LENGTH,
} from './constants.js'
import type { TcpFlags } from './constants.js'

export interface FrameSpec {
  srcMac: string
  dstMac: string
  /** 802.1Q VLAN IDs, outermost first. */
  vlans?: number[]
  /** TPID of the outermost tag when there are several: 0x8100 (default) or 0x88a8 (802.1ad). */
  outerVlanTpid?: number
}

export interface Ipv4Spec extends FrameSpec {
  srcIp: string
  dstIp: string
  ttl?: number
  id?: number
  tos?: number
  /** Raw IPv4 options; zero-padded (EOL) to a multiple of 4 bytes, at most 40. */
  options?: Buffer
  dontFragment?: boolean
  moreFragments?: boolean
  /**
   * Fragment offset in bytes (a multiple of 8). With a non-zero offset the frame is a non-first
   * fragment: the payload follows the IPv4 header directly, without an L4 header.
   */
  fragmentOffset?: number
}

export interface UdpSpec extends Ipv4Spec {
  srcPort: number
  dstPort: number
  payload: Uint8Array
  /** false → checksum field 0 ("no checksum", legal for UDP over IPv4). Default true. */
  udpChecksum?: boolean
}

export interface TcpSpec extends Ipv4Spec {
  srcPort: number
  dstPort: number
  seq: number
  ack: number
  flags: TcpFlags | number
  window: number
  /** Raw TCP options (not IPv4 options here); zero-padded (EOL) to a multiple of 4 bytes, at most 40. */
  options?: Buffer
  /** IPv4 options of a TCP frame (`options` means TCP options in a TcpSpec). */
  ipOptions?: Buffer
  payload?: Uint8Array
  urgentPointer?: number
}

export interface Udp6Spec extends FrameSpec {
  srcIp: string
  dstIp: string
  srcPort: number
  dstPort: number
  payload: Uint8Array
  hopLimit?: number
  trafficClass?: number
  flowLabel?: number
}

export interface ArpSpec {
  op: 'request' | 'reply'
  senderMac: string
  senderIp: string
  targetMac: string
  targetIp: string
  /** Ethernet destination; default broadcast for a request, targetMac for a reply. */
  dstMac?: string
  vlans?: number[]
}

const noPayload = new Uint8Array(0)

function invalid(what: string, value: unknown, expected: string): UsageError {
  return new UsageError(`invalid ${what} ${JSON.stringify(value)}: expected ${expected}`, { op: 'build frame' })
}

function checkUint(what: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) throw invalid(what, value, `an integer 0..${max}`)
}

function optionsLength(what: string, options: Uint8Array | undefined): number {
  if (options === undefined) return 0
  const padded = (options.length + 3) & ~3
  if (padded > 40) throw invalid(`${what} length`, options.length, 'at most 40 bytes of options')
  return padded
}

/** Length of the Ethernet header including VLAN tags. */
export function ethernetHeaderLength(spec: { vlans?: number[] }): number {
  return ETH_HEADER_LENGTH + (spec.vlans?.length ?? 0) * VLAN_TAG_LENGTH
}

/** Writes Ethernet (+ 802.1Q tags) at offset; returns the offset of the L3 header. */
export function writeEthernetHeader(
  dst: Uint8Array,
  offset: number,
  spec: FrameSpec,
  etherType: number,
): number {
  writeMacTo(dst, offset, spec.dstMac)
  writeMacTo(dst, offset + 6, spec.srcMac)
  let p = offset + 12
  const vlans = spec.vlans
  if (vlans !== undefined) {
    for (let i = 0; i < vlans.length; i++) {
      const vid = vlans[i]!
      checkUint('VLAN id', vid, 4095)
      const tpid = i === 0 && vlans.length > 1 ? (spec.outerVlanTpid ?? EtherType.VLAN) : EtherType.VLAN
      dst[p] = tpid >>> 8
      dst[p + 1] = tpid & 255
      dst[p + 2] = vid >>> 8
      dst[p + 3] = vid & 255
      p += 4
    }
  }
  dst[p] = etherType >>> 8
  dst[p + 1] = etherType & 255
  return p + 2
}

function isNonFirstFragment(spec: Ipv4Spec): boolean {
  return (spec.fragmentOffset ?? 0) !== 0
}

/**
 * Writes an IPv4 header (with `spec.options` and a correct header checksum) at offset for an L4
 * segment of `l4Length` bytes; returns the header length.
 */
export function writeIPv4Header(
  dst: Uint8Array,
  offset: number,
  spec: Ipv4Spec,
  protocol: number,
  l4Length: number,
): number {
  return writeIPv4HeaderWith(dst, offset, spec, protocol, l4Length, parseIPv4(spec.srcIp), parseIPv4(spec.dstIp), spec.options)
}

function writeIPv4HeaderWith(
  dst: Uint8Array,
  offset: number,
  spec: Ipv4Spec,
  protocol: number,
  l4Length: number,
  srcIp: number,
  dstIp: number,
  options: Uint8Array | undefined,
): number {
  const optLength = optionsLength('IPv4 options', options)
  const headerLength = IPV4_HEADER_LENGTH + optLength
  const totalLength = headerLength + l4Length
  if (totalLength > 0xffff) throw invalid('IPv4 total length', totalLength, 'at most 65535 bytes')
  const tos = spec.tos ?? 0
  const id = spec.id ?? 0
  const ttl = spec.ttl ?? 64
  const fragmentOffset = spec.fragmentOffset ?? 0
  checkUint('TOS', tos, 255)
  checkUint('IPv4 id', id, 0xffff)
  checkUint('TTL', ttl, 255)
  checkUint('fragment offset', fragmentOffset, 0xfff8)
  if (fragmentOffset % 8 !== 0) throw invalid('fragment offset', fragmentOffset, 'a multiple of 8 bytes')
  const flagsAndOffset =
    (spec.dontFragment ? 0x4000 : 0) | (spec.moreFragments ? 0x2000 : 0) | (fragmentOffset >>> 3)
  dst[offset] = 0x40 | (headerLength >>> 2)
  dst[offset + 1] = tos
  dst[offset + 2] = totalLength >>> 8
  dst[offset + 3] = totalLength & 255
  dst[offset + 4] = id >>> 8
  dst[offset + 5] = id & 255
  dst[offset + 6] = flagsAndOffset >>> 8
  dst[offset + 7] = flagsAndOffset & 255
  dst[offset + 8] = ttl
  dst[offset + 9] = protocol
  dst[offset + 10] = 0
  dst[offset + 11] = 0
  writeIPv4(dst, offset + 12, srcIp)
  writeIPv4(dst, offset + 16, dstIp)
  if (options !== undefined) {
    dst.set(options, offset + IPV4_HEADER_LENGTH)
    dst.fill(0, offset + IPV4_HEADER_LENGTH + options.length, offset + headerLength)
  }
  const checksum = ~checksumPartial(dst, offset, offset + headerLength) & 0xffff
  dst[offset + 10] = checksum >>> 8
  dst[offset + 11] = checksum & 255
  return headerLength
}

/** Total frame length buildUdpFrame/writeUdpFrame produce for `spec`. */
export function udpFrameLength(spec: UdpSpec): number {
  return (
    ethernetHeaderLength(spec) +
    IPV4_HEADER_LENGTH +
    optionsLength('IPv4 options', spec.options) +
    (isNonFirstFragment(spec) ? 0 : UDP_HEADER_LENGTH) +
    spec.payload.length
  )
}

function ensureRoom(dst: Uint8Array, offset: number, length: number, what: string): void {
  if (!Number.isInteger(offset) || offset < 0 || offset + length > dst.length) {
    throw new UsageError(
      `${what} of ${length} bytes does not fit at offset ${offset} of a ${dst.length}-byte buffer`,
      { op: 'build frame', hint: 'use a larger frame size or a smaller payload' },
    )
  }
}

/**
 * Writes Ethernet+IPv4+UDP with correct IPv4 and UDP checksums into dst at offset (e.g. straight into
 * UMEM); returns the frame length. Allocates nothing.
 */
export function writeUdpFrame(dst: Uint8Array, offset: number, spec: UdpSpec): number {
  checkUint('source port', spec.srcPort, 0xffff)
  checkUint('destination port', spec.dstPort, 0xffff)
  const payload = spec.payload
  const frameLength = udpFrameLength(spec)
  ensureRoom(dst, offset, frameLength, 'UDP frame')
  const srcIp = parseIPv4(spec.srcIp)
  const dstIp = parseIPv4(spec.dstIp)
  const l3 = writeEthernetHeader(dst, offset, spec, EtherType.IPv4)
  if (isNonFirstFragment(spec)) {
    const ipLength = writeIPv4HeaderWith(dst, l3, spec, IpProtocol.UDP, payload.length, srcIp, dstIp, spec.options)
    dst.set(payload, l3 + ipLength)
    return frameLength
  }
  const udpLength = UDP_HEADER_LENGTH + payload.length
  const l4 = l3 + writeIPv4HeaderWith(dst, l3, spec, IpProtocol.UDP, udpLength, srcIp, dstIp, spec.options)
  dst[l4] = spec.srcPort >>> 8
  dst[l4 + 1] = spec.srcPort & 255
  dst[l4 + 2] = spec.dstPort >>> 8
  dst[l4 + 3] = spec.dstPort & 255
  dst[l4 + 4] = udpLength >>> 8
  dst[l4 + 5] = udpLength & 255
  dst[l4 + 6] = 0
  dst[l4 + 7] = 0
  dst.set(payload, l4 + UDP_HEADER_LENGTH)
  if (spec.udpChecksum !== false) {
    const pseudo = ipv4PseudoHeaderSum(srcIp, dstIp, IpProtocol.UDP, udpLength)
    const checksum = ~checksumPartial(dst, l4, l4 + udpLength, pseudo) & 0xffff || 0xffff
    dst[l4 + 6] = checksum >>> 8
    dst[l4 + 7] = checksum & 255
  }
  return frameLength
}

/** Ethernet+IPv4+UDP frame with correct IPv4 and UDP checksums. */
export function buildUdpFrame(spec: UdpSpec): Buffer {
  const frame = Buffer.alloc(udpFrameLength(spec))
  writeUdpFrame(frame, 0, spec)
  return frame
}

/** Total frame length buildTcpFrame/writeTcpFrame produce for `spec`. */
export function tcpFrameLength(spec: TcpSpec): number {
  return (
    ethernetHeaderLength(spec) +
    IPV4_HEADER_LENGTH +
    optionsLength('IPv4 options', spec.ipOptions) +
    (isNonFirstFragment(spec) ? 0 : TCP_HEADER_LENGTH + optionsLength('TCP options', spec.options)) +
    (spec.payload?.length ?? 0)
  )
}

/** Writes Ethernet+IPv4+TCP with correct checksums into dst at offset; returns the frame length. */
export function writeTcpFrame(dst: Uint8Array, offset: number, spec: TcpSpec): number {
  checkUint('source port', spec.srcPort, 0xffff)
  checkUint('destination port', spec.dstPort, 0xffff)
  checkUint('TCP flags', spec.flags, 0xff)
  checkUint('TCP window', spec.window, 0xffff)
  const urgentPointer = spec.urgentPointer ?? 0
  checkUint('TCP urgent pointer', urgentPointer, 0xffff)
  if (!Number.isInteger(spec.seq) || !Number.isInteger(spec.ack)) {
    throw invalid('TCP sequence/acknowledgement number', [spec.seq, spec.ack], 'integers (taken mod 2^32)')
  }
  const payload = spec.payload ?? noPayload
  const frameLength = tcpFrameLength(spec)
  ensureRoom(dst, offset, frameLength, 'TCP frame')
  const srcIp = parseIPv4(spec.srcIp)
  const dstIp = parseIPv4(spec.dstIp)
  const l3 = writeEthernetHeader(dst, offset, spec, EtherType.IPv4)
  if (isNonFirstFragment(spec)) {
    const ipLength = writeIPv4HeaderWith(dst, l3, spec, IpProtocol.TCP, payload.length, srcIp, dstIp, spec.ipOptions)
    dst.set(payload, l3 + ipLength)
    return frameLength
  }
  const tcpHeaderLength = TCP_HEADER_LENGTH + optionsLength('TCP options', spec.options)
  const tcpLength = tcpHeaderLength + payload.length
  const l4 = l3 + writeIPv4HeaderWith(dst, l3, spec, IpProtocol.TCP, tcpLength, srcIp, dstIp, spec.ipOptions)
  const seq = spec.seq >>> 0
  const ack = spec.ack >>> 0
  dst[l4] = spec.srcPort >>> 8
  dst[l4 + 1] = spec.srcPort & 255
  dst[l4 + 2] = spec.dstPort >>> 8
  dst[l4 + 3] = spec.dstPort & 255
  dst[l4 + 4] = seq >>> 24
  dst[l4 + 5] = (seq >>> 16) & 255
  dst[l4 + 6] = (seq >>> 8) & 255
  dst[l4 + 7] = seq & 255
  dst[l4 + 8] = ack >>> 24
  dst[l4 + 9] = (ack >>> 16) & 255
  dst[l4 + 10] = (ack >>> 8) & 255
  dst[l4 + 11] = ack & 255
  dst[l4 + 12] = (tcpHeaderLength >>> 2) << 4
  dst[l4 + 13] = spec.flags
  dst[l4 + 14] = spec.window >>> 8
  dst[l4 + 15] = spec.window & 255
  dst[l4 + 16] = 0
  dst[l4 + 17] = 0
  dst[l4 + 18] = urgentPointer >>> 8
  dst[l4 + 19] = urgentPointer & 255
  if (spec.options !== undefined) {
    dst.set(spec.options, l4 + TCP_HEADER_LENGTH)
    dst.fill(0, l4 + TCP_HEADER_LENGTH + spec.options.length, l4 + tcpHeaderLength)
  }
  dst.set(payload, l4 + tcpHeaderLength)
  const pseudo = ipv4PseudoHeaderSum(srcIp, dstIp, IpProtocol.TCP, tcpLength)
  const checksum = ~checksumPartial(dst, l4, l4 + tcpLength, pseudo) & 0xffff
  dst[l4 + 16] = checksum >>> 8
  dst[l4 + 17] = checksum & 255
  return frameLength
}

/** Ethernet+IPv4+TCP frame with correct IPv4 and TCP checksums. */
export function buildTcpFrame(spec: TcpSpec): Buffer {
  const frame = Buffer.alloc(tcpFrameLength(spec))
  writeTcpFrame(frame, 0, spec)
  return frame
}

/** Ethernet+IPv6+UDP frame with a correct (mandatory) UDP checksum. */
export function buildUdp6Frame(spec: Udp6Spec): Buffer {
  checkUint('source port', spec.srcPort, 0xffff)
  checkUint('destination port', spec.dstPort, 0xffff)
  const hopLimit = spec.hopLimit ?? 64
  const trafficClass = spec.trafficClass ?? 0
  const flowLabel = spec.flowLabel ?? 0
  checkUint('hop limit', hopLimit, 255)
  checkUint('traffic class', trafficClass, 255)
  checkUint('flow label', flowLabel, 0xfffff)
  const src = parseIPv6(spec.srcIp)
  const dstIp = parseIPv6(spec.dstIp)
  const udpLength = UDP_HEADER_LENGTH + spec.payload.length
  if (udpLength > 0xffff) throw invalid('IPv6 payload length', udpLength, 'at most 65535 bytes (no jumbograms)')
  const frame = Buffer.alloc(ethernetHeaderLength(spec) + IPV6_HEADER_LENGTH + udpLength)
  const l3 = writeEthernetHeader(frame, 0, spec, EtherType.IPv6)
  frame.writeUInt32BE(((6 << 28) | (trafficClass << 20) | flowLabel) >>> 0, l3)
  frame.writeUInt16BE(udpLength, l3 + 4)
  frame[l3 + 6] = IpProtocol.UDP
  frame[l3 + 7] = hopLimit
  src.copy(frame, l3 + 8)
  dstIp.copy(frame, l3 + 24)
  const l4 = l3 + IPV6_HEADER_LENGTH
  frame.writeUInt16BE(spec.srcPort, l4)
  frame.writeUInt16BE(spec.dstPort, l4 + 2)
  frame.writeUInt16BE(udpLength, l4 + 4)
  frame.set(spec.payload, l4 + UDP_HEADER_LENGTH)
  const pseudo = ipv6PseudoHeaderSum(frame, l3 + 8, l3 + 24, IpProtocol.UDP, udpLength)
  frame.writeUInt16BE(~checksumPartial(frame, l4, l4 + udpLength, pseudo) & 0xffff || 0xffff, l4 + 6)
  return frame
}

/** Ethernet ARP request or reply for IPv4 over Ethernet (42 bytes without VLANs, not padded). */
export function buildArpFrame(spec: ArpSpec): Buffer {
  const dstMac = spec.dstMac ?? (spec.op === 'request' ? 'ff:ff:ff:ff:ff:ff' : spec.targetMac)
  const frameSpec: FrameSpec = { srcMac: spec.senderMac, dstMac }
  if (spec.vlans !== undefined) frameSpec.vlans = spec.vlans
  const frame = Buffer.alloc(ethernetHeaderLength(frameSpec) + ARP_LENGTH)
  const arp = writeEthernetHeader(frame, 0, frameSpec, EtherType.ARP)
  frame.writeUInt16BE(1, arp) // hardware type: Ethernet
  frame.writeUInt16BE(EtherType.IPv4, arp + 2)
  frame[arp + 4] = 6
  frame[arp + 5] = 4
  if (spec.op !== 'request' && spec.op !== 'reply') throw invalid('ARP op', spec.op, "'request' or 'reply'")
  frame.writeUInt16BE(spec.op === 'request' ? 1 : 2, arp + 6)
  writeMacTo(frame, arp + 8, spec.senderMac)
  writeIPv4(frame, arp + 14, parseIPv4(spec.senderIp))
  writeMacTo(frame, arp + 18, spec.targetMac)
  writeIPv4(frame, arp + 24, parseIPv4(spec.targetIp))
  return frame
}

/**
 * Precomputed Ethernet+IPv4+UDP headers for sending many datagrams of one flow from a hot path:
 * `write` copies headers and payload into dst and fixes lengths and both checksums incrementally.
 * Allocates nothing per call.
 */
export class UdpFrameTemplate {
  /** Headers with zero lengths and checksums. */
  readonly header: Buffer
  /** Offset of the payload from the start of the frame (= header length). */
  readonly payloadOffset: number
  readonly l3Offset: number
  readonly l4Offset: number
  private readonly ipSumWithoutLengthAndId: number
  private readonly udpSumWithoutLength: number
  private readonly udpChecksum: boolean
  private readonly maxPayload: number
  private readonly defaultIpId: number

  constructor(spec: Omit<UdpSpec, 'payload'> & { payload?: Uint8Array }) {
    if (isNonFirstFragment(spec)) {
      throw invalid('fragment offset', spec.fragmentOffset, '0 for a UDP template (non-first fragments carry no UDP header)')
    }
    const header = buildUdpFrame({ ...spec, id: 0, payload: noPayload })
    this.l3Offset = ethernetHeaderLength(spec)
    const ipHeaderLength = (header[this.l3Offset]! & 0x0f) * 4
    this.l4Offset = this.l3Offset + ipHeaderLength
    this.payloadOffset = this.l4Offset + UDP_HEADER_LENGTH
    this.maxPayload = 0xffff - ipHeaderLength - UDP_HEADER_LENGTH
    header.fill(0, this.l3Offset + 2, this.l3Offset + 4) // total length
    header.fill(0, this.l3Offset + 10, this.l3Offset + 12) // header checksum
    header.fill(0, this.l4Offset + 4, this.l4Offset + 8) // UDP length and checksum
    this.header = header
    this.ipSumWithoutLengthAndId = checksumPartial(header, this.l3Offset, this.l4Offset)
    this.udpSumWithoutLength = checksumPartial(
      header,
      this.l4Offset,
      this.payloadOffset,
      ipv4PseudoHeaderSum(parseIPv4(spec.srcIp), parseIPv4(spec.dstIp), IpProtocol.UDP, 0),
    )
    this.udpChecksum = spec.udpChecksum !== false
    this.defaultIpId = spec.id ?? 0
    checkUint('IPv4 id', this.defaultIpId, 0xffff)
  }

  /** Frame length for a payload of `payloadLength` bytes. */
  frameLength(payloadLength: number): number {
    return this.payloadOffset + payloadLength
  }

  /** Writes the whole frame (headers + payload) at offset; returns its length. */
  write(dst: Uint8Array, offset: number, payload: Uint8Array, ipId = this.defaultIpId): number {
    ensureRoom(dst, offset, this.payloadOffset + payload.length, 'UDP frame')
    dst.set(payload, offset + this.payloadOffset)
    return this.writeHeaders(dst, offset, payload.length, ipId)
  }

  /**
   * Writes the headers at offset for a payload already in place at offset + payloadOffset (e.g. a
   * sequence number patched into a UMEM frame); returns the frame length.
   */
  writeHeaders(dst: Uint8Array, offset: number, payloadLength: number, ipId = this.defaultIpId): number {
    if (!Number.isInteger(payloadLength) || payloadLength < 0 || payloadLength > this.maxPayload) {
      throw invalid('UDP payload length', payloadLength, `0..${this.maxPayload}`)
    }
    const frameLength = this.payloadOffset + payloadLength
    ensureRoom(dst, offset, frameLength, 'UDP frame')
    dst.set(this.header, offset)
    const l3 = offset + this.l3Offset
    const l4 = offset + this.l4Offset
    const totalLength = frameLength - this.l3Offset
    const udpLength = UDP_HEADER_LENGTH + payloadLength
    const id = ipId & 0xffff
    dst[l3 + 2] = totalLength >>> 8
    dst[l3 + 3] = totalLength & 255
    dst[l3 + 4] = id >>> 8
    dst[l3 + 5] = id & 255
    const ipChecksum = ~foldChecksum(this.ipSumWithoutLengthAndId + totalLength + id) & 0xffff
    dst[l3 + 10] = ipChecksum >>> 8
    dst[l3 + 11] = ipChecksum & 255
    dst[l4 + 4] = udpLength >>> 8
    dst[l4 + 5] = udpLength & 255
    if (this.udpChecksum) {
      // The UDP length counts twice: once in the pseudo-header, once in the UDP header.
      const sum = checksumPartial(dst, l4 + UDP_HEADER_LENGTH, l4 + udpLength, this.udpSumWithoutLength + 2 * udpLength)
      const udpChecksum = ~sum & 0xffff || 0xffff
      dst[l4 + 6] = udpChecksum >>> 8
      dst[l4 + 7] = udpChecksum & 255
    }
    return frameLength
  }
}

/** A reusable header template for many datagrams of one UDP flow (see UdpFrameTemplate). */
export function udpFrameTemplate(spec: Omit<UdpSpec, 'payload'> & { payload?: Uint8Array }): UdpFrameTemplate {
  return new UdpFrameTemplate(spec)
}
