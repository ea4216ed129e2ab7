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
  /** Sequence numbers per stream (0: no end; plan it chunk by chunk). */
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
  /**
   * Every stream restarts after every restartEvery of its numbers (0 = never): optiq's numbering starts
   * again at restartSeq; a mold stream ends its session (an end-of-session packet on both lines) and goes
   * on in a new session (a new name) from restartSeq.
   */
  restartEvery?: number
  /** First number after a restart (default 1). */
  restartSeq?: bigint
}

/** A list entry with this bit is the end-of-session packet after item (entry & ~END_OF_SESSION). */
export const END_OF_SESSION = 0x8000_0000

/** The session (restart segment) of a plan item and whether it is the last number of it. */
export function segmentOf(o: Pick<PlanOptions, 'streams' | 'count' | 'restartEvery'>, k: number): { segment: number; last: boolean } {
  const every = o.restartEvery ?? 0
  return { segment: every > 0 ? Math.floor(Math.floor(k / o.streams) / every) : 0, last: lastOfSegment(o, k) }
}

/** Whether a plan item is the last number of its session (segmentOf's `last`, without an object per item). */
function lastOfSegment(o: Pick<PlanOptions, 'streams' | 'count' | 'restartEvery'>, k: number): boolean {
  const offset = Math.floor(k / o.streams)
  const every = o.restartEvery ?? 0
  return offset === o.count - 1 || (every > 0 && (offset + 1) % every === 0)
}

export const NO_IMPAIRMENTS: LineImpairments = { loss: 0, burstProb: 0, burstLength: 0, dup: 0, reorder: 0, reorderDistance: 0 }

/** Random draws are uniform integers 0 .. RANDOM_RANGE − 1: small integers, so a draw allocates nothing. */
export const RANDOM_RANGE = 2 ** 30

/**
 * mulberry32 (its top 30 bits): small, fast, and the same on every machine. A class rather than a closure:
 * every chunk's generator shares one shape, so the optimized plan loops that call it stay valid.
 */
export class Random {
  private state: number

  constructor(seed: number) {
    this.state = seed | 0
  }

  /** A uniform integer 0 .. RANDOM_RANGE − 1. */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) | 0
    let t = this.state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return (t ^ (t >>> 14)) >>> 2
  }
}

/** The draw below which an event of probability p happens: `random.next() < chance(p)`. */
export function chance(p: number): number {
  return Math.round(p * RANDOM_RANGE)
}

export interface LineTruth {
  /** Packets in the line's send list (duplicates and end-of-session packets included). */
  planned: number
  /** Mold end-of-session packets in it (not sequence numbers). */
  endOfSession: number
  /** Sequence numbers this line withheld (random loss + bursts + true gaps). */
  dropped: number
  duplicated: number
  reordered: number
}

export interface Plan {
  /**
   * Item k = stream (k % streams), sequence offset first + floor(k / streams): its global item number is
   * first × streams + k (globalItem). Send order per line.
   */
  lineA: Uint32Array
  lineB: Uint32Array
  streams: number
  truthA: LineTruth
  truthB: LineTruth
  /** Items missing from both lines, ascending. */
  withheld: number[]
  /** Numbers per stream in this plan (a chunk of the run) × streams. */
  items: number
  /** Sequence offset of the chunk's first numbers (0 for a plan of the whole run). */
  first: number
  /** Restarts of all streams (segment boundaries crossed) up to the end of this chunk. */
  restarts: number
}

/** A chunk of a run: numbers first..first + count − 1 of every stream. */
export interface PlanChunk {
  first: number
  count: number
}

export function globalItem(plan: Pick<Plan, 'first' | 'streams'>, k: number): number {
  return plan.first * plan.streams + k
}

/** Numbers (all streams) planned at a time by default: a chunk's plan and schedule take about 20 bytes a number. */
export const DEFAULT_PLAN_CHUNK = 1 << 18

/**
 * The chunks a run is planned in (count 0: a run without end, chunk after chunk), so that memory stays bounded however long it runs: about `perChunk`
 * numbers (all streams together) each, made on demand.
 */
export function planChunks(count: number, streams: number, perChunk = DEFAULT_PLAN_CHUNK): { length: number; at(index: number): PlanChunk } {
  const size = Math.max(1, Math.floor(perChunk / streams))
  return {
    length: count === 0 ? Infinity : Math.ceil(count / size),
    at: (index: number) => ({ first: index * size, count: count === 0 ? size : Math.min(size, count - index * size) }),
  }
}

/** What the plan decided for an item before the lines are drawn (one byte per item of a chunk). */
const ITEM_WITHHELD = 1 // a true gap: on neither line
const ITEM_ANCHOR = 2 // the last number of its session or chunk: always on line A
const ITEM_END_AFTER = 4 // the end-of-session packet follows it on every line (mold restarts)
const ITEM_OFF_A = 8 // line A's turn off in alternating outages
const ITEM_OFF_B = 16

/** Which item bits keep a line from carrying an item, and which make it carry it whatever its losses. */
interface LineRules {
  off: number
  force: number
}

/** A list of uint32 entries that grows by doubling and keeps its buffer when cleared: a line's list, chunk after chunk. */
class EntryList {
  private entries = new Uint32Array(16)
  length = 0

  /** Empties the list, with room for `capacity` entries (and some to spare). */
  clear(capacity: number): void {
    if (this.entries.length < capacity) this.entries = new Uint32Array(capacity + (capacity >> 3))
    this.length = 0
  }

  push(entry: number): void {
    if (this.length === this.entries.length) {
      const grown = new Uint32Array(this.entries.length * 2)
      grown.set(this.entries)
      this.entries = grown
    }
    this.entries[this.length++] = entry
  }

  /** The entries: a view of the buffer, valid until the list is cleared. */
  view(): Uint32Array {
    return this.entries.subarray(0, this.length)
  }
}

/** A buffer reused for arrays of up to its size: zeroed views of it. */
export class ReusedArray<T extends Uint8Array | Uint32Array> {
  private buffer: T

  constructor(private readonly make: (length: number) => T) {
    this.buffer = make(0)
  }

  /** `length` zeroed elements, valid until the next call. */
  zeroed(length: number): T {
    // Room to spare: a chunk's lists vary in length, and each new longest one must not make a new buffer.
    if (this.buffer.length < length) this.buffer = this.make(length + (length >> 3))
    const view = this.buffer.subarray(0, length) as T
    view.fill(0)
    return view
  }
}

/**
 * The buffers a run's chunks are planned in, reused chunk after chunk, so that planning allocates nothing
 * large once the first chunk is made (no heap that grows by fragments of freed chunks). A plan made in a
 * workspace is valid until the next plan made in it.
 */
export class PlanWorkspace {
  readonly lineA = new EntryList()
  readonly lineB = new EntryList()
  readonly items = new ReusedArray((n) => new Uint8Array(n))
  readonly seen = new ReusedArray((n) => new Uint8Array(n))
  readonly endsUpTo = new ReusedArray((n) => new Uint32Array(n))
}

function lineList(items: number, flags: Uint8Array, rules: LineRules, imp: LineImpairments, random: Random, truth: LineTruth, out: EntryList, scratch: ReusedArray<Uint32Array>): Uint32Array {
  out.clear(items + (items >> 4))
  const burstAt = chance(imp.burstProb)
  const lossAt = chance(imp.loss)
  const dupAt = chance(imp.dup)
  let burstLeft = 0
  for (let k = 0; k < items; k++) {
    if (burstLeft === 0 && imp.burstProb > 0 && random.next() < burstAt) burstLeft = imp.burstLength
    const lost = burstLeft > 0 || (imp.loss > 0 && random.next() < lossAt)
    if (burstLeft > 0) burstLeft--
    const f = flags[k]!
    if (!(f & rules.force) && (f & rules.off || lost)) {
      truth.dropped++
    } else {
      out.push(k)
      if (imp.dup > 0 && random.next() < dupAt) {
        out.push(k)
        truth.duplicated++
      }
    }
    if (f & ITEM_END_AFTER) {
      out.push(k | END_OF_SESSION)
      truth.endOfSession++
    }
  }
  const list = out.view()
  if (imp.reorder > 0 && imp.reorderDistance > 0) {
    // An end of session stays after every number sent before it and before every number sent after it:
    // no swap crosses one (endsUpTo[i]: ends of session at positions <= i).
    const endsUpTo = scratch.zeroed(list.length)
    for (let i = 0, n = 0; i < list.length; i++) endsUpTo[i] = n += list[i]! & END_OF_SESSION ? 1 : 0
    const reorderAt = chance(imp.reorder)
    for (let i = 0; i < list.length; i++) {
      if (random.next() >= reorderAt) continue
      const j = Math.min(list.length - 1, i + 1 + Math.floor((random.next() * imp.reorderDistance) / RANDOM_RANGE))
      if (j === i || (list[i]! | list[j]!) & END_OF_SESSION || endsUpTo[i] !== endsUpTo[j]) continue
      const t = list[i]!
      list[i] = list[j]!
      list[j] = t
      truth.reordered++
    }
  }
  truth.planned = list.length
  return list
}

// The per-item loops of a plan live in small functions of their own, so that the optimized code of each
// stays valid from chunk to chunk: a loop optimized inside makePlan is thrown away every chunk, and the
// unoptimized code boxes a number per entry (garbage that makes the feeder's heap swing).

function markCarried(list: Uint32Array, seen: Uint8Array): void {
  for (let i = 0; i < list.length; i++) if (!(list[i]! & END_OF_SESSION)) seen[list[i]!] = 1
}

function notCarried(seen: Uint8Array): number[] {
  const out: number[] = []
  for (let k = 0; k < seen.length; k++) if (!seen[k]) out.push(k)
  return out
}

/** Each item's ITEM_* bits for a chunk; draws the true gaps (one draw per item while gapProb > 0). */
function itemFlags(o: PlanOptions, chunk: PlanChunk, random: Random, flags: Uint8Array): Uint8Array {
  const every = o.restartEvery ?? 0
  const moldRestarts = o.format === 'moldudp64' && every > 0
  const gapAt = chance(o.gapProb)
  for (let k = 0; k < flags.length; k++) {
    const inChunk = Math.floor(k / o.streams)
    const offset = chunk.first + inChunk
    const lastOfSession = offset === o.count - 1 || (every > 0 && (offset + 1) % every === 0)
    const anchor = inChunk === chunk.count - 1 || lastOfSession
    let f = anchor ? ITEM_ANCHOR : 0
    if (o.gapProb > 0 && random.next() < gapAt && !anchor) f |= ITEM_WITHHELD
    if (moldRestarts && lastOfSession && offset !== o.count - 1) f |= ITEM_END_AFTER
    if (o.alternate) f |= Math.floor(offset / o.alternate) % 2 === 0 ? ITEM_OFF_A : ITEM_OFF_B
    flags[k] = f
  }
  return flags
}

/**
 * The plan of a run, or of one chunk of it (every chunk has its own random sequence, so a chunk is planned
 * without the ones before it), in the workspace's buffers (a run's chunks: one workspace, reused). The last number of every session and of every chunk of every stream is an
 * anchor: never withheld, always on line A, so that every withheld number lies below one the arbitrator
 * receives and can be reported as a gap, wherever the run stops.
 */
export function makePlan(o: PlanOptions, chunk: PlanChunk = { first: 0, count: o.count }, workspace = new PlanWorkspace()): Plan {
  const items = chunk.count * o.streams
  if (items >= END_OF_SESSION) throw new RangeError(`a plan chunk holds at most ${END_OF_SESSION - 1} numbers (count × streams)`)
  const random = new Random(chunk.first === 0 ? o.seed : (o.seed ^ Math.imul(chunk.first, 0x9e3779b1) ^ Math.imul(Math.floor(chunk.first / 2 ** 32), 0x85ebca6b)) >>> 0)
  const flags = itemFlags(o, chunk, random, workspace.items.zeroed(items))
  const truthA: LineTruth = { planned: 0, endOfSession: 0, dropped: 0, duplicated: 0, reordered: 0 }
  const truthB: LineTruth = { planned: 0, endOfSession: 0, dropped: 0, duplicated: 0, reordered: 0 }
  const lineA = lineList(items, flags, { off: ITEM_WITHHELD | ITEM_OFF_A, force: ITEM_ANCHOR }, o.a, random, truthA, workspace.lineA, workspace.endsUpTo)
  const lineB = lineList(items, flags, { off: ITEM_WITHHELD | ITEM_OFF_B, force: 0 }, o.b, random, truthB, workspace.lineB, workspace.endsUpTo)
  const seen = workspace.seen.zeroed(items)
  markCarried(lineA, seen)
  markCarried(lineB, seen)
  const withheld = notCarried(seen)
  const every = o.restartEvery ?? 0
  const restarts = every > 0 ? o.streams * Math.floor((chunk.first + chunk.count - 1) / every) : 0
  return { lineA, lineB, streams: o.streams, truthA, truthB, withheld, items, first: chunk.first, restarts }
}

/**
 * The truth of a run that stopped early (--duration, a signal) after sending the first sentA items of
 * line A's list and sentB of line B's: a number counts as withheld (or dropped by a line) only below
 * the highest number of its stream that was sent (on either line, or on that line) — what an arbitrator
 * can know of. `planned` stays the whole plan's.
 */
export function partialTruth(
  plan: Plan,
  sentA: number,
  sentB: number,
  o: Pick<PlanOptions, 'streams' | 'count' | 'restartEvery'> = { streams: plan.streams, count: plan.items / plan.streams },
): { A: LineTruth; B: LineTruth; withheld: number[]; union: number; restarts: number } {
  const { items, streams } = plan
  const sent = (list: Uint32Array, n: number) => {
    const seen = new Uint8Array(items)
    const highest = new Float64Array(streams).fill(-1)
    let duplicated = 0
    let reordered = 0
    let endOfSession = 0
    let max = -1
    for (let i = 0; i < n; i++) {
      if (list[i]! & END_OF_SESSION) {
        endOfSession++
        continue
      }
      const k = list[i]!
      if (seen[k]) duplicated++
      else if (k < max) reordered++
      seen[k] = 1
      if (k > max) max = k
      if (k > highest[k % streams]!) highest[k % streams] = k
    }
    return { seen, highest, duplicated, reordered, endOfSession }
  }
  const a = sent(plan.lineA, sentA)
  const b = sent(plan.lineB, sentB)
  const truth = (line: typeof a, planned: number): LineTruth => {
    let dropped = 0
    for (let k = 0; k < items; k++) if (!line.seen[k] && k < line.highest[k % streams]!) dropped++
    return { planned, endOfSession: line.endOfSession, dropped, duplicated: line.duplicated, reordered: line.reordered }
  }
  const withheld: number[] = []
  let union = 0
  for (let k = 0; k < items; k++) {
    if (a.seen[k] || b.seen[k]) union++
    // Not sent (yet) in this chunk: withheld only below a number of the stream that was sent.
    else if (k < Math.max(a.highest[k % streams]!, b.highest[k % streams]!)) withheld.push(k)
  }
  // Restarts the arbitrator saw: the session of each stream's highest number sent.
  let restarts = 0
  for (let s = 0; s < streams; s++) {
    const top = Math.max(a.highest[s]!, b.highest[s]!)
    // Nothing of this stream sent in this chunk yet: its newest is the last of the chunk before.
    if (top >= 0) restarts += segmentOf(o, globalItem(plan, top)).segment
    else if (plan.first > 0) restarts += segmentOf(o, (plan.first - 1) * streams + s).segment
  }
  return { A: truth(a, plan.lineA.length), B: truth(b, plan.lineB.length), withheld, union, restarts }
}

type SequenceOptions = Pick<PlanOptions, 'format' | 'startSeq' | 'streams' | 'count' | 'restartEvery' | 'restartSeq'>

/** Stream index, session (restart segment) and wrapped sequence number of a plan item. */
export function itemSequence(o: SequenceOptions, k: number): { stream: number; session: number; sequence: bigint } {
  const stream = k % o.streams
  const offset = Math.floor(k / o.streams)
  const every = o.restartEvery ?? 0
  const session = every > 0 ? Math.floor(offset / every) : 0
  const first = session === 0 ? o.startSeq : (o.restartSeq ?? 1n)
  const sequence = BigInt.asUintN(sequenceBits(o.format), first + BigInt(offset - session * every))
  return { stream, session, sequence }
}

export interface WithheldRange {
  stream: string
  from: bigint
  to: bigint
  count: number
}

/**
 * Withheld items (global item numbers, ascending) as per-stream (and per-session) runs of consecutive
 * sequence numbers (wrapped), the shape of gap events.
 */
export function withheldRanges(o: SequenceOptions, withheld: readonly number[]): WithheldRange[] {
  const perStream = new Map<number, number[]>()
  for (const k of withheld) {
    const s = k % o.streams
    const list = perStream.get(s) ?? []
    list.push(Math.floor(k / o.streams))
    perStream.set(s, list)
  }
  const every = o.restartEvery ?? 0
  const sessionOf = (offset: number) => (every > 0 ? Math.floor(offset / every) : 0)
  const ranges: WithheldRange[] = []
  for (const [s, offsets] of [...perStream.entries()].sort((x, y) => x[0] - y[0])) {
    let start = offsets[0]!
    let prev = start
    const close = () => {
      const from = itemSequence(o, start * o.streams + s)
      ranges.push({
        stream: streamName(o.format, s, from.session),
        from: from.sequence,
        to: itemSequence(o, prev * o.streams + s).sequence,
        count: prev - start + 1,
      })
    }
    for (const off of offsets.slice(1)) {
      if (off === prev + 1 && sessionOf(off) === sessionOf(prev)) {
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

/** Withheld numbers a run's truth keeps for its list of ranges (8 bytes each); the count goes on beyond. */
export const MAX_WITHHELD_KEPT = 1_000_000

/** The truth of a run planned in chunks, added up chunk by chunk (memory: counts, and the withheld list if kept). */
export class RunTruth {
  readonly A: LineTruth = { planned: 0, endOfSession: 0, dropped: 0, duplicated: 0, reordered: 0 }
  readonly B: LineTruth = { planned: 0, endOfSession: 0, dropped: 0, duplicated: 0, reordered: 0 }
  union = 0
  withheldCount = 0
  restarts = 0
  /** Global item numbers withheld from both lines (kept only when asked for, the first MAX_WITHHELD_KEPT). */
  readonly withheld: number[] = []
  /** Whether `withheld` holds every withheld number. */
  withheldComplete = true

  constructor(
    private readonly keepWithheld: boolean,
    private readonly maxKept = MAX_WITHHELD_KEPT,
  ) {}

  /** Adds a chunk's truth (complete, or the partial truth of the chunk the run stopped in). */
  add(plan: Plan, truth: { A: LineTruth; B: LineTruth; withheld: number[]; union: number; restarts: number }): void {
    for (const [sum, part] of [[this.A, truth.A], [this.B, truth.B]] as const) {
      sum.planned += part.planned
      sum.endOfSession += part.endOfSession
      sum.dropped += part.dropped
      sum.duplicated += part.duplicated
      sum.reordered += part.reordered
    }
    this.union += truth.union
    this.withheldCount += truth.withheld.length
    this.restarts = truth.restarts
    if (!this.keepWithheld) return
    for (const k of truth.withheld) {
      if (this.withheld.length >= this.maxKept) {
        this.withheldComplete = false
        return
      }
      this.withheld.push(globalItem(plan, k))
    }
  }
}
