import { UsageError, XskError, errnoName, errnoOf } from '@kbx/errors'
import {
  KBX_DESC_SIZE,
  KBX_POLL_RX,
  KBX_POLL_TX,
  KBX_XSK_STATS_SIZE,
  KBX_ZERO_COPY_NEVER,
  KBX_ZERO_COPY_REQUIRE,
  KBX_ZERO_COPY_TRY,
  KbxXskStats,
  koffi,
  type KbxXskStatsField,
  type KbxXskConfigValue,
  type KbxXskInfoValue,
  type KbxXskPtr,
  kbxAddress,
} from '@kbx/ffi'
import { RxBatch, TxBatch } from './batch.js'
import { batchCalls, native, xskError } from './native.js'
import type { Umem } from './umem.js'

export type ZeroCopyPolicy = 'try' | 'require' | 'never'

export interface XskSocketOptions {
  umem: Umem
  iface: string
  queue?: number
  /** An RX ring (default true). */
  rx?: boolean
  /** A TX ring (default true). */
  tx?: boolean
  /** RX ring entries, a power of two (default 2048). */
  rxSize?: number
  /** TX ring entries, a power of two (default 2048). */
  txSize?: number
  /** Fill ring size: a property of the UMEM (UmemOptions.fillSize); given here it must match. */
  fillSize?: number
  /** Completion ring size: a property of the UMEM (UmemOptions.compSize); given here it must match. */
  compSize?: number
  /** Frames this socket keeps posted in its fill ring (default min(fill ring, free frames / 2)). */
  fillFrames?: number
  /**
   * XDP attach mode of the program feeding this queue. 'skb' (generic XDP) cannot feed a zero-copy
   * socket, so it implies copy mode; 'native' and 'auto' leave the zeroCopy policy alone.
   */
  mode?: 'native' | 'skb' | 'auto'
  /** 'try' (default): zero-copy, else copy mode (logged); 'require': zero-copy or XskError; 'never': copy. */
  zeroCopy?: ZeroCopyPolicy
  /** XDP_USE_NEED_WAKEUP (default true). */
  needWakeup?: boolean
  /** Further bind attempts after EBUSY (default 10), retryDelayMs (default 50) apart. */
  bindRetries?: number
  retryDelayMs?: number
  /** Copy-mode frames per kernel TX kick (XDP_MAX_TX_SKB_BUDGET, Linux ≥ 6.17); default: the kernel's (32). */
  txBudget?: number
  /** Where the copy-mode fallback is reported (default: one line on stderr). */
  log?: (message: string) => void
}

/** XDP_STATISTICS of the socket plus libkbx's own counters for it. */
export interface XskStatistics {
  rxDropped: bigint
  rxInvalidDescs: bigint
  txInvalidDescs: bigint
  rxRingFull: bigint
  fillRingEmpty: bigint
  txRingEmpty: bigint
  rxPackets: bigint
  rxBytes: bigint
  txPackets: bigint
  txBytes: bigint
  txCompleted: bigint
  kicks: bigint
  kickErrors: bigint
  fillWakeups: bigint
  polls: bigint
  anomalies: bigint
}

/** Each statistic and the struct kbx_xsk_stats field it reads. */
const STATISTICS_FIELDS: readonly (readonly [keyof XskStatistics, KbxXskStatsField])[] = [
  ['rxDropped', 'rx_dropped'],
  ['rxInvalidDescs', 'rx_invalid_descs'],
  ['txInvalidDescs', 'tx_invalid_descs'],
  ['rxRingFull', 'rx_ring_full'],
  ['fillRingEmpty', 'rx_fill_ring_empty_descs'],
  ['txRingEmpty', 'tx_ring_empty_descs'],
  ['rxPackets', 'rx_packets'],
  ['rxBytes', 'rx_bytes'],
  ['txPackets', 'tx_packets'],
  ['txBytes', 'tx_bytes'],
  ['txCompleted', 'tx_completed'],
  ['kicks', 'kicks'],
  ['kickErrors', 'kick_errors'],
  ['fillWakeups', 'fill_wakeups'],
  ['polls', 'polls'],
  ['anomalies', 'anomalies'],
]

export interface TxFrame {
  addr: number
  len: number
  options?: number
}

const zeroCopyPolicies: Record<ZeroCopyPolicy, number> = {
  try: KBX_ZERO_COPY_TRY,
  require: KBX_ZERO_COPY_REQUIRE,
  never: KBX_ZERO_COPY_NEVER,
}

function defaultLog(message: string): void {
  process.stderr.write(`kbx xsk: ${message}\n`)
}

/**
 * An AF_XDP socket bound to one queue of one interface, sharing a Umem. It never loads an XDP program
 * (XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD): steer traffic to it with steerTo() and the xdp_xsk_redirect program.
 * Every ring operation moves a whole batch in one native call.
 */
export class XskSocket {
  readonly umem: Umem
  readonly fd: number
  readonly iface: string
  readonly ifindex: number
  readonly queue: number
  /** Bound in zero-copy mode. */
  readonly zeroCopy: boolean
  readonly needWakeup: boolean
  /** Bound with XDP_SHARED_UMEM (the UMEM already had a socket): mode and need-wakeup were inherited. */
  readonly shared: boolean
  /** Why zero-copy was refused when 'try' fell back to copy mode (e.g. 'EOPNOTSUPP'). */
  readonly zeroCopyRefused: string | undefined
  readonly bindAttempts: number
  /** TX kick budget the kernel accepted (0: its default). */
  readonly txBudget: number
  /** Frames kept posted in the fill ring. */
  readonly fillFrames: number
  readonly hasRx: boolean
  readonly hasTx: boolean
  #handle: KbxXskPtr | null
  readonly #address: number
  #scratchTx: TxBatch | undefined
  readonly #stats = Buffer.from(new ArrayBuffer(KBX_XSK_STATS_SIZE))
  readonly #statsAddress = kbxAddress(this.#stats)

  private constructor(handle: KbxXskPtr, options: XskSocketOptions, info: KbxXskInfoValue) {
    this.#handle = handle
    this.#address = kbxAddress(handle)
    this.umem = options.umem
    this.fd = info.fd
    this.iface = options.iface
    this.ifindex = info.ifindex
    this.queue = info.queue
    this.zeroCopy = info.zero_copy !== 0
    this.needWakeup = info.need_wakeup !== 0
    this.shared = info.shared !== 0
    this.zeroCopyRefused = info.zero_copy_errno ? errnoName(info.zero_copy_errno) : undefined
    this.bindAttempts = info.bind_attempts
    this.txBudget = info.tx_budget
    this.fillFrames = info.fill_frames
    this.hasRx = options.rx ?? true
    this.hasTx = options.tx ?? true
  }

  static create(options: XskSocketOptions): XskSocket {
    const { umem, iface } = options
    const queue = options.queue ?? 0
    const rx = options.rx ?? true
    const tx = options.tx ?? true
    if (!rx && !tx) throw new UsageError('an AF_XDP socket needs rx, tx or both', { op: 'create AF_XDP socket' })
    if (options.fillSize !== undefined && options.fillSize !== umem.fillSize) {
      throw new UsageError(`fillSize ${options.fillSize} differs from the UMEM's fill ring size ${umem.fillSize}`, {
        op: 'create AF_XDP socket',
        hint: 'fill and completion rings are sized per UMEM: pass fillSize/compSize to Umem.create',
      })
    }
    if (options.compSize !== undefined && options.compSize !== umem.compSize) {
      throw new UsageError(`compSize ${options.compSize} differs from the UMEM's completion ring size ${umem.compSize}`, {
        op: 'create AF_XDP socket',
        hint: 'fill and completion rings are sized per UMEM: pass fillSize/compSize to Umem.create',
      })
    }
    let policy = options.zeroCopy ?? 'try'
    if (options.mode === 'skb') {
      if (policy === 'require') {
        throw new UsageError('zero-copy AF_XDP needs the XDP program in native mode, not skb', {
          op: 'create AF_XDP socket',
        })
      }
      policy = 'never'
    }
    const config: KbxXskConfigValue = {
      queue,
      rx_size: rx ? (options.rxSize ?? 2048) : 0,
      tx_size: tx ? (options.txSize ?? 2048) : 0,
      fill_frames: options.fillFrames ?? 0,
      zero_copy: zeroCopyPolicies[policy],
      need_wakeup: options.needWakeup === false ? 0 : 1,
      bind_retries: options.bindRetries ?? 10,
      retry_delay_ms: options.retryDelayMs ?? 50,
      tx_budget: options.txBudget ?? 0,
    }
    const lib = native()
    const out: [KbxXskPtr | null] = [null]
    const info: Partial<KbxXskInfoValue> = {}
    const rc = lib.kbx_xsk_create(umem.handle, iface, config, out, info)
    if (rc < 0 || !out[0]) {
      const busyHint =
        Math.abs(rc) === errnoOf('EBUSY') && (info.bind_attempts ?? 0) > 1
          ? `the queue stayed busy through ${config.bind_retries} retries ${config.retry_delay_ms} ms apart: another AF_XDP socket (this or another process) is bound to ${iface} queue ${queue}`
          : undefined
      throw xskError(rc, `create AF_XDP socket on ${iface} queue ${queue}`, busyHint)
    }
    const socket = new XskSocket(out[0], { ...options, rx, tx }, info as KbxXskInfoValue)
    umem.attach(socket)
    if (socket.zeroCopyRefused && policy === 'try') {
      ;(options.log ?? defaultLog)(
        `${iface} queue ${queue}: zero-copy refused (${socket.zeroCopyRefused}), using copy mode`,
      )
    }
    return socket
  }

  get closed(): boolean {
    return this.#handle === null
  }

  /**
   * @internal The native handle's address (struct kbx_xsk *), for a native module that drives this socket
   * (quic-flood's engine); throws once closed. The socket stays this object's: close it after that module.
   */
  get address(): number {
    return this.#ptr
  }

  /** The native handle's address for the batch calls; throws once closed. */
  get #ptr(): number {
    if (!this.#handle) {
      throw new XskError(`use AF_XDP socket on ${this.iface} queue ${this.queue}`, 9 /* EBADF */, {
        hint: 'the socket is closed',
      })
    }
    return this.#address
  }

  /** A reusable RX batch for receiveInto (frames of this socket's UMEM). */
  rxBatch(capacity = 64): RxBatch {
    return new RxBatch(this.umem, capacity)
  }

  /** A reusable TX batch drawing frames from this socket's UMEM. */
  txBatch(capacity = 64): TxBatch {
    return new TxBatch(this.umem, capacity)
  }

  /**
   * The hot path: ONE native call releases the frames the batch still holds, takes up to batch.capacity
   * descriptors off the RX ring into it and refills the fill ring. When nothing is there and timeoutMs > 0
   * it poll()s once for up to timeoutMs (keep it a few ms so signals are handled promptly). Returns the count.
   */
  receiveInto(batch: RxBatch, timeoutMs = 0): number {
    if (batch.umem !== this.umem) throw new UsageError('the RX batch belongs to another UMEM', { op: 'receive' })
    const n = batchCalls().kbx_xsk_receive(this.#ptr, batch.address, batch.capacity, batch.held, timeoutMs)
    if (n < 0) throw xskError(n, `receive on ${this.iface} queue ${this.queue}`)
    batch.count = n
    batch.held = n
    return n
  }

  /** Receives up to max descriptors into a new RxBatch (release it with release(batch)). */
  receive(max = 64, timeoutMs = 0): RxBatch {
    const batch = new RxBatch(this.umem, max)
    this.receiveInto(batch, timeoutMs)
    return batch
  }

  /** Returns a received batch's frames to the UMEM (receiveInto with the same batch does it for free). */
  release(batch: RxBatch): void {
    batch.release()
  }

  /**
   * ONE native call: submits the batch's descriptors to the TX ring (as many as fit, in order), kicks the
   * kernel only when it needs a wake-up, and reaps completions back to the pool. Sent descriptors leave a
   * TxBatch, the rest move to its front, then up to `refill` free frames are appended (length
   * refillLength) for the next round: write descriptors [batch.fresh, batch.count) and send again.
   * With an array, the frames not sent stay the caller's. Returns the number submitted.
   */
  send(frames: TxBatch | readonly TxFrame[], refill = 0, refillLength = 0): number {
    if (frames instanceof TxBatch) {
      if (frames.umem !== this.umem) throw new UsageError('the TX batch belongs to another UMEM', { op: 'send' })
      const sent = batchCalls().kbx_xsk_send_batch(this.#ptr, frames.batchAddress, refill, refillLength)
      if (sent < 0) throw xskError(sent, `send on ${this.iface} queue ${this.queue}`)
      return sent
    }
    let total = 0
    for (let start = 0; start < frames.length; ) {
      const scratch = (this.#scratchTx ??= new TxBatch(this.umem, 256))
      scratch.count = 0
      const end = Math.min(frames.length, start + scratch.capacity)
      for (let i = start; i < end; i++) scratch.push(frames[i]!.addr, frames[i]!.len, frames[i]!.options ?? 0)
      const want = scratch.count
      const sent = batchCalls().kbx_xsk_send(this.#ptr, scratch.address, want)
      scratch.count = 0
      if (sent < 0) throw xskError(sent, `send on ${this.iface} queue ${this.queue}`)
      total += sent
      if (sent < want) break
      start = end
    }
    return total
  }

  /** Kicks the TX path if frames are pending and reaps completions; returns how many completed. */
  complete(): number {
    const n = batchCalls().kbx_xsk_complete(this.#ptr)
    if (n < 0) throw xskError(n, `complete TX on ${this.iface} queue ${this.queue}`)
    return n
  }

  /** Frames submitted and not yet completed. */
  get txPending(): number {
    return batchCalls().kbx_xsk_tx_pending(this.#ptr)
  }

  /** Completes TX until nothing is pending or timeoutMs passes; returns whether everything completed. */
  drain(timeoutMs = 1000): boolean {
    const deadline = Date.now() + timeoutMs
    const lib = batchCalls()
    const ptr = this.#ptr
    while (lib.kbx_xsk_tx_pending(ptr) > 0) {
      if (Date.now() >= deadline) return false
      if (lib.kbx_xsk_complete(ptr) === 0) lib.kbx_xsk_wait(ptr, KBX_POLL_TX, 1)
    }
    return true
  }

  /** poll() for up to timeoutMs (keep it small in loops that must notice signals). */
  wait(events: { rx?: boolean; tx?: boolean }, timeoutMs: number): { rx: boolean; tx: boolean } {
    const mask = (events.rx ? KBX_POLL_RX : 0) | (events.tx ? KBX_POLL_TX : 0)
    const ready = batchCalls().kbx_xsk_wait(this.#ptr, mask, timeoutMs)
    if (ready < 0) throw xskError(ready, `poll AF_XDP socket on ${this.iface} queue ${this.queue}`)
    return { rx: (ready & KBX_POLL_RX) !== 0, tx: (ready & KBX_POLL_TX) !== 0 }
  }

  statistics(): XskStatistics {
    const rc = batchCalls().kbx_xsk_statistics(this.#ptr, this.#statsAddress)
    if (rc < 0) throw xskError(rc, `read statistics of ${this.iface} queue ${this.queue}`)
    const b = this.#stats
    const out = {} as XskStatistics
    for (const [name, field] of STATISTICS_FIELDS) out[name] = b.readBigUInt64LE(koffi.offsetof(KbxXskStats, field))
    return out
  }

  /**
   * Closes the socket; its fill and TX frames return to the UMEM. The UMEM's first socket is special: its
   * bind lasts as long as the UMEM's registration, so its frames stay parked until the UMEM's last socket
   * closes (see Umem.accounting().parked).
   */
  close(): void {
    if (!this.#handle) return
    native().kbx_xsk_close(this.#handle)
    this.#handle = null
    this.umem.detach(this)
  }
}

/** Bytes of one descriptor in a batch's Buffer. */
export const DESCRIPTOR_SIZE = KBX_DESC_SIZE
