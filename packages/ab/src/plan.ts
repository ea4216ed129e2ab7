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
  const lineA = lineList(items, (k) => !gap[k], o.a, random, truthA)
  const lineB = lineList(items, (k) => !gap[k], o.b, random, truthB)
  const seen = new Uint8Array(items)
  for (const k of lineA) seen[k] = 1
  for (const k of lineB) seen[k] = 1
  const withheld: number[] = []
  for (let k = 0; k < items; k++) if (!seen[k]) withheld.push(k)
  return { lineA, lineB, streams: o.streams, truthA, truthB, withheld }
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
