// FIX tag=value codec: a framer/parser that works in place over a receive buffer (no per-message
// allocation: field offsets go into preallocated typed arrays) and a writer that builds messages in a
// preallocated buffer with BodyLength(9) and CheckSum(10) filled in.

import { MsgType, Tag } from './tags.js'

export { MsgType, Tag, msgTypeCode } from './tags.js'

export const SOH = 0x01
const EQUALS = 0x3d
const ZERO = 0x30

/** Prices are fixed-point integers: value × PRICE_SCALE (8 decimals). */
export const PRICE_SCALE = 100_000_000
const PRICE_DECIMALS = 8


export type FrameError = 'bad-checksum' | 'bad-body-length' | 'bad-header' | 'too-many-fields' | 'bad-field'

/**
 * One parsed message: field tags and value offsets into the buffer it was parsed from. Valid until
 * the next parse call or until the buffer is overwritten (the parser reuses it).
 */
export class FixMessageView {
  buf: Buffer = Buffer.alloc(0)
  start = 0
  end = 0
  count = 0
  readonly tags: Int32Array
  readonly valueStarts: Int32Array
  readonly valueEnds: Int32Array
  /** MsgType as a small integer code: one byte → its char code, two bytes → (b0 << 8) | b1. */
  msgType = 0

  constructor(maxFields = 256) {
    this.tags = new Int32Array(maxFields)
    this.valueStarts = new Int32Array(maxFields)
    this.valueEnds = new Int32Array(maxFields)
  }

  indexOf(tag: number): number {
    const n = this.count
    const tags = this.tags
    for (let i = 0; i < n; i++) if (tags[i] === tag) return i
    return -1
  }

  has(tag: number): boolean {
    return this.indexOf(tag) >= 0
  }

  /** Non-negative integer value; -1 when absent or not a plain integer. */
  int(tag: number): number {
    const i = this.indexOf(tag)
    if (i < 0) return -1
    return parseUint(this.buf, this.valueStarts[i]!, this.valueEnds[i]!)
  }

  /** Fixed-point price (× PRICE_SCALE); NaN when absent or malformed. */
  price(tag: number): number {
    const i = this.indexOf(tag)
    if (i < 0) return NaN
    return parsePrice(this.buf, this.valueStarts[i]!, this.valueEnds[i]!)
  }

  /** First byte of the value (e.g. 'Y', '0'); -1 when absent. */
  char(tag: number): number {
    const i = this.indexOf(tag)
    if (i < 0 || this.valueEnds[i]! <= this.valueStarts[i]!) return -1
    return this.buf[this.valueStarts[i]!]!
  }

  /** Allocates: for the control path and tests. */
  string(tag: number): string | undefined {
    const i = this.indexOf(tag)
    if (i < 0) return undefined
    return this.buf.toString('latin1', this.valueStarts[i]!, this.valueEnds[i]!)
  }

  /** The whole message (allocates a copy). */
  copy(): Buffer {
    return Buffer.from(this.buf.subarray(this.start, this.end))
  }

  toString(): string {
    return this.buf.toString('latin1', this.start, this.end).replaceAll('\x01', '|')
  }
}


export function parseUint(buf: Uint8Array, start: number, end: number): number {
  if (end <= start || end - start > 15) return -1
  let v = 0
  for (let p = start; p < end; p++) {
    const d = buf[p]! - ZERO
    if (d < 0 || d > 9) return -1
    v = v * 10 + d
  }
  return v
}

/** "-12.345" → -1234500000 (× 1e8). NaN on malformed input or more than 8 decimals. */
export function parsePrice(buf: Uint8Array, start: number, end: number): number {
  let p = start
  let negative = false
  if (p < end && buf[p] === 0x2d) {
    negative = true
    p++
  }
  if (p >= end) return NaN
  let whole = 0
  let digits = 0
  for (; p < end && buf[p] !== 0x2e; p++) {
    const d = buf[p]! - ZERO
    if (d < 0 || d > 9 || ++digits > 8) return NaN
    whole = whole * 10 + d
  }
  let frac = 0
  let decimals = 0
  if (p < end) {
    p++
    for (; p < end; p++) {
      const d = buf[p]! - ZERO
      if (d < 0 || d > 9 || ++decimals > PRICE_DECIMALS) return NaN
      frac = frac * 10 + d
    }
  }
  if (digits === 0 && decimals === 0) return NaN
  for (let i = decimals; i < PRICE_DECIMALS; i++) frac *= 10
  const v = whole * PRICE_SCALE + frac
  return negative ? -v : v
}

export interface ParserCounters {
  messages: number
  garbageBytes: number
  badChecksum: number
  badBodyLength: number
  badHeader: number
}

/**
 * Frames FIX messages out of a byte stream. `push(chunk)` appends received bytes (a message may span
 * any number of chunks); `next()` returns the next valid message view or null when more bytes are
 * needed. Invalid frames (bad checksum, wrong BodyLength, malformed header) and garbage between
 * messages are skipped and counted; `onError` hears about each. What is accepted and rejected is the same
 * as the native framer (native/src/fix_reflex.c), message by message: packages/fix/README.md "Framing rules".
 */
export class FixParser {
  private buf: Buffer
  private head = 0
  private tail = 0
  readonly view: FixMessageView
  readonly counters: ParserCounters = { messages: 0, garbageBytes: 0, badChecksum: 0, badBodyLength: 0, badHeader: 0 }
  onError: ((error: FrameError, offset: number) => void) | undefined

  constructor(options: { capacity?: number; maxFields?: number; maxMessageSize?: number } = {}) {
    this.buf = Buffer.allocUnsafe(options.capacity ?? 1 << 16)
    this.view = new FixMessageView(options.maxFields ?? 256)
    this.maxMessageSize = options.maxMessageSize ?? 1 << 16
  }

  private readonly maxMessageSize: number

  get buffered(): number {
    return this.tail - this.head
  }

  /** A new byte stream (a new connection): what is left unframed of the old one is dropped (counted as garbage). */
  reset(): void {
    this.counters.garbageBytes += this.tail - this.head
    this.head = this.tail = 0
  }

  /** A copy of the bytes received but not yet framed. */
  pendingBytes(): Buffer {
    return Buffer.from(this.buf.subarray(this.head, this.tail))
  }

  push(chunk: Uint8Array): void {
    if (this.tail + chunk.length > this.buf.length) {
      const live = this.tail - this.head
      if (live + chunk.length > this.buf.length) {
        const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, live + chunk.length))
        this.buf.copy(grown, 0, this.head, this.tail)
        this.buf = grown
      } else {
        this.buf.copy(this.buf, 0, this.head, this.tail)
      }
      this.head = 0
      this.tail = live
    }
    this.buf.set(chunk, this.tail)
    this.tail += chunk.length
  }

  /** The next complete, valid message, or null when more bytes are needed. */
  next(): FixMessageView | null {
    for (;;) {
      const r = this.tryFrame()
      if (r === NEED_MORE) {
        if (this.head === this.tail) this.head = this.tail = 0
        return null
      }
      if (r === FRAMED) return this.view
      // an error: the frame at head was dropped; keep scanning
    }
  }

  private skipGarbageTo(p: number): void {
    this.counters.garbageBytes += p - this.head
    this.head = p
  }

  private fail(error: FrameError): number {
    if (error === 'bad-checksum') this.counters.badChecksum++
    else if (error === 'bad-body-length') this.counters.badBodyLength++
    else this.counters.badHeader++
    this.onError?.(error, this.head)
    // resynchronise: drop the leading "8" and look for the next "8=FIX"
    this.head++
    this.counters.garbageBytes++
    return ERROR
  }

  private tryFrame(): number {
    const buf = this.buf
    const tail = this.tail
    // find "8=FIX" (the start of a message); anything before it is garbage
    let p = this.head
    for (; p < tail; p++) {
      if (buf[p] !== 0x38) continue
      if (p + 1 < tail && buf[p + 1] !== EQUALS) continue
      if (p + 2 < tail && buf[p + 2] !== 0x46) continue
      if (p + 3 < tail && buf[p + 3] !== 0x49) continue
      if (p + 4 < tail && buf[p + 4] !== 0x58) continue
      break
    }
    if (p > this.head) this.skipGarbageTo(p)
    if (tail - p < 5) return NEED_MORE
    const start = p
    // BeginString value
    let q = start + 2
    while (q < tail && buf[q] !== SOH) {
      if (q - start > 32) return this.fail('bad-header')
      q++
    }
    if (q >= tail) return NEED_MORE
    q++
    // 9=<len>SOH
    if (tail - q < 2) return NEED_MORE
    if (buf[q] !== 0x39 || buf[q + 1] !== EQUALS) return this.fail('bad-header')
    q += 2
    let bodyLength = 0
    const lenStart = q
    while (q < tail && buf[q] !== SOH) {
      const d = buf[q]! - ZERO
      if (d < 0 || d > 9 || q - lenStart >= 7) return this.fail('bad-header')
      bodyLength = bodyLength * 10 + d
      q++
    }
    if (q >= tail) return NEED_MORE
    if (q === lenStart) return this.fail('bad-header')
    q++
    const bodyStart = q
    const trailer = bodyStart + bodyLength
    if (trailer + 7 - start > this.maxMessageSize) return this.fail('bad-body-length')
    if (tail < trailer + 7) {
      // Not all there yet; but a trailer and the next message's start inside the body already show the
      // declared length is wrong: fail now instead of waiting forever.
      return this.earlyTrailer(bodyStart, tail) ? this.fail('bad-body-length') : NEED_MORE
    }
    if (
      buf[trailer - 1] !== SOH ||
      buf[trailer] !== 0x31 ||
      buf[trailer + 1] !== ZERO ||
      buf[trailer + 2] !== EQUALS ||
      buf[trailer + 6] !== SOH ||
      this.earlyTrailer(bodyStart, trailer)
    ) {
      return this.fail('bad-body-length')
    }
    const declared = parseUint(buf, trailer + 3, trailer + 6)
    let sum = 0
    for (let i = start; i < trailer; i++) sum += buf[i]!
    if (declared !== (sum & 0xff)) return this.fail('bad-checksum')
    if (!this.parseFields(start, bodyStart, trailer)) return this.fail('bad-header')
    const end = trailer + 7
    this.view.buf = buf
    this.view.start = start
    this.view.end = end
    this.head = end
    this.counters.messages++
    return FRAMED
  }

  /** A complete "SOH10=nnnSOH" followed by `8` inside [from, limit): only bytes that have arrived decide,
   * never where they end, so TCP segmentation never changes a verdict (see fix_reflex.c early_trailer). */
  private earlyTrailer(from: number, limit: number): boolean {
    const buf = this.buf
    for (let i = from; i + 8 < limit; i++) {
      if (buf[i] === SOH && buf[i + 1] === 0x31 && buf[i + 2] === ZERO && buf[i + 3] === EQUALS && buf[i + 7] === SOH && buf[i + 8] === 0x38) return true
    }
    return false
  }

  private parseFields(start: number, bodyStart: number, trailer: number): boolean {
    const v = this.view
    const buf = this.buf
    v.buf = buf
    const max = v.tags.length
    let n = 0
    // header fields 8 and 9
    v.tags[0] = 8
    v.valueStarts[0] = start + 2
    v.valueEnds[0] = buf.indexOf(SOH, start)
    v.tags[1] = 9
    v.valueStarts[1] = v.valueEnds[0] + 3
    v.valueEnds[1] = bodyStart - 1
    n = 2
    let p = bodyStart
    while (p < trailer) {
      let tag = 0
      const tagStart = p
      while (p < trailer && buf[p] !== EQUALS) {
        const d = buf[p]! - ZERO
        if (d < 0 || d > 9) return false
        tag = tag * 10 + d
        p++
      }
      if (p === tagStart || p >= trailer || p - tagStart > 9) return false
      p++
      const valueStart = p
      while (p < trailer && buf[p] !== SOH) p++
      if (n >= max) return false
      v.tags[n] = tag
      v.valueStarts[n] = valueStart
      v.valueEnds[n] = p
      n++
      p++
    }
    v.count = n
    // An empty body leaves tags[2] from the previous message: it must not be read (README "Framing rules").
    if (n < 3 || v.tags[2] !== Tag.MsgType) return false
    const ts = v.valueStarts[2]!
    const te = v.valueEnds[2]!
    if (te - ts === 1) v.msgType = buf[ts]!
    else if (te - ts === 2) v.msgType = (buf[ts]! << 8) | buf[ts + 1]!
    else return false
    // the other required header fields: SenderCompID, TargetCompID, MsgSeqNum ≥ 1 (first occurrences)
    return v.indexOf(Tag.SenderCompID) >= 0 && v.indexOf(Tag.TargetCompID) >= 0 && v.int(Tag.MsgSeqNum) >= 1
  }
}

const NEED_MORE = 0
const FRAMED = 1
const ERROR = 2

/** SendingTime text (UTCTimestamp with milliseconds), cached per millisecond. */
export class UtcClock {
  private lastMs = -1
  private readonly text = Buffer.alloc(21)

  now(ms = Date.now()): Buffer {
    if (ms !== this.lastMs) {
      this.lastMs = ms
      const d = new Date(ms)
      const s = `${d.getUTCFullYear()}${pad2(d.getUTCMonth() + 1)}${pad2(d.getUTCDate())}-${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())}.${String(d.getUTCMilliseconds()).padStart(3, '0')}`
      this.text.write(s, 0, 'latin1')
    }
    return this.text
  }
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n)
}

const HEADROOM = 32

/**
 * Builds one message at a time in a preallocated buffer. Usage: begin(type) → add fields → finish()
 * returns a view of the complete message (valid until the next begin()).
 */
export class FixWriter {
  private buf: Buffer
  private pos = HEADROOM
  private readonly beginString: Buffer

  constructor(beginString = 'FIX.4.4', capacity = 8192) {
    this.buf = Buffer.allocUnsafe(capacity)
    this.beginString = Buffer.from(`8=${beginString}\x01`, 'latin1')
  }

  begin(msgType: string): this {
    this.pos = HEADROOM
    return this.str(Tag.MsgType, msgType)
  }

  private ensure(n: number): void {
    if (this.pos + n + 16 <= this.buf.length) return
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n + 64))
    this.buf.copy(grown, 0, 0, this.pos)
    this.buf = grown
  }

  private tag(tag: number): void {
    this.pos = writeUint(this.buf, this.pos, tag)
    this.buf[this.pos++] = EQUALS
  }

  str(tag: number, value: string): this {
    this.ensure(value.length + 12)
    this.tag(tag)
    this.pos += this.buf.write(value, this.pos, 'latin1')
    this.buf[this.pos++] = SOH
    return this
  }

  bytes(tag: number, value: Uint8Array, start = 0, end = value.length): this {
    this.ensure(end - start + 12)
    this.tag(tag)
    this.buf.set(value.subarray(start, end), this.pos)
    this.pos += end - start
    this.buf[this.pos++] = SOH
    return this
  }

  int(tag: number, value: number): this {
    this.ensure(32)
    this.tag(tag)
    if (value < 0) {
      this.buf[this.pos++] = 0x2d
      value = -value
    }
    this.pos = writeUint(this.buf, this.pos, value)
    this.buf[this.pos++] = SOH
    return this
  }

  /** A fixed-point price (× PRICE_SCALE), written with the trailing zero decimals removed. */
  price(tag: number, fixed: number): this {
    this.ensure(40)
    this.tag(tag)
    if (fixed < 0) {
      this.buf[this.pos++] = 0x2d
      fixed = -fixed
    }
    const whole = Math.floor(fixed / PRICE_SCALE)
    let frac = fixed - whole * PRICE_SCALE
    this.pos = writeUint(this.buf, this.pos, whole)
    if (frac > 0) {
      this.buf[this.pos++] = 0x2e
      let decimals = PRICE_DECIMALS
      while (frac % 10 === 0) {
        frac /= 10
        decimals--
      }
      const digitsStart = this.pos
      this.pos = writeUint(this.buf, this.pos, frac)
      const written = this.pos - digitsStart
      if (written < decimals) {
        // left-pad with zeros: shift the digits right
        const shift = decimals - written
        this.buf.copyWithin(digitsStart + shift, digitsStart, this.pos)
        this.buf.fill(ZERO, digitsStart, digitsStart + shift)
        this.pos += shift
      }
    }
    this.buf[this.pos++] = SOH
    return this
  }

  /** Current write offset: with bodySince(), captures the body fields of a message for resending. */
  mark(): number {
    return this.pos
  }

  bodySince(mark: number): Buffer {
    return Buffer.from(this.buf.subarray(mark, this.pos))
  }

  /** Appends already-encoded fields ("tag=value<SOH>…"). */
  raw(fields: Uint8Array): this {
    this.ensure(fields.length)
    this.buf.set(fields, this.pos)
    this.pos += fields.length
    return this
  }

  /** Completes BeginString, BodyLength and CheckSum; returns a view into the writer's buffer. */
  finish(): Buffer {
    const bodyLength = this.pos - HEADROOM
    const lenText = String(bodyLength)
    const headerLen = this.beginString.length + 2 + lenText.length + 1
    const start = HEADROOM - headerLen
    this.beginString.copy(this.buf, start)
    let p = start + this.beginString.length
    this.buf[p++] = 0x39
    this.buf[p++] = EQUALS
    p += this.buf.write(lenText, p, 'latin1')
    this.buf[p++] = SOH
    let sum = 0
    for (let i = start; i < this.pos; i++) sum += this.buf[i]!
    sum &= 0xff
    this.ensure(8)
    const b = this.buf
    b[this.pos++] = 0x31
    b[this.pos++] = ZERO
    b[this.pos++] = EQUALS
    b[this.pos++] = ZERO + Math.floor(sum / 100)
    b[this.pos++] = ZERO + (Math.floor(sum / 10) % 10)
    b[this.pos++] = ZERO + (sum % 10)
    b[this.pos++] = SOH
    return b.subarray(start, this.pos)
  }
}

function writeUint(buf: Buffer, pos: number, value: number): number {
  if (value < 10) {
    buf[pos] = ZERO + value
    return pos + 1
  }
  let digits = 0
  for (let v = value; v > 0; v = Math.floor(v / 10)) digits++
  let p = pos + digits - 1
  for (let v = value; v > 0; v = Math.floor(v / 10)) buf[p--] = ZERO + (v % 10)
  return pos + digits
}

/** Builds a message from readable text ("35=A|34=1|…", '|' for SOH) with correct 8, 9 and 10: for tests and tools. */
export function buildMessage(fields: readonly (readonly [number, string | number])[], beginString = 'FIX.4.4'): Buffer {
  const w = new FixWriter(beginString)
  const [first, ...rest] = fields
  if (!first || first[0] !== Tag.MsgType) throw new Error('the first field must be MsgType (35)')
  w.begin(String(first[1]))
  for (const [tag, value] of rest) w.str(tag, String(value))
  return Buffer.from(w.finish())
}
