import { closeSync, openSync, readFileSync, writeSync } from 'node:fs'
import { KbxError, SystemError, UsageError } from '@kbx/errors'

/** Link types of pcap and pcapng (tcpdump.org/linktypes) that kbx reads. */
export const LINKTYPE_ETHERNET = 1
export const LINKTYPE_RAW = 101
export const LINKTYPE_LINUX_SLL = 113
export const LINKTYPE_IPV4 = 228
export const LINKTYPE_LINUX_SLL2 = 276

const MAGIC_MICROSECONDS = 0xa1b2c3d4
const MAGIC_NANOSECONDS = 0xa1b23c4d
const GLOBAL_HEADER_LENGTH = 24
const RECORD_HEADER_LENGTH = 16

export interface PcapPacket {
  /** Capture time in nanoseconds since the Unix epoch. */
  tsNs: bigint
  data: Buffer
  /** Length on the wire; larger than data.length when the capture was cut at the snap length. */
  originalLength: number
}

export interface PcapFile {
  linkType: number
  nanosecond: boolean
  littleEndian: boolean
  snapLength: number
  packets: PcapPacket[]
  /** The file ended in the middle of a packet record (that record is not in `packets`). */
  truncated: boolean
}

function systemError(op: string, err: unknown, hint?: string): SystemError {
  const errno = (err as NodeJS.ErrnoException | undefined)?.errno
  return new SystemError(op, typeof errno === 'number' ? errno : 5 /* EIO */, {
    cause: err,
    ...(hint === undefined ? {} : { hint }),
  })
}

/** Parses classic libpcap data (µs or ns timestamps, either byte order). */
export function parsePcap(bytes: Buffer, source = 'pcap data'): PcapFile {
  const notPcap = (why: string): KbxError =>
    new KbxError(`${source} is not a classic pcap file: ${why}`, {
      op: 'read pcap',
      hint: 'pcapng is not supported; convert it with `editcap -F pcap IN OUT`',
    })
  if (bytes.length < GLOBAL_HEADER_LENGTH) throw notPcap(`only ${bytes.length} bytes`)
  let littleEndian: boolean
  let nanosecond: boolean
  const magicLE = bytes.readUInt32LE(0)
  const magicBE = bytes.readUInt32BE(0)
  if (magicLE === MAGIC_MICROSECONDS || magicLE === MAGIC_NANOSECONDS) {
    littleEndian = true
    nanosecond = magicLE === MAGIC_NANOSECONDS
  } else if (magicBE === MAGIC_MICROSECONDS || magicBE === MAGIC_NANOSECONDS) {
    littleEndian = false
    nanosecond = magicBE === MAGIC_NANOSECONDS
  } else {
    throw notPcap(`unknown magic 0x${magicBE.toString(16).padStart(8, '0')}`)
  }
  const u32 = littleEndian ? (o: number) => bytes.readUInt32LE(o) : (o: number) => bytes.readUInt32BE(o)
  const u16 = littleEndian ? (o: number) => bytes.readUInt16LE(o) : (o: number) => bytes.readUInt16BE(o)
  const major = u16(4)
  if (major !== 2) throw notPcap(`version ${major}.${u16(6)}`)
  const snapLength = u32(16)
  // The top four bits of the link-type field carry FCS information.
  const linkType = u32(20) & 0x0fffffff
  const fractionScale = nanosecond ? 1n : 1000n
  const packets: PcapPacket[] = []
  let p = GLOBAL_HEADER_LENGTH
  let truncated = false
  while (p < bytes.length) {
    if (p + RECORD_HEADER_LENGTH > bytes.length) {
      truncated = true
      break
    }
    const seconds = u32(p)
    const fraction = u32(p + 4)
    const includedLength = u32(p + 8)
    const originalLength = u32(p + 12)
    const start = p + RECORD_HEADER_LENGTH
    if (start + includedLength > bytes.length) {
      truncated = true
      break
    }
    packets.push({
      tsNs: BigInt(seconds) * 1_000_000_000n + BigInt(fraction) * fractionScale,
      data: Buffer.from(bytes.subarray(start, start + includedLength)),
      originalLength,
    })
    p = start + includedLength
  }
  return { linkType, nanosecond, littleEndian, snapLength, packets, truncated }
}

/** Reads a classic libpcap file (µs or ns timestamps, either byte order). */
export function readPcap(path: string): PcapFile {
  let bytes: Buffer
  try {
    bytes = readFileSync(path)
  } catch (err) {
    throw systemError(`read pcap file ${path}`, err)
  }
  return parsePcap(bytes, path)
}

export interface PcapWriterOptions {
  /** Nanosecond timestamps (magic 0xa1b23c4d); default false (microseconds). */
  nanosecond?: boolean
  /** Longer packets are cut to this many bytes (original length kept). Default 262144. */
  snapLength?: number
  /** Default 1 (Ethernet). */
  linkType?: number
}

/** Writes a classic little-endian libpcap file; records are buffered and written in blocks. */
export class PcapWriter {
  readonly path: string
  readonly nanosecond: boolean
  readonly snapLength: number
  private fd: number | undefined
  private readonly buffer = Buffer.alloc(1 << 16)
  private used = 0
  packetCount = 0

  private constructor(path: string, fd: number, options: Required<PcapWriterOptions>) {
    this.path = path
    this.fd = fd
    this.nanosecond = options.nanosecond
    this.snapLength = options.snapLength
    const header = Buffer.alloc(GLOBAL_HEADER_LENGTH)
    header.writeUInt32LE(options.nanosecond ? MAGIC_NANOSECONDS : MAGIC_MICROSECONDS, 0)
    header.writeUInt16LE(2, 4)
    header.writeUInt16LE(4, 6)
    header.writeInt32LE(0, 8) // thiszone
    header.writeUInt32LE(0, 12) // sigfigs
    header.writeUInt32LE(options.snapLength, 16)
    header.writeUInt32LE(options.linkType, 20)
    this.append(header)
  }

  /** Creates (truncates) `path` and writes the file header. */
  static open(path: string, options: PcapWriterOptions = {}): PcapWriter {
    const snapLength = options.snapLength ?? 262144
    if (!Number.isInteger(snapLength) || snapLength < 1 || snapLength > 0x7fffffff) {
      throw new UsageError(`invalid pcap snap length ${snapLength}`, { op: 'open pcap writer' })
    }
    let fd: number
    try {
      fd = openSync(path, 'w')
    } catch (err) {
      throw systemError(`create pcap file ${path}`, err)
    }
    return new PcapWriter(path, fd, {
      nanosecond: options.nanosecond ?? false,
      snapLength,
      linkType: options.linkType ?? LINKTYPE_ETHERNET,
    })
  }

  /** Appends one packet captured at `tsNs` (ns since the Unix epoch). */
  write(data: Uint8Array, tsNs: bigint): void {
    if (this.fd === undefined) {
      throw new UsageError(`pcap writer for ${this.path} is closed`, { op: 'write pcap record' })
    }
    if (tsNs < 0n) throw new UsageError(`negative pcap timestamp ${tsNs}`, { op: 'write pcap record' })
    const seconds = tsNs / 1_000_000_000n
    const nanoseconds = Number(tsNs % 1_000_000_000n)
    if (seconds > 0xffffffffn) throw new UsageError(`pcap timestamp ${tsNs} ns is past 2106`, { op: 'write pcap record' })
    const includedLength = Math.min(data.length, this.snapLength)
    if (this.used + RECORD_HEADER_LENGTH > this.buffer.length) this.flush()
    const b = this.buffer
    b.writeUInt32LE(Number(seconds), this.used)
    b.writeUInt32LE(this.nanosecond ? nanoseconds : Math.floor(nanoseconds / 1000), this.used + 4)
    b.writeUInt32LE(includedLength, this.used + 8)
    b.writeUInt32LE(data.length, this.used + 12)
    this.used += RECORD_HEADER_LENGTH
    this.append(data.subarray(0, includedLength))
    this.packetCount++
  }

  /**
   * Appends bytes [start, end) of `source` captured at seconds + nanoseconds since the Unix epoch, without
   * allocating (a recorder of TX batches calls it per frame).
   */
  writeSlice(source: Buffer, start: number, end: number, seconds: number, nanoseconds: number): void {
    if (this.fd === undefined) throw new UsageError(`pcap writer for ${this.path} is closed`, { op: 'write pcap record' })
    const includedLength = Math.min(end - start, this.snapLength)
    if (this.used + RECORD_HEADER_LENGTH + includedLength > this.buffer.length) this.flush()
    const b = this.buffer
    b.writeUInt32LE(seconds, this.used)
    b.writeUInt32LE(this.nanosecond ? nanoseconds : Math.floor(nanoseconds / 1000), this.used + 4)
    b.writeUInt32LE(includedLength, this.used + 8)
    b.writeUInt32LE(end - start, this.used + 12)
    this.used += RECORD_HEADER_LENGTH
    if (includedLength > b.length - this.used) {
      this.writeOut(source.subarray(start, start + includedLength))
    } else {
      source.copy(b, this.used, start, start + includedLength)
      this.used += includedLength
    }
    this.packetCount++
  }

  private append(data: Uint8Array): void {
    if (this.used + data.length > this.buffer.length) {
      this.flush()
      if (data.length > this.buffer.length) {
        this.writeOut(data)
        return
      }
    }
    this.buffer.set(data, this.used)
    this.used += data.length
  }

  private writeOut(data: Uint8Array): void {
    let written = 0
    while (written < data.length) {
      try {
        written += writeSync(this.fd!, data, written, data.length - written)
      } catch (err) {
        throw systemError(`write pcap file ${this.path}`, err, 'check free disk space')
      }
    }
  }

  /** Writes buffered records to the file. */
  flush(): void {
    if (this.fd === undefined || this.used === 0) return
    this.writeOut(this.buffer.subarray(0, this.used))
    this.used = 0
  }

  /** Flushes and closes the file; safe to call twice. */
  close(): void {
    if (this.fd === undefined) return
    try {
      this.flush()
    } finally {
      closeSync(this.fd)
      this.fd = undefined
    }
  }
}
