// What ab-feed sends on each line: a deterministic plan from a seed, with the impairments real lines
// show (no netem here), and the truth a test compares the arbitrator's report with.
import { sequenceBits, streamName, type FeedFormat } from './format.js'

export interface LineImpairments {
  /** Probability that a packet is lost on this line (independently of the other line). */
  loss: number
  /** Probability that a loss burst starts at a packet, and its length in packets. */
  burstProb: number
  burstLength: number
  /** Probability that a packet is sent twice on this line. */
  dup: number
  /** Probability that a packet swaps places with one up to reorderDistance later. */
  reorder: number
  reorderDistance: number
}

export interface PlanOptions {
  format: FeedFormat
  seed: number
  /** Sequence numbers per stream. */
  count: number
  streams: number
  /** First sequence number of every stream (wraps at the format's width). */
  startSeq: bigint
  /** Probability that a packet is withheld from both lines (a true gap). */
  gapProb: number
  a: LineImpairments
  b: LineImpairments
  /** Packets line B lags line A by (negative: A lags B). */
  delayB: number
  /**
   * Alternating outages: blocks of this many sequence numbers are carried by one line only, A and B
   * taking turns (A loses the first block, B the second, …); 0 = off.
   */
  alternate?: number
}

export const NO_IMPAIRMENTS: LineImpairments = { loss: 0, burstProb: 0, burstLength: 0, dup: 0, reorder: 0, reorderDistance: 0 }

/** mulberry32: small, fast, and the same on every machine. */
export function rng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export interface LineTruth {
  /** Packets in the line's send list (duplicates included). */
  planned: number
  /** Sequence numbers this line withheld (random loss + bursts + true gaps). */
  dropped: number
  duplicated: number
  reordered: number
}

export interface Plan {
  /** Item k = stream (k % streams), sequence offset floor(k / streams). Send order per line. */
  lineA: Uint32Array
  lineB: Uint32Array
  streams: number
  truthA: LineTruth
  truthB: LineTruth
  /** Items missing from both lines, ascending. */
  withheld: number[]
  /** count × streams. */
  items: number
}

function lineList(items: number, keep: (k: number) => boolean, imp: LineImpairments, random: () => number, truth: LineTruth): Uint32Array {
  const out: number[] = []
  let burstLeft = 0
  for (let k = 0; k < items; k++) {
    if (burstLeft === 0 && imp.burstProb > 0 && random() < imp.burstProb) burstLeft = imp.burstLength
    const lost = burstLeft > 0 || (imp.loss > 0 && random() < imp.loss)
    if (burstLeft > 0) burstLeft--
    if (!keep(k) || lost) {
      truth.dropped++
      continue
    }
    out.push(k)
    if (imp.dup > 0 && random() < imp.dup) {
      out.push(k)
      truth.duplicated++
    }
  }
  const list = Uint32Array.from(out)
  if (imp.reorder > 0 && imp.reorderDistance > 0) {
    for (let i = 0; i < list.length; i++) {
      if (random() >= imp.reorder) continue
      const j = Math.min(list.length - 1, i + 1 + Math.floor(random() * imp.reorderDistance))
      if (j === i) continue
      const t = list[i]!
      list[i] = list[j]!
      list[j] = t
      truth.reordered++
    }
  }
  truth.planned = list.length
  return list
}

export function makePlan(o: PlanOptions): Plan {
  const items = o.count * o.streams
  const random = rng(o.seed)
  const gap = new Uint8Array(items)
  for (let k = 0; k < items; k++) if (o.gapProb > 0 && random() < o.gapProb) gap[k] = 1
  const truthA: LineTruth = { planned: 0, dropped: 0, duplicated: 0, reordered: 0 }
  const truthB: LineTruth = { planned: 0, dropped: 0, duplicated: 0, reordered: 0 }
  const block = (k: number) => (o.alternate ? Math.floor(Math.floor(k / o.streams) / o.alternate) % 2 : -1)
  const lineA = lineList(items, (k) => !gap[k] && block(k) !== 0, o.a, random, truthA)
  const lineB = lineList(items, (k) => !gap[k] && block(k) !== 1, o.b, random, truthB)
  const seen = new Uint8Array(items)
  for (const k of lineA) seen[k] = 1
  for (const k of lineB) seen[k] = 1
  const withheld: number[] = []
  for (let k = 0; k < items; k++) if (!seen[k]) withheld.push(k)
  return { lineA, lineB, streams: o.streams, truthA, truthB, withheld, items }
}

/**
 * The truth of a run that stopped early (--duration, a signal) after sending the first sentA items of
 * line A's list and sentB of line B's: a number counts as withheld (or dropped by a line) only below
 * the highest number of its stream that was sent (on either line, or on that line) — what an arbitrator
 * can know of. `planned` stays the whole plan's.
 */
export function partialTruth(plan: Plan, sentA: number, sentB: number): { A: LineTruth; B: LineTruth; withheld: number[]; union: number } {
  const { items, streams } = plan
  const sent = (list: Uint32Array, n: number) => {
    const seen = new Uint8Array(items)
    const highest = new Float64Array(streams).fill(-1)
    let duplicated = 0
    let reordered = 0
    let max = -1
    for (let i = 0; i < n; i++) {
      const k = list[i]!
      if (seen[k]) duplicated++
      else if (k < max) reordered++
      seen[k] = 1
      if (k > max) max = k
      if (k > highest[k % streams]!) highest[k % streams] = k
    }
    return { seen, highest, duplicated, reordered }
  }
  const a = sent(plan.lineA, sentA)
  const b = sent(plan.lineB, sentB)
  const truth = (line: typeof a, planned: number): LineTruth => {
    let dropped = 0
    for (let k = 0; k < items; k++) if (!line.seen[k] && k < line.highest[k % streams]!) dropped++
    return { planned, dropped, duplicated: line.duplicated, reordered: line.reordered }
  }
  const withheld: number[] = []
  let union = 0
  for (let k = 0; k < items; k++) {
    if (a.seen[k] || b.seen[k]) union++
    else if (k < Math.max(a.highest[k % streams]!, b.highest[k % streams]!)) withheld.push(k)
  }
  return { A: truth(a, plan.lineA.length), B: truth(b, plan.lineB.length), withheld, union }
}

/** Stream index and wrapped sequence number of a plan item. */
export function itemSequence(o: Pick<PlanOptions, 'format' | 'startSeq' | 'streams'>, k: number): { stream: number; sequence: bigint } {
  const stream = k % o.streams
  const sequence = BigInt.asUintN(sequenceBits(o.format), o.startSeq + BigInt(Math.floor(k / o.streams)))
  return { stream, sequence }
}

/** Withheld items as per-stream runs of consecutive sequence numbers (wrapped), the shape of gap events. */
export function withheldRanges(o: Pick<PlanOptions, 'format' | 'startSeq' | 'streams'>, withheld: readonly number[]): { stream: string; from: bigint; to: bigint; count: number }[] {
  const perStream = new Map<number, number[]>()
  for (const k of withheld) {
    const s = k % o.streams
    const list = perStream.get(s) ?? []
    list.push(Math.floor(k / o.streams))
    perStream.set(s, list)
  }
  const bits = sequenceBits(o.format)
  const ranges: { stream: string; from: bigint; to: bigint; count: number }[] = []
  for (const [s, offsets] of [...perStream.entries()].sort((x, y) => x[0] - y[0])) {
    let start = offsets[0]!
    let prev = start
    const close = () =>
      ranges.push({
        stream: streamName(o.format, s),
        from: BigInt.asUintN(bits, o.startSeq + BigInt(start)),
        to: BigInt.asUintN(bits, o.startSeq + BigInt(prev)),
        count: prev - start + 1,
      })
    for (const off of offsets.slice(1)) {
      if (off === prev + 1) {
        prev = off
        continue
      }
      close()
      start = prev = off
    }
    close()
  }
  return ranges
}
