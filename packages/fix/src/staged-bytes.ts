/**
 * Bytes the session wrote, waiting for the native step: a fixed staging buffer (its address is handed to C
 * once) and, when the staging buffer is full, a queue behind it in order, so a burst of session messages
 * (a strategy's orders, the answer to a large ResendRequest) is sent late rather than dropped. Only beyond
 * `queueCapacity` queued bytes does write() refuse.
 */
export class StagedBytes {
  #length = 0
  readonly #queue: Buffer[] = []
  #queued = 0

  constructor(
    readonly buffer: Buffer,
    readonly queueCapacity: number,
  ) {}

  /** Bytes in the staging buffer, for the step. */
  get length(): number {
    return this.#length
  }

  /** Bytes waiting behind the staging buffer. */
  get queued(): number {
    return this.#queued
  }

  /** Staged and queued bytes. */
  get pending(): number {
    return this.#length + this.#queued
  }

  /** Bytes write() takes before anything waits in the queue. */
  get room(): number {
    return Math.max(0, this.buffer.length - this.#length - this.#queued)
  }

  /** Appends bytes (in order after everything before); false when the queue is full too, or for more than the staging buffer holds. */
  write(bytes: Uint8Array): boolean {
    if (bytes.length > this.buffer.length) return false
    if (this.#queued === 0 && this.#length + bytes.length <= this.buffer.length) {
      this.buffer.set(bytes, this.#length)
      this.#length += bytes.length
      return true
    }
    if (this.#queued + bytes.length > this.queueCapacity) return false
    this.#queue.push(Buffer.from(bytes))
    this.#queued += bytes.length
    return true
  }

  /** The step took the first `accepted` staged bytes: the rest moves up, and queued messages follow while they fit. */
  consume(accepted: number): void {
    if (accepted > 0) {
      this.buffer.copyWithin(0, accepted, this.#length)
      this.#length -= accepted
    }
    while (this.#queue.length > 0 && this.#length + this.#queue[0]!.length <= this.buffer.length) {
      const next = this.#queue.shift()!
      this.buffer.set(next, this.#length)
      this.#length += next.length
      this.#queued -= next.length
    }
  }

  clear(): void {
    this.#length = 0
    this.#queue.length = 0
    this.#queued = 0
  }
}
