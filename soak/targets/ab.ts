/**
 * ab: ab-feed (in the namespace, both lines over AF_XDP, as fast as it can) with random loss on both
 * lines, reordering, duplicates, a delayed line B and numbers withheld from both lines, into ab-arbitrate
 * (root namespace, XDP + AF_XDP). The `ab` topology of setup_net.sh with unique names: one namespace, two
 * veth pairs. Accounting: delivered == the feeder's union, the gap events == the withheld ranges on both
 * lines, no duplicate delivered, every frame sent on a line arbitrated, every UMEM frame accounted. At
 * full rate on a loaded machine the arbitrator's AF_XDP sockets can run out of fill frames for a few
 * milliseconds (the kernel counts each frame it drops): those numbers are accounted as dropped, so the
 * checks read delivered + dropped == union and lost == withheld + dropped + afterGap (numbers whose copy
 * came more than the window late, after their hole was reported), with neither the exact equalities; the
 * verdict's values show how many.
 *
 * ab-feed plans its whole feed up front (about 20 bytes per number), so a long soak runs it in rounds of
 * --ab-round-seconds at the planned rate: each round a new feeder continues the sequence numbers where
 * the last one ended (--start-seq), with its own seed; the arbitrator runs throughout. The truth is the
 * sum of the rounds' (the last one stopped by a signal: the truth of what it sent).
 */
import { check } from '../verdict.js'
import type { Check } from '../verdict.js'
import { exitProblem, latest, started, stopTool, tail } from '../harness.js'
import type { ToolRun } from '@kbx/testbed'
import type { Accounting, SoakContext, Target, TargetRun } from '../harness.js'
import { umemChecks } from './umem.js'

const ARBITRATE = 'packages/ab/src/bin-ab-arbitrate.ts'
const FEED = 'packages/ab/src/bin-ab-feed.ts'

export interface AbSoakOptions {
  /** Sequence numbers per second a round's plan is sized for (the feeder sends as fast as it can). */
  plannedPps: number
  /** Seconds of a round at plannedPps. */
  roundSeconds: number
  /** Sequence numbers per second, all streams (0: as fast as possible). */
  rate: number
  streams: number
  seed: number
}

export const AB_DEFAULTS: AbSoakOptions = { plannedPps: 300_000, roundSeconds: 60, rate: 0, streams: 4, seed: 7 }

/** The impairments: every kind the accounting must see through. */
export const AB_IMPAIRMENTS = ['--loss-a', '0.01', '--loss-b', '0.01', '--burst-a', '0.0002:20', '--reorder-a', '0.001:8', '--reorder-b', '0.01:16', '--dup-b', '0.001', '--delay-b', '32', '--gap', '0.0002']

interface Range {
  stream: string
  from: number | string
  to: number | string
}

const rangeKey = (r: Range): string => `${r.stream}:${r.from}-${r.to}`

/** Ranges per stream in order, adjacent ones joined (a hole at the end of one round and the start of the next is one gap). */
export function mergeRanges(ranges: readonly Range[]): Range[] {
  const sorted = [...ranges].sort((x, y) => (x.stream < y.stream ? -1 : x.stream > y.stream ? 1 : Number(BigInt(x.from) - BigInt(y.from))))
  const merged: Range[] = []
  for (const r of sorted) {
    const last = merged[merged.length - 1]
    if (last && last.stream === r.stream && BigInt(last.to) + 1n === BigInt(r.from)) last.to = r.to
    else merged.push({ stream: r.stream, from: r.from, to: r.to })
  }
  return merged
}

/** Ranges by stream, sorted (merged ranges do not overlap), for binary search. */
function byStream(ranges: readonly Range[]): Map<string, Range[]> {
  const map = new Map<string, Range[]>()
  for (const r of ranges) {
    const list = map.get(r.stream) ?? []
    list.push(r)
    map.set(r.stream, list)
  }
  return map
}

/** The last range of the sorted list whose start is ≤ at (or that is at ≥ from, with atOrAfter). */
function search(list: readonly Range[], at: bigint, atOrAfter: boolean): Range | undefined {
  let lo = 0
  let hi = list.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (atOrAfter ? BigInt(list[mid]!.from) < at : BigInt(list[mid]!.from) <= at) lo = mid + 1
    else hi = mid
  }
  return atOrAfter ? list[lo] : list[lo - 1]
}

/** Does r lie inside one of the ranges (merged, by stream)? */
function inside(r: Range, outer: Map<string, Range[]>): boolean {
  const o = search(outer.get(r.stream) ?? [], BigInt(r.from), false)
  return o !== undefined && BigInt(r.to) <= BigInt(o.to)
}

/** Does r hold one of the ranges (merged, by stream)? */
function holdsOne(r: Range, inner: Map<string, Range[]>): boolean {
  const i = search(inner.get(r.stream) ?? [], BigInt(r.from), true)
  return i !== undefined && BigInt(i.to) <= BigInt(r.to)
}

/**
 * Compares the gap events with the withheld ranges: every withheld range lies inside a gap, and the gaps
 * hold no more numbers than were withheld, plus what the AF_XDP sockets dropped (won in XDP, lost for
 * want of a fill frame), plus what arrived after its hole was reported (afterGap: a copy that came more
 * than the window late). With neither, the gaps are exactly the withheld ranges.
 */
export function gapCheck(gapEvents: Range[], withheldRanges: Range[], lost: number, withheldCount: number, dropped: number, afterGap = 0): { checks: Check[]; uncovered: string[]; extra: string[] } {
  const gaps = mergeRanges(gapEvents)
  const withheld = mergeRanges(withheldRanges)
  const gapsByStream = byStream(gaps)
  const withheldByStream = byStream(withheld)
  const uncovered = withheld.filter((w) => !inside(w, gapsByStream)).map(rangeKey)
  const extra = gaps.filter((g) => !holdsOne(g, withheldByStream)).map(rangeKey)
  const gapNumbers = gapEvents.reduce((sum, g) => sum + BigInt(g.to) - BigInt(g.from) + 1n, 0n)
  return {
    checks: [
      { what: 'every withheld range inside a gap event', left: `${withheld.length - uncovered.length} of ${withheld.length} covered`, right: `${withheld.length} of ${withheld.length} covered`, ok: uncovered.length === 0 },
      check('numbers in gap events == lost', gapNumbers, lost),
      check('lost == withheld + dropped by the sockets + delivered after their gap', lost, withheldCount + dropped + afterGap),
    ],
    uncovered: uncovered.slice(0, 5),
    extra: extra.slice(0, 5),
  }
}

interface Round {
  run: ToolRun
  startSeq: bigint
}

/** The feeder's rounds: each new one starts when the last ends its plan; stop() ends the current one. */
class FeedRounds {
  readonly rounds: Round[] = []
  private stopping = false
  failed: string | undefined

  constructor(
    private readonly ctx: SoakContext,
    private readonly ns: string,
    private readonly argsFor: (round: number, startSeq: bigint) => string[],
    private readonly processes: Record<string, ToolRun>,
    private readonly perStream: number,
  ) {}

  get current(): ToolRun | undefined {
    return this.rounds[this.rounds.length - 1]?.run
  }

  async begin(startSeq: bigint): Promise<void> {
    const round = this.rounds.length
    const run = this.ctx.spawnTool(this.ns, FEED, this.argsFor(round, startSeq))
    this.rounds.push({ run, startSeq })
    this.processes['ab-feed'] = run
    run.child.once('exit', (code) => {
      if (this.stopping) return
      if (code !== 0) {
        this.failed = `ab-feed round ${round + 1} exited ${code ?? run.child.signalCode}: ${tail(run.stderr())}`
        return
      }
      // The plan is done: the next round continues the sequence numbers (spawned now, so no sample sees the gap).
      this.begin(startSeq + BigInt(this.perStream)).catch((err: unknown) => (this.failed = `ab-feed round ${round + 2}: ${(err as Error).message}`))
    })
    await started(`ab-feed round ${round + 1}`, run, 120_000)
  }

  /** Ends the current round (SIGINT: it reports the truth of what it sent) and returns every round's exit problems. */
  async stop(): Promise<string[]> {
    this.stopping = true
    const problems: string[] = []
    const last = this.current
    if (last) problems.push(...exitProblem('ab-feed (last round)', await stopTool(last, 'SIGINT', 30_000), last))
    if (this.failed) problems.push(this.failed)
    return problems
  }
}

/** The rounds' truths added up: union, withheld ranges and count, frames sent per line. */
function sumTruths(rounds: readonly Round[]): { union: number; withheldCount: number; ranges: Range[]; sentA: bigint; sentB: bigint; droppedA: number; droppedB: number; complete: number; missing: number } {
  const sum = { union: 0, withheldCount: 0, ranges: [] as Range[], sentA: 0n, sentB: 0n, droppedA: 0, droppedB: 0, complete: 0, missing: 0 }
  for (const { run } of rounds) {
    const truth = latest(run, 'end')?.data
    if (!truth) {
      sum.missing++
      continue
    }
    sum.union += truth['union'] as number
    sum.withheldCount += truth['withheld']['count'] as number
    sum.ranges.push(...((truth['withheld']['ranges'] ?? []) as Range[]))
    sum.sentA += BigInt(truth['lines']['A'].sent)
    sum.sentB += BigInt(truth['lines']['B'].sent)
    sum.droppedA += truth['lines']['A'].dropped as number
    sum.droppedB += truth['lines']['B'].dropped as number
    if (truth['complete']) sum.complete++
  }
  return sum
}

export function abTarget(o: AbSoakOptions = AB_DEFAULTS): Target {
  return {
    name: 'ab',
    async start(ctx: SoakContext): Promise<TargetRun> {
      const ns = ctx.net.addNamespace()
      const a = ctx.net.addVethPair({ b: { netns: ns } })
      const b = ctx.net.addVethPair({ b: { netns: ns } })
      const arb = ctx.spawnTool(null, ARBITRATE, [a.a.name, b.a.name, '--interval', String(ctx.sampleSec), '--duration', String(ctx.loadSeconds + 600)])
      await started('ab-arbitrate', arb)
      const perStream = Math.min(50_000_000, Math.ceil((o.plannedPps * Math.min(o.roundSeconds, ctx.loadSeconds)) / o.streams))
      const processes: Record<string, ToolRun> = { 'ab-arbitrate': arb }
      const feedArgs = (round: number, startSeq: bigint) => [
        a.b.name, b.b.name, '--dst-a', a.a.ip!, '--dst-b', b.a.ip!,
        '--count', String(perStream), '--streams', String(o.streams), '--start-seq', String(startSeq), '--rate', String(o.rate),
        '--seed', String(o.seed + round), '--duration', String(ctx.loadSeconds + 600), '--interval', String(ctx.sampleSec), ...AB_IMPAIRMENTS,
      ]
      const rounds = new FeedRounds(ctx, ns, feedArgs, processes, perStream)
      await rounds.begin(1n)
      return {
        processes,
        selfEnding: [],
        counters: () => {
          const i = latest(arb, 'interval')?.data
          const f = rounds.current && latest(rounds.current, 'interval')?.data
          return {
            'ab-arbitrate': i && { delivered: i['delivered'], pps: i['pps'], gaps: i['gaps'], lost: i['lost'], duplicatesDelivered: i['duplicatesDelivered'], lateFills: i['lateFills'], xsk: i['xsk'] },
            'ab-feed': { round: rounds.rounds.length, ...(f ? { sent: f['sent'] } : {}) },
          }
        },
        umem: () => latest(arb, 'interval')?.data['umem'],
        finish: async (): Promise<Accounting> => {
          const problems = await rounds.stop()
          const truth = sumTruths(rounds.rounds)
          if (truth.missing > 0) problems.push(`${truth.missing} ab-feed round(s) printed no end event`)
          const delivered = () => Number(latest(arb, 'interval')?.data['delivered'] ?? 0)
          const deadline = Date.now() + 30_000
          while (delivered() < truth.union && Date.now() < deadline && arb.child.exitCode === null) await new Promise((r) => setTimeout(r, 200))
          problems.push(...exitProblem('ab-arbitrate', await stopTool(arb, 'SIGINT', 30_000), arb))
          const end = latest(arb, 'end')?.data
          if (!end) return { checks: [], values: {}, problems: [...problems, 'no end event from ab-arbitrate'] }
          const gaps = arb.events.filter((e) => e.event === 'gap').map((e) => e.data as Range)
          const xsk = end['xsk'] as { rxDropped: number; rxRingFull: number }
          const dropped = Number(xsk.rxDropped) + Number(xsk.rxRingFull)
          const gap = gapCheck(gaps, truth.ranges, Number(end['lost']), truth.withheldCount, dropped, Number(end['afterGap']))
          const lines = end['lines']
          const arbitrated = (l: { won: number; duplicatesDropped: number; stale: number }) => BigInt(l.won) + BigInt(l.duplicatesDropped) + BigInt(l.stale)
          const checks = [
            check('delivered + dropped by the sockets == union', BigInt(end['delivered']) + BigInt(dropped), truth.union),
            ...gap.checks,
            check('duplicatesDelivered == 0', end['duplicatesDelivered'], 0),
            check('won A + won B == union', BigInt(lines['A'].won) + BigInt(lines['B'].won), truth.union),
            check('A: won + duplicates + stale == sent', arbitrated(lines['A']), truth.sentA),
            check('B: won + duplicates + stale == sent', arbitrated(lines['B']), truth.sentB),
            ...umemChecks('ab-arbitrate', end['umem']),
          ]
          return {
            checks,
            values: {
              rounds: rounds.rounds.length,
              roundsComplete: truth.complete,
              union: truth.union,
              delivered: end['delivered'],
              droppedBySockets: dropped,
              afterGap: end['afterGap'],
              withheld: truth.withheldCount,
              gapEvents: gaps.length,
              lost: end['lost'],
              duplicatesDelivered: end['duplicatesDelivered'],
              lateFills: end['lateFills'],
              lines: { A: { ...lines['A'], sent: truth.sentA, droppedByFeed: truth.droppedA }, B: { ...lines['B'], sent: truth.sentB, droppedByFeed: truth.droppedB } },
              busy: end['busy'],
              xsk: end['xsk'],
              umem: end['umem'],
              ...(gap.uncovered.length || gap.extra.length ? { withheldNotInGaps: gap.uncovered, gapsBeyondWithheld: gap.extra } : {}),
            },
            problems,
          }
        },
      }
    },
  }
}
