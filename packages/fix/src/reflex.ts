// The native FIX reflex (native/src/fix_reflex.c, kbx_fix.h): a C framer over the received byte stream
// that answers the ExecutionReport of the one outstanding order with the next NewOrderSingle, built from
// a template, on the step that received it. TypeScript arms it before each step and records what it sent.
import { kbxAddress, nativeError, readU64Fields } from '@kbx/ffi'
import { KBX_FIX_REFLEX_COUNTER_FIELDS, KBX_FIX_REFLEX_IO, libkbxFixReflex } from './native.js'
import type { KbxFixReflexPtr } from './native.js'
import { SystemError } from '@kbx/errors'

export interface ReflexTemplate {
  beginString: string
  /** Our CompIDs (the peer's messages carry them the other way round). */
  senderCompId: string
  targetCompId: string
  msgType: string
  /** Body fields after ClOrdID(11), "tag=value\x01…", up to the time field. */
  pre: Uint8Array
  /** Tag of a UTC timestamp field written with the SendingTime (TransactTime 60), 0 for none. */
  timeTag: number
  /** Body fields after the time field. */
  post: Uint8Array
  /** Header fields after TargetCompID, before MsgSeqNum (SenderSubID, …), as the session writes them; default none. */
  header?: Uint8Array
}

/** What the reflex waits for and what it sends: valid for one step. */
export interface ReflexArm {
  /** ClOrdID of the outstanding order, whose ExecutionReport triggers the next one. */
  clOrdId: number
  /** MsgSeqNum expected next from the peer. */
  expectSeq: number
  /** Our MsgSeqNum and ClOrdID for the order sent. */
  nextSeq: number
  nextClOrdId: number
}

/** An order the reflex sent. */
export interface ReflexOrder {
  seq: number
  clOrdId: number
  /** CLOCK_MONOTONIC ns (process.hrtime.bigint's clock): its TX descriptor handed to the TX ring. */
  sentNs: bigint
  triggerSeq: number
  /** Copies: the whole message, its SendingTime value and its body (fields after SendingTime, before CheckSum). */
  message: Buffer
  sendingTime: Buffer
  body: Buffer
}

export type ReflexCounters = Record<(typeof KBX_FIX_REFLEX_COUNTER_FIELDS)[number], number>

const io = KBX_FIX_REFLEX_IO

function writeU64(b: Buffer, at: number, v: number): void {
  b.writeUInt32LE(v >>> 0, at)
  b.writeUInt32LE(Math.floor(v / 0x1_0000_0000), at + 4)
}

/** The block shared with the native reflex (kept alive as long as the reflex). */
export class ReflexIo {
  readonly buffer = Buffer.from(new ArrayBuffer(io.size))
  readonly address = kbxAddress(this.buffer)

  /** For the next step only (the step clears it); undefined: not armed. */
  arm(a: ReflexArm | undefined): void {
    const b = this.buffer
    if (a === undefined) {
      b[io.armed] = 0
      return
    }
    writeU64(b, io.clOrdId, a.clOrdId)
    writeU64(b, io.expectSeq, a.expectSeq)
    writeU64(b, io.nextSeq, a.nextSeq)
    writeU64(b, io.nextClOrdId, a.nextClOrdId)
    b[io.armed] = 1
  }

  /** The order the last step (or feed) sent. */
  sent(): ReflexOrder {
    const b = this.buffer
    const len = b.readUInt32LE(io.len)
    const timeAt = io.msg + b.readUInt32LE(io.timeAt)
    const message = Buffer.from(b.subarray(io.msg, io.msg + len))
    return {
      seq: Number(b.readBigUInt64LE(io.sentSeq)),
      clOrdId: Number(b.readBigUInt64LE(io.sentClOrdId)),
      sentNs: b.readBigUInt64LE(io.sentNs),
      triggerSeq: Number(b.readBigUInt64LE(io.triggerSeq)),
      message,
      sendingTime: Buffer.from(b.subarray(timeAt, timeAt + 21)),
      body: Buffer.from(b.subarray(io.msg + b.readUInt32LE(io.bodyAt), io.msg + b.readUInt32LE(io.bodyEnd))),
    }
  }
}

/** Points a native reflex at its template and io block. */
export function configureReflex(r: KbxFixReflexPtr, t: ReflexTemplate, block: ReflexIo): void {
  const rc = libkbxFixReflex().kbx_fix_reflex_configure(r, t.beginString, t.senderCompId, t.targetCompId, t.msgType, t.pre, t.pre.length, t.timeTag, t.post, t.post.length, block.address)
  if (rc < 0) throw nativeError(rc, 'configure the FIX reflex', { hint: 'CompIDs, BeginString and MsgType up to 63 bytes, template parts up to 512' })
  const header = t.header ?? new Uint8Array(0)
  const hrc = libkbxFixReflex().kbx_fix_reflex_set_header(r, header, header.length)
  if (hrc < 0) throw nativeError(hrc, 'set the FIX reflex header', { hint: 'header fields up to 256 bytes' })
}

export function reflexCounters(r: KbxFixReflexPtr): ReflexCounters {
  const out = Buffer.alloc(KBX_FIX_REFLEX_COUNTER_FIELDS.length * 8)
  libkbxFixReflex().kbx_fix_reflex_counters(r, out)
  return readU64Fields(out, KBX_FIX_REFLEX_COUNTER_FIELDS)
}

/**
 * A standalone reflex without a connection (tests, tools): bytes in through feed(); an order it builds
 * counts as sent and is read with lastOrder().
 */
export class FixReflex {
  #r: KbxFixReflexPtr | null
  readonly io = new ReflexIo()

  constructor(template: ReflexTemplate) {
    const r = libkbxFixReflex().kbx_fix_reflex_create()
    if (r === null) throw new SystemError('create the FIX reflex', 12)
    this.#r = r
    try {
      configureReflex(r, template, this.io)
    } catch (err) {
      this.close()
      throw err
    }
  }

  get #ptr(): KbxFixReflexPtr {
    if (this.#r === null) throw new Error('FixReflex is closed')
    return this.#r
  }

  /** Armed from the next feed on, until it fires or something disarms it. */
  arm(a: ReflexArm): void {
    this.io.arm(a)
  }

  /** The next piece of the stream; true when it made an order go out. */
  feed(bytes: Uint8Array): boolean {
    return libkbxFixReflex().kbx_fix_reflex_feed_armed(this.#ptr, bytes, bytes.length) === 1
  }

  lastOrder(): ReflexOrder {
    return this.io.sent()
  }

  get counters(): ReflexCounters {
    return reflexCounters(this.#ptr)
  }

  close(): void {
    if (this.#r === null) return
    libkbxFixReflex().kbx_fix_reflex_destroy(this.#r)
    this.#r = null
  }
}
