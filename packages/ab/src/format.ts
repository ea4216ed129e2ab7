// The feed formats on the TypeScript side (feeder, tests, pcap readers). The C side is
// bpf/include/ab_format.h; both must agree byte for byte: the offsets come from the koffi mirrors of its
// structs (native.ts, checked against the header by native.unit.test.ts), and format.unit.test.ts checks the bytes.
import { UsageError } from '@kbx/errors'
import { koffi } from '@kbx/ffi'
import { AbMoldHeader, AbOptiq } from './native.js'

export type FeedFormat = 'optiq' | 'moldudp64'

export const FEED_FORMATS: readonly FeedFormat[] = ['optiq', 'moldudp64']

/** enum ab_format */
export const FORMAT_CODE: Record<FeedFormat, number> = { optiq: 0, moldudp64: 1 }

export const OPTIQ_SIZE = koffi.sizeof(AbOptiq)
export const MOLD_HEADER_SIZE = koffi.sizeof(AbMoldHeader)
export const MOLD_HEARTBEAT = 0
export const MOLD_END_OF_SESSION = 0xffff

const OPTIQ = Object.fromEntries(Object.entries(koffi.introspect(AbOptiq).members ?? {}).map(([name, m]) => [name, m.offset])) as Record<
  'version' | 'optiq_length' | 'service_id' | 'session_id' | 'sequence_number' | 'timestamp' | 'message_type' | 'quantity' | 'price' | 'order_id',
  number
>
const MOLD = {
  session: koffi.offsetof(AbMoldHeader, 'session'),
  sequence: koffi.offsetof(AbMoldHeader, 'sequence'),
  count: koffi.offsetof(AbMoldHeader, 'count'),
}

/** Sequence numbers of a format wrap at 2^bits. */
export function sequenceBits(format: FeedFormat): 32 | 64 {
  return format === 'optiq' ? 32 : 64
}

/** One optiq record; every field little-endian on the wire. */
export interface OptiqMessage {
  version?: number
  serviceId?: number
  sessionId: number
  sequence: number
  timestamp?: bigint
  messageType?: number
  quantity?: number
  price?: number
  orderId?: bigint
}

export function encodeOptiq(m: OptiqMessage, out: Buffer = Buffer.alloc(OPTIQ_SIZE), offset = 0): Buffer {
  out.writeUInt8(m.version ?? 1, offset + OPTIQ.version)
  out.writeUInt8(OPTIQ_SIZE, offset + OPTIQ.optiq_length)
  out.writeUInt16LE(m.serviceId ?? 0, offset + OPTIQ.service_id)
  out.writeUInt32LE(m.sessionId >>> 0, offset + OPTIQ.session_id)
  out.writeUInt32LE(m.sequence >>> 0, offset + OPTIQ.sequence_number)
  out.writeBigUInt64LE(m.timestamp ?? 0n, offset + OPTIQ.timestamp)
  out.writeUInt16LE(m.messageType ?? 0, offset + OPTIQ.message_type)
  out.writeUInt16LE(m.quantity ?? 0, offset + OPTIQ.quantity)
  out.writeUInt32LE(m.price ?? 0, offset + OPTIQ.price)
  out.writeBigUInt64LE(m.orderId ?? 0n, offset + OPTIQ.order_id)
  return out
}

/** A MoldUDP64 downstream packet: session (≤ 10 ASCII chars, space padded), first sequence, messages. */
export interface MoldPacket {
  session: string
  sequence: bigint
  /** Message bodies; count = messages.length. A heartbeat has none; endOfSession sets count 0xFFFF. */
  messages: Uint8Array[]
  endOfSession?: boolean
}

export function encodeMold(p: MoldPacket): Buffer {
  const body = p.messages.reduce((n, m) => n + 2 + m.length, 0)
  const out = Buffer.alloc(MOLD_HEADER_SIZE + body)
  out.write(p.session.padEnd(10, ' ').slice(0, 10), MOLD.session, 'ascii')
  out.writeBigUInt64BE(BigInt.asUintN(64, p.sequence), MOLD.sequence)
  out.writeUInt16BE(p.endOfSession ? MOLD_END_OF_SESSION : p.messages.length, MOLD.count)
  let at = MOLD_HEADER_SIZE
  for (const m of p.messages) {
    out.writeUInt16BE(m.length, at)
    out.set(m, at + 2)
    at += 2 + m.length
  }
  return out
}

export type Decoded =
  | { kind: 'data'; stream: string; sequence: bigint; count: number }
  | { kind: 'heartbeat' | 'end'; stream: string; sequence: bigint }
  | { kind: 'short' }

/** The (stream, sequence, count) a payload carries, as the arbitrator sees it. Never throws. */
export function decodePayload(format: FeedFormat, payload: Uint8Array): Decoded {
  const b = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)
  if (format === 'optiq') {
    if (b.length < OPTIQ_SIZE) return { kind: 'short' }
    return { kind: 'data', stream: String(b.readUInt32LE(OPTIQ.session_id)), sequence: BigInt(b.readUInt32LE(OPTIQ.sequence_number)), count: 1 }
  }
  if (b.length < MOLD_HEADER_SIZE) return { kind: 'short' }
  const stream = b.toString('ascii', MOLD.session, MOLD.session + 10).trimEnd()
  const sequence = b.readBigUInt64BE(MOLD.sequence)
  const count = b.readUInt16BE(MOLD.count)
  if (count === MOLD_HEARTBEAT) return { kind: 'heartbeat', stream, sequence }
  if (count === MOLD_END_OF_SESSION) return { kind: 'end', stream, sequence }
  return { kind: 'data', stream, sequence, count }
}

/** Sessions a mold stream can go through (ab-feed --restart-every): R + 4 base-36 digits + 5 of the index. */
export const MAX_MOLD_SESSIONS = 36 ** 4

/**
 * Stream names as the native side reports them: optiq session ids in decimal, mold sessions trimmed. A mold
 * stream's session `session` (ab-feed --restart-every starts a new one each time) is S + index for the first,
 * R + session (base 36) + index after.
 */
export function streamName(format: FeedFormat, index: number, session = 0): string {
  if (format === 'optiq') return String(1000 + index)
  if (session === 0) return `S${String(index).padStart(9, '0')}`
  return `R${session.toString(36).toUpperCase().padStart(4, '0')}${String(index).padStart(5, '0')}`
}

/** The end-of-session packet of a mold stream's session: `next` is the number its next message would have had. */
export function encodeEndOfSession(index: number, session: number, next: bigint): Buffer {
  return encodeMold({ session: streamName('moldudp64', index, session), sequence: BigInt.asUintN(64, next), messages: [], endOfSession: true })
}

/** A payload of stream `index` carrying `sequence` (wrapped to the format's width); mold: in session `session`. */
export function encodeFeedPayload(format: FeedFormat, index: number, sequence: bigint, size = 0, session = 0): Buffer {
  if (format === 'optiq') {
    const out = Buffer.alloc(Math.max(OPTIQ_SIZE, size))
    return encodeOptiq({ sessionId: 1000 + index, sequence: Number(BigInt.asUintN(32, sequence)), orderId: sequence }, out)
  }
  const bodySize = Math.max(0, size - MOLD_HEADER_SIZE - 2)
  const body = Buffer.alloc(bodySize)
  return encodeMold({ session: streamName(format, index, session), sequence: BigInt.asUintN(64, sequence), messages: [body] })
}

/**
 * encodeFeedPayload without an allocation per packet: one buffer per stream, built once (again when the
 * stream's session changes) and patched with each sequence number. The buffer returned is only valid until
 * the next call for the same stream (copy it out at once, as a frame template's write does).
 */
export class FeedPayloadWriter {
  private readonly built: ({ session: number; buf: Buffer } | undefined)[] = []

  constructor(
    private readonly format: FeedFormat,
    private readonly size = 0,
  ) {}

  payload(index: number, sequence: bigint, session = 0): Buffer {
    let b = this.built[index]
    if (!b || b.session !== session) {
      b = { session, buf: encodeFeedPayload(this.format, index, 0n, this.size, session) }
      this.built[index] = b
    }
    if (this.format === 'optiq') {
      b.buf.writeUInt32LE(Number(BigInt.asUintN(32, sequence)), OPTIQ.sequence_number)
      b.buf.writeBigUInt64LE(BigInt.asUintN(64, sequence), OPTIQ.order_id)
    } else {
      b.buf.writeBigUInt64BE(BigInt.asUintN(64, sequence), MOLD.sequence)
    }
    return b.buf
  }
}

export function parseFormat(value: string): FeedFormat {
  if ((FEED_FORMATS as readonly string[]).includes(value)) return value as FeedFormat
  throw new UsageError(`--format must be one of ${FEED_FORMATS.join(', ')}, not ${JSON.stringify(value)}`, { op: 'parse --format' })
}
