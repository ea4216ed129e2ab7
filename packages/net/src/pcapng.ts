// pcapng (the format tshark and dumpcap write by default) and a reader of either capture format.
// Blocks read: Section Header (either byte order, several sections), Interface Description (link type,
// if_tsresol, if_tsoffset), Enhanced Packet, Simple Packet and the obsolete Packet block; every other
// block is skipped by its length. Bytes come from files users hand us: every length is checked against
// what is left before it is used, and a malformed file is a UsageError naming the block and its offset.
import { readFileSync } from 'node:fs'
import { KbxError, SystemError, UsageError } from '@kbx/errors'
import { parsePcap, type PcapFile } from './pcap.js'

const BLOCK_SECTION_HEADER = 0x0a0d0d0a
const BLOCK_INTERFACE = 0x00000001
const BLOCK_PACKET_OBSOLETE = 0x00000002
const BLOCK_SIMPLE_PACKET = 0x00000003
const BLOCK_ENHANCED_PACKET = 0x00000006
const BYTE_ORDER_MAGIC = 0x1a2b3c4d
const OPTION_END = 0
const OPTION_IF_TSRESOL = 9
const OPTION_IF_TSOFFSET = 14

export interface CapturePacket {
  /** Capture time in nanoseconds since the Unix epoch. */
  tsNs: bigint
  data: Buffer
  /** Length on the wire; larger than data.length when the capture was cut at the snap length. */
  originalLength: number
  /** LINKTYPE_* of the interface it was captured on (1 = Ethernet). */
  linkType: number
  /** pcapng: index of its interface in its section (0 for classic pcap). */
  interfaceId: number
}

export interface CaptureFile {
  format: 'pcap' | 'pcapng'
  packets: CapturePacket[]
  /** The file ended in the middle of a block or record (what came before it is in `packets`). */
  truncated: boolean
}

interface Interface {
  linkType: number
  snapLength: number
  /** Timestamp units per second: 10^n or 2^n. */
  unitsPerSecond: bigint
  offsetSeconds: bigint
}

/** Parses pcapng data; a malformed block is a UsageError, a file cut short sets `truncated`. */
export function parsePcapng(bytes: Buffer, source = 'pcapng data'): CaptureFile {
  const corrupt = (offset: number, why: string): UsageError =>
    new UsageError(`${source} is not a valid pcapng file: ${why} (block at byte ${offset})`, {
      op: 'read pcapng',
      hint: 'check the capture with `capinfos FILE`; a file cut short still reads up to its last whole block',
    })
  const packets: CapturePacket[] = []
  let littleEndian = true
  let interfaces: Interface[] = []
  let p = 0
  const u16 = (o: number) => (littleEndian ? bytes.readUInt16LE(o) : bytes.readUInt16BE(o))
  const u32 = (o: number) => (littleEndian ? bytes.readUInt32LE(o) : bytes.readUInt32BE(o))
  while (p < bytes.length) {
    if (p + 12 > bytes.length) return { format: 'pcapng', packets, truncated: true }
    const type = bytes.readUInt32LE(p) // the section header's type reads the same either way
    if (type === BLOCK_SECTION_HEADER) {
      if (p + 12 > bytes.length) return { format: 'pcapng', packets, truncated: true }
      const magic = bytes.readUInt32LE(p + 8)
      if (magic === BYTE_ORDER_MAGIC) littleEndian = true
      else if (magic === 0x4d3c2b1a) littleEndian = false
      else throw corrupt(p, `unknown byte-order magic 0x${magic.toString(16)}`)
      interfaces = []
    } else if (p === 0) {
      throw corrupt(p, 'it does not start with a section header block')
    }
    const length = u32(p + 4)
    if (length < 12 || length % 4 !== 0) throw corrupt(p, `block length ${length} (at least 12, a multiple of 4)`)
    if (p + length > bytes.length) return { format: 'pcapng', packets, truncated: true }
    if (u32(p + length - 4) !== length) throw corrupt(p, `trailing block length ${u32(p + length - 4)} differs from ${length}`)
    const body = p + 8
    const bodyEnd = p + length - 4
    const needs = (n: number, what: string): void => {
      if (body + n > bodyEnd) throw corrupt(p, `${what} block of ${length} bytes is too short`)
    }
    switch (type === BLOCK_SECTION_HEADER ? type : u32(p)) {
      case BLOCK_SECTION_HEADER: {
        needs(16, 'section header')
        const major = u16(body + 4)
        if (major !== 1) throw corrupt(p, `pcapng version ${major}.${u16(body + 6)}`)
        break
      }
      case BLOCK_INTERFACE: {
        needs(8, 'interface description')
        const iface: Interface = { linkType: u16(body), snapLength: u32(body + 4), unitsPerSecond: 1_000_000n, offsetSeconds: 0n }
        readOptions(body + 8, bodyEnd, (code, at, len) => {
          if (code === OPTION_IF_TSRESOL && len >= 1) {
            const v = bytes[at]!
            const exponent = BigInt(v & 0x7f)
            if ((v & 0x80 ? exponent > 63n : exponent > 18n)) throw corrupt(p, `if_tsresol ${v} is beyond what a 64-bit timestamp can hold`)
            iface.unitsPerSecond = v & 0x80 ? 1n << exponent : 10n ** exponent
          } else if (code === OPTION_IF_TSOFFSET && len >= 8) {
            iface.offsetSeconds = littleEndian ? bytes.readBigInt64LE(at) : bytes.readBigInt64BE(at)
          }
        })
        interfaces.push(iface)
        break
      }
      case BLOCK_ENHANCED_PACKET:
      case BLOCK_PACKET_OBSOLETE: {
        const enhanced = u32(p) === BLOCK_ENHANCED_PACKET
        needs(20, enhanced ? 'enhanced packet' : 'packet')
        const interfaceId = enhanced ? u32(body) : u16(body)
        const iface = interfaces[interfaceId]
        if (!iface) throw corrupt(p, `packet of interface ${interfaceId}, but the section describes ${interfaces.length}`)
        const units = (BigInt(u32(body + 4)) << 32n) | BigInt(u32(body + 8))
        const captured = u32(body + 12)
        if (body + 20 + captured > bodyEnd) throw corrupt(p, `captured length ${captured} runs past the block's end`)
        packets.push({
          tsNs: timestampNs(iface, units),
          data: Buffer.from(bytes.subarray(body + 20, body + 20 + captured)),
          originalLength: u32(body + 16),
          linkType: iface.linkType,
          interfaceId,
        })
        break
      }
      case BLOCK_SIMPLE_PACKET: {
        needs(4, 'simple packet')
        const iface = interfaces[0]
        if (!iface) throw corrupt(p, 'simple packet before any interface description')
        const originalLength = u32(body)
        const captured = Math.min(originalLength, bodyEnd - body - 4, iface.snapLength || Infinity)
        const previous = packets.at(-1)?.tsNs ?? 0n // a simple packet has no timestamp of its own
        packets.push({ tsNs: previous, data: Buffer.from(bytes.subarray(body + 4, body + 4 + captured)), originalLength, linkType: iface.linkType, interfaceId: 0 })
        break
      }
      default:
        break
    }
    p += length
  }
  return { format: 'pcapng', packets, truncated: false }

  function readOptions(from: number, end: number, each: (code: number, at: number, len: number) => void): void {
    for (let o = from; o + 4 <= end; ) {
      const code = u16(o)
      const len = u16(o + 2)
      if (code === OPTION_END) return
      if (o + 4 + len > end) throw corrupt(p, `option ${code} of ${len} bytes runs past the block's end`)
      each(code, o + 4, len)
      o += 4 + ((len + 3) & ~3)
    }
  }
}

function timestampNs(iface: Interface, units: bigint): bigint {
  const whole = units / iface.unitsPerSecond
  const fraction = units % iface.unitsPerSecond
  return (whole + iface.offsetSeconds) * 1_000_000_000n + (fraction * 1_000_000_000n) / iface.unitsPerSecond
}

/** Classic pcap or pcapng, told apart by the first four bytes. */
export function parseCapture(bytes: Buffer, source = 'capture'): CaptureFile {
  if (bytes.length >= 4 && bytes.readUInt32LE(0) === BLOCK_SECTION_HEADER) return parsePcapng(bytes, source)
  let pcap: PcapFile
  try {
    pcap = parsePcap(bytes, source)
  } catch (err) {
    if (!(err instanceof KbxError)) throw err
    throw new UsageError(`${source} is neither pcap nor pcapng: ${err.message.replace(/^.*?: /, '')}`, { op: 'read capture', cause: err })
  }
  return {
    format: 'pcap',
    truncated: pcap.truncated,
    packets: pcap.packets.map((packet) => ({ ...packet, linkType: pcap.linkType, interfaceId: 0 })),
  }
}

/** Reads a classic pcap or pcapng file (tcpdump, tshark, dumpcap, PcapWriter). */
export function readCapture(path: string): CaptureFile {
  let bytes: Buffer
  try {
    bytes = readFileSync(path)
  } catch (err) {
    const errno = (err as NodeJS.ErrnoException | undefined)?.errno
    throw new SystemError(`read capture ${path}`, typeof errno === 'number' ? errno : 5, { cause: err })
  }
  return parseCapture(bytes, path)
}
