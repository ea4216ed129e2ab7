// A session's message-rate throttle (--max-msg-rate): at most N messages in any 1 s window, counted by the time
// each left. Application messages over the limit are held (queue, bounded) or not sent (reject); admin messages
// are never held — the session protocol depends on them — and, with includeAdmin, take their place in the window
// so application messages give way to them.

export type ThrottleMode = 'queue' | 'reject'

export const THROTTLE_WINDOW_MS = 1000
/** Application messages held at most in queue mode; beyond it they are rejected (counted in queueFull). */
export const THROTTLE_QUEUE_CAPACITY = 4096

export interface ThrottleOptions {
  maxPerSec: number
  mode: ThrottleMode
  /** --throttle-admin: admin messages count in the window. */
  includeAdmin: boolean
  queueCapacity?: number
}

export interface ThrottleCounters {
  /** Application messages held for a later window (queue mode). */
  queued: number
  /** Of those, sent since. */
  released: number
  /** Application messages not sent: over the limit in reject mode, or the queue full in queue mode. */
  rejected: number
  queueFull: number
  /** The deepest the queue was. */
  maxQueueDepth: number
  /** Admin messages sent while the window was already full (--throttle-admin: they are never held). */
  adminOverLimit: number
}

export class MessageThrottle {
  readonly counters: ThrottleCounters = { queued: 0, released: 0, rejected: 0, queueFull: 0, maxQueueDepth: 0, adminOverLimit: 0 }
  /** When each of the last maxPerSec messages left (ms), a ring: head is the oldest. */
  private readonly sentAt: Float64Array
  private head = 0
  private size = 0
  readonly queueCapacity: number

  constructor(readonly options: ThrottleOptions) {
    if (!(options.maxPerSec >= 1)) throw new RangeError(`maxPerSec must be at least 1, got ${options.maxPerSec}`)
    this.sentAt = new Float64Array(options.maxPerSec)
    this.queueCapacity = options.queueCapacity ?? THROTTLE_QUEUE_CAPACITY
  }

  private evict(nowMs: number): void {
    while (this.size > 0 && this.sentAt[this.head]! <= nowMs - THROTTLE_WINDOW_MS) {
      this.head = (this.head + 1) % this.sentAt.length
      this.size--
    }
  }

  private record(nowMs: number): void {
    if (this.size === this.sentAt.length) {
      this.head = (this.head + 1) % this.sentAt.length // full: the oldest makes room (admin over the limit only)
      this.size--
    }
    this.sentAt[(this.head + this.size) % this.sentAt.length] = nowMs
    this.size++
  }

  /** Room in the window now for one more message (none taken). */
  hasRoom(nowMs: number): boolean {
    this.evict(nowMs)
    return this.size < this.sentAt.length
  }

  /** An application message may leave now: takes its place in the window if so. */
  tryTake(nowMs: number): boolean {
    if (!this.hasRoom(nowMs)) return false
    this.record(nowMs)
    return true
  }

  /** An admin message left (counted only with includeAdmin). */
  admin(nowMs: number): void {
    if (!this.options.includeAdmin) return
    if (!this.hasRoom(nowMs)) this.counters.adminOverLimit++
    this.record(nowMs)
  }

  /** Milliseconds until the window has room (0: now). */
  msUntilRoom(nowMs: number): number {
    if (this.hasRoom(nowMs)) return 0
    return Math.max(0, this.sentAt[this.head]! + THROTTLE_WINDOW_MS - nowMs)
  }
}
