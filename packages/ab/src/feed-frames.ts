// ab-feed's frames, written by libkbx a batch per call (native/src/ab_feed.c): the TypeScript feeder only
// plans and schedules; what a packet carries is decided and written in C, with no per-packet garbage here.
import { kbxAddress, koffi } from '@kbx/ffi'
import type { UdpFrameTemplate } from '@kbx/net'
import type { TxBatch, Umem } from '@kbx/xsk'
import { FORMAT_CODE, encodeFeedPayload, type FeedFormat } from './format.js'
import { KBX_AB_FEED_MAX_HEADER, KbxAbFeedConfig, KbxAbFeedLine, abError, arrayAddress, libkbxAb } from './native.js'

export interface FeedFrameSpec {
  format: FeedFormat
  /** Payload bytes of a data packet at least (ab-feed --size). */
  size: number
  streams: number
  startSeq: bigint
  restartSeq: bigint
  restartEvery: number
  /** Headers towards the line's destination. */
  template: UdpFrameTemplate
}

/** The frame settings of a feed, in the native layout. */
export class FeedFrameConfig {
  readonly buffer: Buffer
  readonly address: number

  constructor(spec: FeedFrameSpec) {
    const header = spec.template.header
    if (header.length > KBX_AB_FEED_MAX_HEADER) throw new RangeError(`frame headers of ${header.length} bytes: at most ${KBX_AB_FEED_MAX_HEADER}`)
    const padded = new Uint8Array(KBX_AB_FEED_MAX_HEADER)
    padded.set(header)
    this.buffer = Buffer.alloc(koffi.sizeof(KbxAbFeedConfig))
    koffi.encode(this.buffer, 0, KbxAbFeedConfig, {
      format: FORMAT_CODE[spec.format],
      streams: spec.streams,
      payload_len: encodeFeedPayload(spec.format, 0, 0n, spec.size).length,
      header_len: header.length,
      l3_offset: spec.template.l3Offset,
      udp_checksum: 1,
      start_seq: spec.startSeq,
      restart_seq: spec.restartSeq,
      restart_every: spec.restartEvery,
      header: Array.from(padded),
    })
    this.address = kbxAddress(this.buffer)
  }

  /**
   * The MoldUDP64 answer to a request (20 bytes): a downstream packet of as many of the asked messages as fit
   * `out`, rebuilt from their numbers; served are plan items below `published` (global item numbers) and at
   * most `history` numbers per stream below it. Empty when there is nothing to answer.
   */
  answer(request: Uint8Array, published: number, history: number, out: Buffer): { payload: Buffer; messages: number } {
    const messages: [number] = [0]
    const len = libkbxAb().kbx_ab_feed_answer(this.address, request, request.length, published, history, out, out.length, messages)
    return { payload: out.subarray(0, Math.max(0, len)), messages: len > 0 ? messages[0] : 0 }
  }

  /** One entry's frame (tests; the feeder writes whole batches with FeedLineWriter). */
  frame(firstItem: number, entry: number): Buffer {
    const out = Buffer.alloc(2048)
    const len = libkbxAb().kbx_ab_feed_frame(this.address, firstItem, entry, out, out.length)
    if (len < 0) throw abError(len, 'write an ab-feed frame')
    return out.subarray(0, len)
  }
}

const LINE_OFFSETS = Object.fromEntries(
  (['entries', 'due', 'first_item', 'len', 'next', 'lag', 'up_to'] as const).map((name) => [name, koffi.offsetof(KbxAbFeedLine, name)]),
) as Record<'entries' | 'due' | 'first_item' | 'len' | 'next' | 'lag' | 'up_to', number>

/** One line's frames: its place in the current chunk's plan, written into TX batches one native call each. */
export class FeedLineWriter {
  private readonly line = Buffer.alloc(koffi.sizeof(KbxAbFeedLine))
  private readonly lineAddress = kbxAddress(this.line)
  private entries: Uint32Array = new Uint32Array(0)
  private due: Uint32Array = new Uint32Array(0)
  private lag = 0

  constructor(
    private readonly config: FeedFrameConfig,
    private readonly umem: Umem,
  ) {}

  /** Starts a chunk: the line's entries (plan order), the step each is due at, and the item number of entry 0. */
  start(entries: Uint32Array, due: Uint32Array, firstItem: number, lag: number): void {
    this.entries = entries
    this.due = due
    this.lag = lag
    const l = this.line
    l.writeBigUInt64LE(BigInt(arrayAddress(entries)), LINE_OFFSETS.entries)
    l.writeBigUInt64LE(BigInt(arrayAddress(due)), LINE_OFFSETS.due)
    l.writeBigUInt64LE(BigInt(firstItem), LINE_OFFSETS.first_item)
    l.writeUInt32LE(entries.length, LINE_OFFSETS.len)
    l.writeUInt32LE(0, LINE_OFFSETS.next)
    l.writeUInt32LE(lag, LINE_OFFSETS.lag)
  }

  /** The first entry not yet written. */
  get next(): number {
    return this.line.readUInt32LE(LINE_OFFSETS.next)
  }

  get done(): boolean {
    return this.next >= this.entries.length
  }

  /** Appends the frames due before step upTo to the batch (as many as it has room for); true when the line caught up. */
  fill(batch: TxBatch, upTo: number): boolean {
    this.line.writeUInt32LE(upTo, LINE_OFFSETS.up_to)
    const rc = libkbxAb().kbx_ab_feed_fill(this.config.address, this.umem.address, batch.batchAddress, this.lineAddress)
    if (rc < 0) throw abError(rc, 'write ab-feed frames')
    const next = this.next
    return next >= this.entries.length || this.due[next]! + this.lag >= upTo
  }
}
