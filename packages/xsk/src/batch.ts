import { KBX_DESC_SIZE, KBX_TX_BATCH_HEADER_SIZE, KbxDesc, KbxTxBatchHeader, kbxAddress, koffi } from '@kbx/ffi'
import { UsageError } from '@kbx/errors'
import { batchCalls, xskError } from './native.js'
import type { Umem } from './umem.js'

const TWO_POW_32 = 4294967296
/** u32 words of the batch header (struct kbx_tx_batch) and of a descriptor (struct kbx_desc), from their koffi layouts. */
const headerWord = (field: string): number => koffi.offsetof(KbxTxBatchHeader, field) / 4
const COUNT = headerWord('count')
const CAPACITY = headerWord('capacity')
const SENT = headerWord('sent')
const FRESH = headerWord('fresh')
const HEADER_WORDS = KBX_TX_BATCH_HEADER_SIZE / 4
const DESC_WORDS = KBX_DESC_SIZE / 4
/** addr is a little-endian u64: its low word, then its high word. */
const ADDR_LOW = koffi.offsetof(KbxDesc, 'addr') / 4
const ADDR_HIGH = ADDR_LOW + 1
const LEN = koffi.offsetof(KbxDesc, 'len') / 4
const OPTIONS = koffi.offsetof(KbxDesc, 'options') / 4

/**
 * A reusable array of frame descriptors (struct xdp_desc: u64 addr, u32 len, u32 options) in one
 * preallocated buffer that native calls read and write directly: the hot path allocates nothing per packet.
 * The buffer starts with the header of struct kbx_tx_batch (native/include/kbx_xsk.h), then the descriptors.
 */
export class DescriptorBatch {
  readonly capacity: number
  /** capacity × 16 bytes of descriptors. */
  readonly descriptors: Buffer
  /** Address of `descriptors` for the native batch calls. */
  readonly address: number
  /** Address of the header (struct kbx_tx_batch). */
  protected readonly headerAddress: number
  protected readonly header: Uint32Array
  protected readonly words: Uint32Array

  constructor(
    readonly umem: Umem,
    capacity: number,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 65536) {
      throw new UsageError(`batch capacity must be an integer from 1 to 65536, not ${capacity}`, {
        op: 'create descriptor batch',
      })
    }
    this.capacity = capacity
    // An ArrayBuffer of its own: V8 never moves it, so its address stays valid while we hold it.
    const storage = new ArrayBuffer(KBX_TX_BATCH_HEADER_SIZE + capacity * KBX_DESC_SIZE)
    this.header = new Uint32Array(storage, 0, HEADER_WORDS)
    this.words = new Uint32Array(storage, KBX_TX_BATCH_HEADER_SIZE)
    this.descriptors = Buffer.from(storage, KBX_TX_BATCH_HEADER_SIZE)
    this.headerAddress = kbxAddress(Buffer.from(storage))
    this.address = this.headerAddress + KBX_TX_BATCH_HEADER_SIZE
    this.header[CAPACITY] = capacity
  }

  /** Descriptors in use, from index 0. */
  get count(): number {
    return this.header[COUNT]!
  }

  set count(n: number) {
    this.header[COUNT] = n
  }

  /** Byte offset of descriptor i's data in umem.buffer. */
  addr(i: number): number {
    const w = this.words
    const at = i * DESC_WORDS
    const high = w[at + ADDR_HIGH]!
    // UMEMs under 4 GiB stay in small-integer arithmetic, which the JIT keeps cheapest.
    return high === 0 ? w[at + ADDR_LOW]! : w[at + ADDR_LOW]! + high * TWO_POW_32
  }

  length(i: number): number {
    return this.words[i * DESC_WORDS + LEN]!
  }

  options(i: number): number {
    return this.words[i * DESC_WORDS + OPTIONS]!
  }

  /** A view of descriptor i's bytes in the UMEM (a new Buffer object; for speed use addr/length with umem.view). */
  data(i: number): Buffer {
    const addr = this.addr(i)
    return this.umem.buffer.subarray(addr, addr + this.length(i))
  }
}

/**
 * Descriptors received by XskSocket.receiveInto/receive. Their frames belong to the caller until
 * released: by XskSocket.release(batch), or folded into the next receiveInto() with this batch.
 */
export class RxBatch extends DescriptorBatch {
  /** Frames of descriptors [0, held) still belong to this batch. */
  held = 0

  /** Returns the batch's frames to the UMEM now (one native call). */
  release(): void {
    if (this.held === 0) return
    const rc = batchCalls().kbx_umem_release(this.umem.address, this.address, this.held)
    if (rc < 0) throw xskError(rc, 'release received frames')
    this.held = 0
  }
}

/**
 * Frames to transmit: fill it with allocate() (frames from the UMEM pool) or push() (frames the caller
 * holds), write descriptors [fresh, count), then XskSocket.send(batch, refill) submits them and appends up
 * to `refill` new frames in ONE native call. Descriptors the TX ring had no room for stay in the batch,
 * moved to the front.
 */
export class TxBatch extends DescriptorBatch {
  /** Descriptors [fresh, count) are the frames the last allocate() or send(batch, refill) appended. */
  get fresh(): number {
    return this.header[FRESH]!
  }

  /** How many descriptors the last XskSocket.send(batch) submitted. */
  get sent(): number {
    return this.header[SENT]!
  }

  /** @internal Address of the struct kbx_tx_batch. */
  get batchAddress(): number {
    return this.headerAddress
  }

  /** Appends up to n free frames of the UMEM (addr = frame start, length 0); returns how many. */
  allocate(n: number = this.capacity - this.count): number {
    const count = this.count
    const room = this.capacity - count
    if (n > room) n = room
    this.header[FRESH] = count
    if (n <= 0) return 0
    const got = batchCalls().kbx_umem_alloc(this.umem.address, this.address + count * KBX_DESC_SIZE, n)
    this.header[COUNT] = count + got
    return got
  }

  /** Appends a frame the caller holds (allocated or received), data at addr. */
  push(addr: number, length: number, options = 0): void {
    const count = this.count
    if (count >= this.capacity) {
      throw new UsageError(`TX batch is full (${this.capacity} descriptors)`, { op: 'push TX descriptor' })
    }
    const w = this.words
    const at = count * DESC_WORDS
    w[at + ADDR_LOW] = addr % TWO_POW_32
    w[at + ADDR_HIGH] = Math.floor(addr / TWO_POW_32)
    w[at + LEN] = length
    w[at + OPTIONS] = options
    this.header[COUNT] = count + 1
  }

  setLength(i: number, length: number): void {
    this.words[i * DESC_WORDS + LEN] = length
  }

  /** Writable view of the whole frame behind descriptor i, from its addr to the frame's end. */
  frame(i: number): Buffer {
    const addr = this.addr(i)
    const frameEnd = (Math.floor(addr / this.umem.frameSize) + 1) * this.umem.frameSize
    return this.umem.buffer.subarray(addr, frameEnd)
  }

  /** Gives the frames still in the batch back to the UMEM and empties it. */
  release(): void {
    const count = this.count
    if (count === 0) return
    const rc = batchCalls().kbx_umem_release(this.umem.address, this.address, count)
    if (rc < 0) throw xskError(rc, 'release TX frames')
    this.header[COUNT] = 0
    this.header[FRESH] = 0
  }
}
