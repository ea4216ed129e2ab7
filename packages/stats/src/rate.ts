export type Counter = number | bigint
export type Counters = Readonly<Record<string, Counter>>

/** Deltas keep each counter's type: a bigint counter gives a bigint delta. */
export type CounterDeltas<C extends Counters> = { [K in keyof C]: C[K] extends bigint ? bigint : number }
export type CounterRates<C extends Counters> = { [K in keyof C]: number }

export interface RateSample<C extends Counters> {
  /** Time since the previous snapshot (or since construction). */
  elapsedNs: bigint
  seconds: number
  /** The counters as given. */
  totals: C
  /** Increase since the previous snapshot. A counter that went down (reset) counts from 0. */
  deltas: CounterDeltas<C>
  /** Deltas per second. */
  rates: CounterRates<C>
}

/**
 * Turns monotonically increasing counters into per-interval deltas and per-second rates.
 * Time comes from process.hrtime.bigint().
 */
export class RateMeter<C extends Counters = Counters> {
  private previous: Partial<Record<keyof C, Counter>>
  private previousAt: bigint
  private readonly startedAt: bigint
  private readonly now: () => bigint

  constructor(initial: Partial<C> = {}, options: { now?: () => bigint } = {}) {
    this.now = options.now ?? process.hrtime.bigint
    this.previous = { ...initial } as Partial<Record<keyof C, Counter>>
    this.previousAt = this.now()
    this.startedAt = this.previousAt
  }

  /** Nanoseconds since the meter was created. */
  elapsedTotalNs(): bigint {
    return this.now() - this.startedAt
  }

  /** Snapshot `counters`, returning what changed since the previous snapshot. */
  sample(counters: C): RateSample<C> {
    const at = this.now()
    const elapsedNs = at - this.previousAt
    const seconds = Number(elapsedNs) / 1e9
    const deltas = {} as Record<keyof C, Counter>
    const rates = {} as Record<keyof C, number>
    for (const key of Object.keys(counters) as (keyof C)[]) {
      const current = counters[key] as Counter
      const delta = counterDelta(current, this.previous[key])
      deltas[key] = delta
      rates[key] = seconds > 0 ? Number(delta) / seconds : 0
    }
    this.previous = { ...counters }
    this.previousAt = at
    return { elapsedNs, seconds, totals: counters, deltas: deltas as CounterDeltas<C>, rates: rates as CounterRates<C> }
  }
}

function counterDelta(current: Counter, previous: Counter | undefined): Counter {
  if (typeof current === 'bigint') {
    const before = previous === undefined ? 0n : toBigInt(previous)
    return current >= before ? current - before : current
  }
  const before = previous === undefined ? 0 : Number(previous)
  return current >= before ? current - before : current
}

/** Sum of several counter sets (e.g. per-queue counters into one). bigint wins when types mix. */
export function sumCounters(sets: readonly Counters[]): Record<string, Counter> {
  const total: Record<string, Counter> = {}
  for (const set of sets) {
    for (const [key, value] of Object.entries(set)) {
      const prev = total[key]
      if (prev === undefined) total[key] = value
      else if (typeof prev === 'bigint' || typeof value === 'bigint') total[key] = toBigInt(prev) + toBigInt(value)
      else total[key] = prev + value
    }
  }
  return total
}

function toBigInt(value: Counter): bigint {
  return typeof value === 'bigint' ? value : BigInt(Math.trunc(value))
}
