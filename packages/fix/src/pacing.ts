// fix-tcp --rate: when each order is due. The k-th order (0-based) of a run is due at origin + k/rate, in
// integer nanoseconds of process.hrtime (CLOCK_MONOTONIC, the clock the native waits use): the transport
// sleeps until the next deadline, to the microsecond, and the run sends what is due as soon as it wakes.

const NS_PER_S = 1_000_000_000n

export class OrderPacer {
  /** When order 0 was due (0n: not started). */
  originNs = 0n
  readonly #rate: bigint

  constructor(
    readonly ratePerSec: number,
    /** Orders in the run (Infinity: until stopped). */
    readonly limit: number,
  ) {
    if (!Number.isInteger(ratePerSec) || ratePerSec < 1) throw new RangeError(`rate: expected an integer ≥ 1, got ${ratePerSec}`)
    this.#rate = BigInt(ratePerSec)
  }

  get started(): boolean {
    return this.originNs !== 0n
  }

  /** The schedule starts now (order 0 due at once), unless it already has. */
  start(nowNs: bigint): void {
    if (this.originNs === 0n) this.originNs = nowNs
  }

  /** Orders due by nowNs (0 before the start): send until this many have been attempted. */
  dueBy(nowNs: bigint): number {
    if (this.originNs === 0n || nowNs < this.originNs) return 0
    const due = Number(((nowNs - this.originNs) * this.#rate) / NS_PER_S) + 1
    return Math.min(this.limit, due)
  }

  /** When the order after `attempts` is due (0n when none is left or the schedule has not started). */
  deadlineNs(attempts: number): bigint {
    if (this.originNs === 0n || attempts >= this.limit) return 0n
    return this.originNs + (BigInt(attempts) * NS_PER_S + this.#rate - 1n) / this.#rate
  }

  /** After time away (a reconnection): the schedule resumes at nowNs where it stopped, no burst of missed orders. */
  resume(attempts: number, nowNs: bigint): void {
    this.originNs = nowNs - (BigInt(attempts) * NS_PER_S) / this.#rate
  }
}
