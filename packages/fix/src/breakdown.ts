// Where an order's time goes, per order, from timestamps the run takes anyway (process.hrtime and the native
// CLOCK_MONOTONIC stamps: one clock): decided (the session builds the NewOrderSingle) → on the wire (its first
// frame handed to the TX ring, or the kernel socket took it) → our RX (the frames carrying its ExecutionReport
// taken) → matched (the report parsed and matched by ClOrdID). The stages add up to the order's latency; the
// acceptor's share (its read → write) is in its own end event, inside wireToRx.
import { LatencyHistogram } from '@kbx/stats'

const STAGES = ['decidedToWire', 'wireToRx', 'rxToMatched', 'total'] as const
type Stage = (typeof STAGES)[number]

/** Orders decided, not yet stamped on the wire, kept at most (a transport that never stamps stays bounded). */
const UNWIRED_CAP = 65536

export class OrderBreakdown {
  readonly stages: Record<Stage, LatencyHistogram> = Object.fromEntries(STAGES.map((s) => [s, new LatencyHistogram()])) as Record<Stage, LatencyHistogram>
  /** --rate: each order's deadline → decided (how late the pacing woke; not part of total). */
  readonly pacingLate = new LatencyHistogram()
  /** Orders matched without every stamp (sent before a reconnection, or by the reflex): not in the stages. */
  unstamped = 0
  /** When the bytes the session is reading now were received (0n: unknown). */
  rxNs = 0n
  readonly #decided = new Map<number, bigint>()
  #unwired: number[] = []
  readonly #wire = new Map<number, bigint>()

  /** The session wrote this order (decidedNs: when it began to build it). */
  decided(clOrdId: number, decidedNs: bigint): void {
    if (this.#unwired.length >= UNWIRED_CAP) return
    this.#decided.set(clOrdId, decidedNs)
    this.#unwired.push(clOrdId)
  }

  /** Everything decided so far left at wireNs (the transport sent what the session wrote). */
  onWire(wireNs: bigint): void {
    for (const id of this.#unwired) this.#wire.set(id, wireNs)
    this.#unwired = []
  }

  /** A connection lost: stamps of orders in flight would mislead. */
  forget(): void {
    this.#unwired = []
    this.#decided.clear()
    this.#wire.clear()
  }

  /** The order's first ExecutionReport matched at matchedNs. */
  matched(clOrdId: number, matchedNs: bigint): void {
    const decided = this.#decided.get(clOrdId)
    const wire = this.#wire.get(clOrdId)
    this.#decided.delete(clOrdId)
    this.#wire.delete(clOrdId)
    const rx = this.rxNs
    if (decided === undefined || wire === undefined || rx === 0n || !(decided <= wire && wire <= rx && rx <= matchedNs)) {
      this.unstamped++
      return
    }
    this.stages.decidedToWire.record(wire - decided)
    this.stages.wireToRx.record(rx - wire)
    this.stages.rxToMatched.record(matchedNs - rx)
    this.stages.total.record(matchedNs - decided)
  }

  /** The end event's `breakdownUs`: each stage's percentiles and mean (means add up to total's). */
  summary(): Record<string, unknown> {
    const out: Record<string, unknown> = { orders: this.stages.total.count, unstamped: this.unstamped }
    for (const s of STAGES) out[s] = this.stages[s].summary()
    if (this.pacingLate.count > 0) out['pacingLate'] = this.pacingLate.summary()
    return out
  }
}
