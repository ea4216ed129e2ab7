// Decoder of the one histogram layout C and XDP record in: bpf/include/kbx_histogram.h. A bucket array
// becomes a Distribution, which summarizeLatency (distribution.ts) turns into the report every tool prints.
import type { HdrConvertible, HdrHistogram } from './hdr.js'
import { newHdrHistogram } from './hdr.js'

/** kbx_histogram.h's buckets for `subBits` sub-bucket bits over values below 2^valueBits. */
export class LogLinearLayout {
  /** KBX_HIST_BUCKETS(subBits, valueBits) */
  readonly length: number
  readonly #middles: Float64Array

  constructor(
    readonly subBits: number,
    readonly valueBits = 64,
  ) {
    if (!Number.isInteger(subBits) || subBits < 0 || subBits > 16 || !Number.isInteger(valueBits) || valueBits <= subBits || valueBits > 64)
      throw new RangeError(`no log-linear layout with ${subBits} sub-bucket bits over ${valueBits}-bit values`)
    this.length = (valueBits - subBits + 1) * 2 ** subBits
    this.#middles = Float64Array.from({ length: this.length }, (_, i) => (Number(this.lower(i)) + Number(this.upper(i))) / 2)
  }

  /** kbx_hist_index: the bucket of a value (0 ≤ value < 2^valueBits). */
  index(value: number | bigint): number {
    const v = typeof value === 'bigint' ? value : BigInt(Math.floor(value))
    if (v < 0n || v >= 1n << BigInt(this.valueBits)) throw new RangeError(`${v} is outside 0..2^${this.valueBits} - 1`)
    if (v < 2n << BigInt(this.subBits)) return Number(v)
    const g = v.toString(2).length - 1 - this.subBits
    return g * 2 ** this.subBits + Number(v >> BigInt(g))
  }

  /** kbx_hist_lower: the smallest value of bucket i. */
  lower(i: number): bigint {
    this.#check(i)
    if (i < 2 ** (this.subBits + 1)) return BigInt(i)
    const g = Math.floor(i / 2 ** this.subBits) - 1
    return BigInt(i - g * 2 ** this.subBits) << BigInt(g)
  }

  /** kbx_hist_upper: the largest value of bucket i. */
  upper(i: number): bigint {
    this.#check(i)
    if (i < 2 ** (this.subBits + 1)) return BigInt(i)
    const g = Math.floor(i / 2 ** this.subBits) - 1
    return this.lower(i) + (1n << BigInt(g)) - 1n
  }

  /** The middle of bucket i's values: what a value in it is reported as. */
  middle(i: number): number {
    this.#check(i)
    return this.#middles[i]!
  }

  #check(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.length) throw new RangeError(`bucket ${i} is outside 0..${this.length - 1}`)
  }
}

/** What the recorder kept exactly beside the buckets (each optional). */
export interface ExactValues {
  minNs?: number | bigint
  maxNs?: number | bigint
  sumNs?: number | bigint
}

const num = (v: number | bigint | undefined): number | undefined => (v === undefined ? undefined : Number(v))

/**
 * Counts per bucket of a LogLinearLayout, with the exact minimum, maximum and sum when the recorder kept
 * them. The smallest and the largest rank are the extremes; any other rank is reported as its bucket's
 * middle, kept within the extremes. Without exact ones, the extremes are the middles of the lowest and
 * highest non-empty buckets, and the mean is the middles'.
 */
export class BucketHistogram implements HdrConvertible {
  readonly counts: Float64Array
  #count = 0
  #min: number | undefined
  #max: number | undefined
  #sum: number | undefined

  constructor(readonly layout: LogLinearLayout) {
    this.counts = new Float64Array(layout.length)
  }

  /** A histogram of a bucket array as C or XDP wrote it. */
  static of(layout: LogLinearLayout, counts: ArrayLike<number | bigint>, exact: ExactValues = {}): BucketHistogram {
    const h = new BucketHistogram(layout)
    h.addCounts(counts, exact)
    return h
  }

  get count(): number {
    return this.#count
  }

  /** Adds every recording of `other` (of the same layout). */
  add(other: BucketHistogram): void {
    if (other.layout.length !== this.layout.length || other.layout.subBits !== this.layout.subBits)
      throw new RangeError('histograms of different layouts')
    this.addCounts(other.counts, { minNs: other.#min, maxNs: other.#max, sumNs: other.#sum })
  }

  /** Adds a bucket array (as long as the layout) and what was kept exactly beside it. */
  addCounts(counts: ArrayLike<number | bigint>, exact: ExactValues = {}): void {
    if (counts.length !== this.layout.length) throw new RangeError(`${counts.length} buckets, the layout has ${this.layout.length}`)
    const wasEmpty = this.#count === 0
    let added = 0
    for (let i = 0; i < counts.length; i++) {
      const c = Number(counts[i])
      if (c === 0) continue
      this.counts[i]! += c
      added += c
    }
    if (added === 0) return
    this.#count += added
    // An exact value stays exact only while every addition brought one.
    const merge = (mine: number | undefined, theirs: number | bigint | undefined, op: (a: number, b: number) => number) =>
      wasEmpty ? num(theirs) : mine === undefined || theirs === undefined ? undefined : op(mine, Number(theirs))
    this.#min = merge(this.#min, exact.minNs, Math.min)
    this.#max = merge(this.#max, exact.maxNs, Math.max)
    this.#sum = merge(this.#sum, exact.sumNs, (a, b) => a + b)
  }

  /** What was recorded after `before` (an earlier state of the same counts); the exact sum, if both kept it. */
  since(before: BucketHistogram): BucketHistogram {
    const d = new BucketHistogram(this.layout)
    const diff = this.counts.map((c, i) => Math.max(c - before.counts[i]!, 0))
    const sumNs = this.#sum !== undefined && before.#sum !== undefined ? this.#sum - before.#sum : undefined
    d.addCounts(diff, sumNs === undefined ? {} : { sumNs })
    return d
  }

  reset(): void {
    this.counts.fill(0)
    this.#count = 0
    this.#min = this.#max = this.#sum = undefined
  }

  #firstBucket(): number {
    return this.counts.findIndex((c) => c > 0)
  }

  #lastBucket(): number {
    return this.counts.findLastIndex((c) => c > 0)
  }

  get minValueNs(): number {
    if (this.#count === 0) return 0
    return this.#min ?? Math.min(this.layout.middle(this.#firstBucket()), this.#max ?? Infinity)
  }

  get maxValueNs(): number {
    if (this.#count === 0) return 0
    return this.#max ?? Math.max(this.layout.middle(this.#lastBucket()), this.#min ?? -Infinity)
  }

  get meanNs(): number {
    if (this.#count === 0) return 0
    if (this.#sum !== undefined) return this.#sum / this.#count
    let sum = 0
    this.counts.forEach((c, i) => {
      if (c > 0) sum += c * this.layout.middle(i)
    })
    return Math.min(Math.max(sum / this.#count, this.minValueNs), this.maxValueNs)
  }

  /** The buckets as an HdrHistogram: each bucket's count at its middle (within the exact extremes), for .hgrm and .hlog files. */
  toHdr(): HdrHistogram {
    const h = newHdrHistogram()
    const min = this.minValueNs
    const max = this.maxValueNs
    this.counts.forEach((c, i) => {
      if (c > 0) h.recordValueWithCount(Math.round(Math.min(Math.max(this.layout.middle(i), min), max)), c)
    })
    return h
  }

  valueAtRankNs(rank: number): number {
    if (rank <= 1) return this.minValueNs
    if (rank >= this.#count) return this.maxValueNs
    let seen = 0
    let i = 0
    for (; i < this.counts.length - 1; i++) {
      seen += this.counts[i]!
      if (seen >= rank) break
    }
    return Math.min(Math.max(this.layout.middle(i), this.minValueNs), this.maxValueNs)
  }
}
