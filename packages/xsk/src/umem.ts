import { UsageError, XskError } from '@kbx/errors'
import {
  KBX_DESC_SIZE,
  KbxDesc,
  kbxAddress,
  koffi,
  nativeView,
  type KbxUmemAccountingValue,
  type KbxUmemConfigValue,
  type KbxRawPtr,
  type KbxUmemPtr,
} from '@kbx/ffi'
import { RxBatch, TxBatch } from './batch.js'
import { batchCalls, native, xskError } from './native.js'

/** A descriptor's u32 words and where its u64 addr starts (little-endian: low word first). */
const DESC_WORDS = KBX_DESC_SIZE / 4
const ADDR_OFFSET = koffi.offsetof(KbxDesc, 'addr')
const ADDR_LOW = ADDR_OFFSET / 4

export interface UmemOptions {
  /** Frames in the UMEM (default 4096). */
  frameCount?: number
  /** Bytes per frame, a power of two from 2048 to the page size (default 2048). */
  frameSize?: number
  /** Bytes the kernel leaves free before received data in each frame (default 0). */
  headroom?: number
  /** Entries of every fill ring of this UMEM, a power of two (default 2048). */
  fillSize?: number
  /** Entries of every completion ring of this UMEM, a power of two (default 2048). */
  compSize?: number
}

const areaOwner = new FinalizationRegistry<{ area: KbxRawPtr; size: number }>(({ area, size }) => {
  native().kbx_area_unmap(area, size)
})

export type FrameState = 'free' | 'fill' | 'rx' | 'tx' | 'user'
const frameStates: readonly FrameState[] = ['free', 'fill', 'rx', 'tx', 'user']

/**
 * Where every frame is: free (in the pool), fill (posted to a fill ring or waiting in an RX ring),
 * rx (received and held by the user), tx (in a TX ring or awaiting completion), user (allocated).
 * total === free + fill + rx + tx + user, always; `parked` (part of fill + tx) are frames left with a
 * closed socket whose bind lives until the UMEM's last socket closes.
 */
export type UmemAccounting = KbxUmemAccountingValue

/** Something the UMEM closes before itself (its sockets). */
interface UmemUser {
  close(): void
}

/**
 * An AF_XDP UMEM: one mmap'd area of frameCount × frameSize bytes, registered with the kernel, and a frame
 * pool that accounts for every frame. Sockets on any queue or interface share it (XskSocket.create).
 * Not thread-safe: one thread drives a UMEM and its sockets.
 */
export class Umem {
  /** Zero-copy view of the whole UMEM area: frame data lives here. */
  readonly buffer: Buffer
  /** DataView over the same bytes: field reads and writes at any offset, cheaper than Buffer's methods. */
  readonly view: DataView
  readonly frameSize: number
  readonly frameCount: number
  readonly headroom: number
  readonly fillSize: number
  readonly compSize: number
  #handle: KbxUmemPtr | null
  #address: number
  readonly #users = new Set<UmemUser>()
  readonly #scratch: Buffer
  readonly #scratchAddress: number

  private constructor(handle: KbxUmemPtr, config: KbxUmemConfigValue) {
    this.#handle = handle
    this.#address = kbxAddress(handle)
    this.frameSize = config.frame_size
    this.frameCount = config.frame_count
    this.headroom = config.headroom
    this.fillSize = config.fill_size
    this.compSize = config.comp_size
    const lib = native()
    const size = Number(lib.kbx_umem_area_size(handle))
    // The area outlives the UMEM until its last view is collected: a stale view never reads unmapped memory.
    const area = lib.kbx_umem_take_area(handle)
    this.buffer = nativeView(area, size)
    this.view = new DataView(this.buffer.buffer, this.buffer.byteOffset, this.buffer.byteLength)
    areaOwner.register(this.buffer.buffer, { area, size })
    this.#scratch = Buffer.from(new ArrayBuffer(KBX_DESC_SIZE * 256))
    this.#scratchAddress = kbxAddress(this.#scratch)
  }

  static create(options: UmemOptions = {}): Umem {
    const config: KbxUmemConfigValue = {
      frame_count: uint(options.frameCount, 'frameCount'),
      frame_size: uint(options.frameSize, 'frameSize'),
      headroom: uint(options.headroom, 'headroom', 0),
      fill_size: uint(options.fillSize, 'fillSize'),
      comp_size: uint(options.compSize, 'compSize'),
    }
    const lib = native()
    const out: [KbxUmemPtr | null] = [null]
    const rc = lib.kbx_umem_create(config, out)
    if (rc < 0 || !out[0]) throw xskError(rc, 'create UMEM')
    const resolved: Partial<KbxUmemConfigValue> = {}
    lib.kbx_umem_get_config(out[0], resolved)
    return new Umem(out[0], resolved as KbxUmemConfigValue)
  }

  /** @internal The native handle; throws once closed. */
  get handle(): KbxUmemPtr {
    if (!this.#handle) throw new XskError('use UMEM', 9 /* EBADF */, { hint: 'the UMEM is closed' })
    return this.#handle
  }

  /** @internal The native handle's address for the batch calls; throws once closed. */
  get address(): number {
    if (!this.#handle) throw new XskError('use UMEM', 9 /* EBADF */, { hint: 'the UMEM is closed' })
    return this.#address
  }

  get closed(): boolean {
    return this.#handle === null
  }

  /** @internal */
  attach(user: UmemUser): void {
    this.#users.add(user)
  }

  /** @internal */
  detach(user: UmemUser): void {
    this.#users.delete(user)
  }

  /** Takes up to n free frames from the pool; returns their addresses (frame starts). */
  allocFrames(n: number): number[] {
    const addrs: number[] = []
    const calls = batchCalls()
    const words = new Uint32Array(this.#scratch.buffer, this.#scratch.byteOffset, this.#scratch.length / 4)
    while (addrs.length < n) {
      const want = Math.min(n - addrs.length, this.#scratch.length / KBX_DESC_SIZE)
      const got = calls.kbx_umem_alloc(this.address, this.#scratchAddress, want)
      for (let i = 0; i < got; i++) addrs.push(words[i * DESC_WORDS + ADDR_LOW]! + words[i * DESC_WORDS + ADDR_LOW + 1]! * 4294967296)
      if (got < want) break
    }
    return addrs
  }

  /** Returns frames the user holds (allocated or received) to the pool: all or none (XskError EINVAL). */
  releaseFrames(addrs: readonly number[]): void {
    const descs = Buffer.alloc(addrs.length * KBX_DESC_SIZE)
    addrs.forEach((addr, i) => descs.writeBigUInt64LE(BigInt(addr), i * KBX_DESC_SIZE + ADDR_OFFSET))
    const rc = native().kbx_umem_release(this.handle, descs, addrs.length)
    if (rc < 0) throw xskError(rc, 'release frames')
  }

  frameState(addr: number): FrameState {
    const rc = native().kbx_umem_frame_state(this.handle, addr)
    if (rc < 0) throw new UsageError(`address ${addr} is past the end of the UMEM`, { op: 'frame state' })
    return frameStates[rc]!
  }

  /** The frame-state counts, after a frame-by-frame audit (XskError EUCLEAN if it fails). */
  accounting(): UmemAccounting {
    const out: Partial<KbxUmemAccountingValue> = {}
    const rc = native().kbx_umem_accounting(this.handle, out)
    if (rc < 0) throw xskError(rc, 'audit UMEM frames')
    const a = out as KbxUmemAccountingValue
    return {
      total: a.total,
      free: a.free,
      fill: a.fill,
      rx: a.rx,
      tx: a.tx,
      user: a.user,
      parked: a.parked,
      sockets: a.sockets,
    }
  }

  /** A view of one frame's bytes (from addr to the end of its frame, or length bytes). */
  frame(addr: number, length?: number): Buffer {
    const end = length ?? (Math.floor(addr / this.frameSize) + 1) * this.frameSize - addr
    return this.buffer.subarray(addr, addr + end)
  }

  /** A reusable TX batch drawing frames from this UMEM. */
  txBatch(capacity = 64): TxBatch {
    return new TxBatch(this, capacity)
  }

  /** A reusable RX batch for XskSocket.receiveInto. */
  rxBatch(capacity = 64): RxBatch {
    return new RxBatch(this, capacity)
  }

  /** Closes the UMEM's sockets, then the UMEM. `buffer` stays readable memory but belongs to nothing. */
  close(): void {
    if (!this.#handle) return
    for (const user of [...this.#users]) user.close()
    native().kbx_umem_destroy(this.#handle)
    this.#handle = null
  }
}

function uint(value: number | undefined, name: string, min = 1): number {
  if (value === undefined) return 0
  if (!Number.isInteger(value) || value < min || value > 0xffffffff) {
    throw new UsageError(`UMEM option ${name} must be an integer ≥ ${min}, not ${value}`, { op: 'create UMEM' })
  }
  return value
}
