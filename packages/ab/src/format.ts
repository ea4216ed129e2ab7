// The feed formats on the TypeScript side (feeder, tests, pcap readers). The C side is
// bpf/include/ab_format.h; both must agree byte for byte (format.test.ts checks the layouts).
import { UsageError } from '@kbx/errors'

export type FeedFormat = 'optiq' | 'moldudp64'

export const FEED_FORMATS: readonly FeedFormat[] = ['optiq', 'moldudp64']

/** enum ab_format */
export const FORMAT_CODE: Record<FeedFormat, number> = { optiq: 0, moldudp64: 1 }

export const OPTIQ_SIZE = 36
export const MOLD_HEADER_SIZE = 20
export const MOLD_HEARTBEAT = 0
export const MOLD_END_OF_SESSION = 0xffff

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
  out.writeUInt8(m.version ?? 1, offset)
  out.writeUInt8(OPTIQ_SIZE, offset + 1)
  out.writeUInt16LE(m.serviceId ?? 0, offset + 2)
  out.writeUInt32LE(m.sessionId >>> 0, offset + 4)
  out.writeUInt32LE(m.sequence >>> 0, offset + 8)
  out.writeBigUInt64LE(m.timestamp ?? 0n, offset + 12)
  out.writeUInt16LE(m.messageType ?? 0, offset + 20)
  out.writeUInt16LE(m.quantity ?? 0, offset + 22)
  out.writeUInt32LE(m.price ?? 0, offset + 24)
  out.writeBigUInt64LE(m.orderId ?? 0n, offset + 28)
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
  out.write(p.session.padEnd(10, ' ').slice(0, 10), 0, 'ascii')
  out.writeBigUInt64BE(BigInt.asUintN(64, p.sequence), 10)
  out.writeUInt16BE(p.endOfSession ? MOLD_END_OF_SESSION : p.messages.length, 18)
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
    return { kind: 'data', stream: String(b.readUInt32LE(4)), sequence: BigInt(b.readUInt32LE(8)), count: 1 }
  }
  if (b.length < MOLD_HEADER_SIZE) return { kind: 'short' }
  const stream = b.toString('ascii', 0, 10).trimEnd()
  const sequence = b.readBigUInt64BE(10)
  const count = b.readUInt16BE(18)
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

export function parseFormat(value: string): FeedFormat {
  if ((FEED_FORMATS as readonly string[]).includes(value)) return value as FeedFormat
  throw new UsageError(`--format must be one of ${FEED_FORMATS.join(', ')}, not ${JSON.stringify(value)}`, { op: 'parse --format' })
}
