/**
 * ab: ab-feed (in the namespace, both lines over AF_XDP, as fast as it can, `--count 0`: no end, one
 * process for the whole soak, planning chunk by chunk) with random loss on both lines, reordering,
 * duplicates, a delayed line B and numbers withheld from both lines, into ab-arbitrate (root namespace,
 * XDP + AF_XDP). The `ab` topology of setup_net.sh with unique names: one namespace, two veth pairs.
 * Accounting: delivered == the feeder's union, the gap events == the withheld ranges on both lines, no
 * duplicate delivered, every frame sent on a line arbitrated, every UMEM frame accounted.
 *
 * Two kinds of loss below the feeder's plan are counted, not planned: at full rate on a loaded machine
 * the arbitrator's AF_XDP sockets can run out of fill frames for a few milliseconds (each socket counts
 * the frames it drops; they were won in XDP, never delivered), and a veth pair can drop frames the
 * feeder's copy-mode socket counted as sent (its TX completion is not a delivery: only the interfaces'
 * dropped counters show it, see ../links.ts). A number whose every copy the veth pairs dropped reached
 * nobody: vethUnique = union − won A − won B, at most what the pairs dropped. The checks read
 * delivered + socket drops + vethUnique == union, lost == withheld + socket drops + vethUnique + afterGap
 * (numbers whose copy came more than the window late, after their hole was reported), and per line
 * won + duplicates + stale + dropped on its veth pair == sent; with no drops they are the exact equalities.
 */
import { check } from '../verdict.js'
import type { Check } from '../verdict.js'
import { exitProblem, latest, started, stopTool } from '../harness.js'
import type { ToolRun } from '@kbx/testbed'
import type { Accounting, SoakContext, Target, TargetRun } from '../harness.js'
import { umemChecks } from './umem.js'
import { vethDropsFrom, type VethDrops } from '../links.js'

const ARBITRATE = 'packages/ab/src/bin-ab-arbitrate.ts'
const FEED = 'packages/ab/src/bin-ab-feed.ts'

export interface AbSoakOptions {
  /** Sequence numbers per second, all streams (0: as fast as possible). */
  rate: number
  streams: number
  seed: number
}

export const AB_DEFAULTS: AbSoakOptions = { rate: 0, streams: 4, seed: 7 }

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
 * than the window late), plus the numbers whose every copy a veth pair dropped (vethUnique). With none of
 * them, the gaps are exactly the withheld ranges.
 */
export function gapCheck(gapEvents: Range[], withheldRanges: Range[], lost: number, withheldCount: number, dropped: number, afterGap = 0, vethUnique = 0n): { checks: Check[]; uncovered: string[]; extra: string[] } {
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
      check(
        vethUnique > 0n ? 'lost == withheld + dropped by the sockets + delivered after their gap + every copy dropped on the veth pairs' : 'lost == withheld + dropped by the sockets + delivered after their gap',
        BigInt(lost),
        BigInt(withheldCount + dropped + afterGap) + vethUnique,
      ),
    ],
    uncovered: uncovered.slice(0, 5),
    extra: extra.slice(0, 5),
  }
}

interface LineCounters {
  won: number
  duplicatesDropped: number
  stale: number
  socketDropped: number
}

/** Per line: won + duplicates + stale + dropped on the veth pair == sent. */
export function lineCheck(name: string, counters: LineCounters, sent: bigint, veth: VethDrops): Check {
  const arbitrated = BigInt(counters.won) + BigInt(counters.duplicatesDropped) + BigInt(counters.stale)
  return veth.lost > 0n
    ? check(`${name}: won + duplicates + stale + dropped on the veth pair == sent`, arbitrated + veth.lost, sent)
    : check(`${name}: won + duplicates + stale == sent`, arbitrated, sent)
}

/** Numbers whose every copy the veth pairs dropped: union − won A − won B, from 0 to what the pairs dropped. */
export function vethUniqueCheck(union: number, wonA: number, wonB: number, vethLost: bigint): { vethUnique: bigint; check: Check } {
  const vethUnique = BigInt(union) - BigInt(wonA) - BigInt(wonB)
  const ok = vethUnique >= 0n && vethUnique <= vethLost
  return {
    vethUnique,
    check: { what: 'union − won A − won B (numbers no copy of which arrived) within 0..dropped on the veth pairs', left: vethUnique.toString(), right: `0..${vethLost}`, ok },
  }
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
      // Each line's veth pair: the feeder sends on the namespace end, the arbitrator receives on the root end.
      const vethDropsSince = {
        A: vethDropsFrom({ netns: ns, name: a.b.name }, { netns: null, name: a.a.name }),
        B: vethDropsFrom({ netns: ns, name: b.b.name }, { netns: null, name: b.a.name }),
      }
      const feed = ctx.spawnTool(ns, FEED, [
        a.b.name, b.b.name, '--dst-a', a.a.ip!, '--dst-b', b.a.ip!,
        '--count', '0', '--streams', String(o.streams), '--rate', String(o.rate), '--seed', String(o.seed),
        '--duration', String(ctx.loadSeconds + 600), '--interval', String(ctx.sampleSec), ...AB_IMPAIRMENTS,
      ])
      await started('ab-feed', feed, 120_000)
      return {
        processes: { 'ab-arbitrate': arb, 'ab-feed': feed },
        selfEnding: [],
        counters: () => {
          const i = latest(arb, 'interval')?.data
          const f = latest(feed, 'interval')?.data
          return {
            'ab-arbitrate': i && { delivered: i['delivered'], pps: i['pps'], gaps: i['gaps'], lost: i['lost'], duplicatesDelivered: i['duplicatesDelivered'], lateFills: i['lateFills'], xsk: i['xsk'] },
            'ab-feed': f && { sent: f['sent'], memoryMB: f['memoryMB'] },
          }
        },
        umem: () => latest(arb, 'interval')?.data['umem'],
        finish: async (): Promise<Accounting> => finishAb(arb, feed, vethDropsSince),
      }
    },
  }
}

/** Stops the feeder (SIGINT: it reports the truth of what it sent), lets the arbitrator catch up, stops it and checks the accounting. */
async function finishAb(arb: ToolRun, feed: ToolRun, vethDropsSince: Record<'A' | 'B', (socketDrops: bigint) => VethDrops>): Promise<Accounting> {
  const problems = exitProblem('ab-feed', await stopTool(feed, 'SIGINT', 30_000), feed)
  const truth = latest(feed, 'end')?.data
  if (!truth) problems.push('no end event from ab-feed')
  const union = Number(truth?.['union'] ?? 0)
  // Caught up when everything sent is delivered, dropped by a socket or reported as lost.
  const settled = () => {
    const i = latest(arb, 'interval')?.data
    return i !== undefined && Number(i['delivered']) + Number(i['lost']) >= union
  }
  const deadline = Date.now() + 30_000
  while (truth && !settled() && Date.now() < deadline && arb.child.exitCode === null) await new Promise((r) => setTimeout(r, 200))
  problems.push(...exitProblem('ab-arbitrate', await stopTool(arb, 'SIGINT', 30_000), arb))
  const end = latest(arb, 'end')?.data
  if (!end) problems.push('no end event from ab-arbitrate')
  if (!end || !truth) return { checks: [], values: {}, problems }
  const lines = end['lines']
  const veth = { A: vethDropsSince.A(BigInt(lines['A'].socketDropped)), B: vethDropsSince.B(BigInt(lines['B'].socketDropped)) }
  const gaps = arb.events.filter((e) => e.event === 'gap').map((e) => e.data as Range)
  const xsk = end['xsk'] as { rxDropped: number; rxRingFull: number }
  const dropped = Number(xsk.rxDropped) + Number(xsk.rxRingFull)
  const unique = vethUniqueCheck(union, lines['A'].won, lines['B'].won, veth.A.lost + veth.B.lost)
  const withheldCount = Number(truth['withheld']['count'])
  const gap = gapCheck(gaps, (truth['withheld']['ranges'] ?? []) as Range[], Number(end['lost']), withheldCount, dropped, Number(end['afterGap']), unique.vethUnique)
  const sent = { A: BigInt(truth['lines']['A'].sent), B: BigInt(truth['lines']['B'].sent) }
  const checks = [
    unique.vethUnique > 0n
      ? check('delivered + dropped by the sockets + every copy dropped on the veth pairs == union', BigInt(end['delivered']) + BigInt(dropped) + unique.vethUnique, union)
      : check('delivered + dropped by the sockets == union', BigInt(end['delivered']) + BigInt(dropped), union),
    ...gap.checks,
    check("ab-feed's withheld list is complete", String(truth['withheld']['rangesComplete']), 'true'),
    check('duplicatesDelivered == 0', end['duplicatesDelivered'], 0),
    unique.check,
    lineCheck('A', lines['A'], sent.A, veth.A),
    lineCheck('B', lines['B'], sent.B, veth.B),
    ...umemChecks('ab-arbitrate', end['umem']),
  ]
  const lineValues = (name: 'A' | 'B') => ({
    ...lines[name],
    sent: sent[name],
    droppedByFeed: truth['lines'][name].dropped,
    veth: { senderTxDropped: veth[name].senderTx, receiverRxDropped: veth[name].receiverRx, lost: veth[name].lost },
  })
  return {
    checks,
    values: {
      union,
      delivered: end['delivered'],
      droppedBySockets: dropped,
      vethDropped: veth.A.lost + veth.B.lost,
      everyCopyDroppedOnVeth: unique.vethUnique,
      afterGap: end['afterGap'],
      withheld: withheldCount,
      gapEvents: gaps.length,
      lost: end['lost'],
      duplicatesDelivered: end['duplicatesDelivered'],
      lateFills: end['lateFills'],
      lines: { A: lineValues('A'), B: lineValues('B') },
      feed: { seconds: truth['seconds'], framesPerSecond: truth['framesPerSecond'], stoppedBy: truth['stoppedBy'] },
      busy: end['busy'],
      xsk: end['xsk'],
      umem: end['umem'],
      ...(gap.uncovered.length || gap.extra.length ? { withheldNotInGaps: gap.uncovered, gapsBeyondWithheld: gap.extra } : {}),
    },
    problems,
  }
}
