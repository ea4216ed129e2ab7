/**
 * The cases of `pnpm bench quic`, the medians of their runs, the table printed at the end and the
 * verdict on issue 12's goal (quic-flood ≥ 10× quinn's acked tx/s). Pure code: bench/quic.ts runs the
 * tools and feeds the samples in.
 */
import { median } from '@kbx/stats'

export type Sender = 'xdp' | 'socket' | 'quinn'

export interface BenchCase {
  /** stable key in the JSON output, e.g. `xdp-w1-s1`, `quinn-s1`, `xdp-w1-s1@1k` */
  key: string
  sender: Sender
  workers: number
  sinks: number
  /** transactions per second per sink, 0 = full speed */
  rate: number
  /** quinn only: TX checksum offload on the sender's veth for this case (UDP GSO needs it on some kernels) */
  txChecksum?: boolean
  /** why this case is not run (printed in its row instead of numbers) */
  unavailable?: string
}

/** One run of one case: the sender's end-of-run numbers. */
export interface Sample {
  /** acked transactions per second, every sink's copy counted */
  ackedPerSec: number
  acked: number
  p50: number
  p90: number
  p99: number
  /** cores the sender kept busy in the middle of the run (/proc/PID/stat) */
  senderCores?: number
  /** cores the sinks it sent to kept busy then, summed */
  sinkCores?: number
  /** ackedPerSec / senderCores: acked transactions per CPU-second of the sender */
  ackedPerCpuSec?: number
}

export interface CaseSummary {
  key: string
  label: string
  runs: number
  /** medians over the runs; absent when the case was not run */
  median?: Sample
  unavailable?: string
}

export function caseKey(c: Omit<BenchCase, 'key'>): string {
  const base = c.sender === 'quinn' ? `quinn-s${c.sinks}` : `${c.sender}-w${c.workers}-s${c.sinks}`
  const csum = c.sender === 'quinn' && c.txChecksum === false ? '-csumoff' : ''
  const rate = c.rate === 0 ? '' : c.rate === 1000 ? '@1k' : `@${c.rate}`
  return base + csum + rate
}

export function caseLabel(c: BenchCase): string {
  const sinks = `${c.sinks} sink${c.sinks === 1 ? '' : 's'}`
  const who =
    c.sender === 'quinn'
      ? `quinn${c.txChecksum === false ? ' (tx csum off)' : ''}`
      : `${c.sender.padEnd(6)} ${c.workers} worker${c.workers === 1 ? '' : 's'}`
  return `${who}, ${sinks}${c.rate ? ` @${c.rate}/s` : ''}`
}

/** Medians of each sample field (of the runs that have it, for the optional ones). */
export function medianSample(samples: readonly Sample[]): Sample {
  const of = (field: keyof Sample) => median(samples.map((s) => s[field] ?? 0))
  const optional = (field: 'senderCores' | 'sinkCores' | 'ackedPerCpuSec', round: (x: number) => number) => {
    const values = samples.map((s) => s[field]).filter((x): x is number => x !== undefined)
    return values.length ? { [field]: round(median(values)) } : {}
  }
  const hundredths = (x: number) => Math.round(x * 100) / 100
  return {
    ackedPerSec: Math.round(of('ackedPerSec')),
    acked: Math.round(of('acked')),
    p50: of('p50'),
    p90: of('p90'),
    p99: of('p99'),
    ...optional('senderCores', hundredths),
    ...optional('sinkCores', hundredths),
    ...optional('ackedPerCpuSec', Math.round),
  }
}

export function summarize(cases: readonly BenchCase[], samples: ReadonlyMap<string, readonly Sample[]>): CaseSummary[] {
  return cases.map((c) => {
    const runs = samples.get(c.key) ?? []
    const label = caseLabel(c)
    if (c.unavailable) return { key: c.key, label, runs: 0, unavailable: c.unavailable }
    if (runs.length === 0) return { key: c.key, label, runs: 0, unavailable: 'no successful run' }
    return { key: c.key, label, runs: runs.length, median: medianSample(runs) }
  })
}

export const GOAL_RATIO = 10

export interface Verdict {
  /** quic-flood's acked tx/s over quinn's, 1 sink, full speed, per case key (null when either is missing) */
  ratios: Record<string, number | null>
  /** the best quic-flood case at 1 sink against quinn's best */
  best: { key: string; ratio: number } | null
  met: boolean | null
  line: string
  /** the same ratios of acked transactions per CPU-second of the sender (informative: the goal is on tx/s) */
  perCpuRatios: Record<string, number | null>
}

const round2 = (x: number) => Math.round(x * 100) / 100

/** quic-flood/quinn acked tx/s at one sink and full speed, and whether the ≥ 10× goal is met. */
export function verdict(summaries: readonly CaseSummary[], cases: readonly BenchCase[]): Verdict {
  const byKey = new Map(summaries.map((s) => [s.key, s]))
  const oneSinkFull = cases.filter((c) => c.sinks === 1 && c.rate === 0)
  const quinnBest = Math.max(
    0,
    ...oneSinkFull.filter((c) => c.sender === 'quinn').map((c) => byKey.get(c.key)?.median?.ackedPerSec ?? 0),
  )
  const quinnPerCpu = Math.max(
    0,
    ...oneSinkFull.filter((c) => c.sender === 'quinn').map((c) => byKey.get(c.key)?.median?.ackedPerCpuSec ?? 0),
  )
  const ratios: Record<string, number | null> = {}
  const perCpuRatios: Record<string, number | null> = {}
  let best: Verdict['best'] = null
  for (const c of oneSinkFull.filter((c) => c.sender !== 'quinn')) {
    const flood = byKey.get(c.key)?.median
    const ratio = flood !== undefined && quinnBest > 0 ? round2(flood.ackedPerSec / quinnBest) : null
    ratios[c.key] = ratio
    perCpuRatios[c.key] = flood?.ackedPerCpuSec !== undefined && quinnPerCpu > 0 ? round2(flood.ackedPerCpuSec / quinnPerCpu) : null
    if (ratio !== null && (best === null || ratio > best.ratio)) best = { key: c.key, ratio }
  }
  if (quinnBest === 0)
    return { ratios, perCpuRatios, best, met: null, line: `goal ≥ ${GOAL_RATIO}× quinn's acked tx/s: not judged (no quinn result)` }
  if (best === null)
    return { ratios, perCpuRatios, best, met: null, line: `goal ≥ ${GOAL_RATIO}× quinn's acked tx/s: not judged (no quic-flood result)` }
  const met = best.ratio >= GOAL_RATIO
  const each = Object.entries(ratios)
    .map(([key, r]) => `${key} ${r === null ? 'n/a' : `${r}×`}`)
    .join(', ')
  const perCpu = Object.entries(perCpuRatios)
    .filter(([, r]) => r !== null)
    .map(([key, r]) => `${key} ${r}×`)
    .join(', ')
  return {
    ratios,
    perCpuRatios,
    best,
    met,
    line:
      `quic-flood/quinn acked tx/s (1 sink): ${each}. Goal ≥ ${GOAL_RATIO}× quinn: ${met ? 'MET' : 'NOT MET'} (best ${best.key}, ${best.ratio}×)` +
      (perCpu ? `\n  per CPU-second of the sender: ${perCpu}` : ''),
  }
}

const num = (x: number, width: number) => Math.round(x).toLocaleString('en-US').padStart(width)

/** The table printed at the end (medians; a case not run says why). */
export function formatTable(summaries: readonly CaseSummary[]): string {
  const labelWidth = Math.max(4, ...summaries.map((s) => s.label.length))
  const header =
    `  ${'case'.padEnd(labelWidth)}  ${'acked tx/s'.padStart(11)}  ${'p50 µs'.padStart(8)}  ${'p90 µs'.padStart(8)}  ${'p99 µs'.padStart(8)}` +
    `  ${'cores'.padStart(5)}  ${'sink'.padStart(5)}  ${'tx/CPU-s'.padStart(10)}  runs`
  const rows = summaries.map((s) => {
    const label = s.label.padEnd(labelWidth)
    if (!s.median) return `  ${label}  not available: ${s.unavailable ?? 'not run'}`
    const m = s.median
    const cores = (x: number | undefined) => (x === undefined ? '-' : x.toFixed(2)).padStart(5)
    const perCpu = m.ackedPerCpuSec === undefined ? '-'.padStart(10) : num(m.ackedPerCpuSec, 10)
    return (
      `  ${label}  ${num(m.ackedPerSec, 11)}  ${num(m.p50, 8)}  ${num(m.p90, 8)}  ${num(m.p99, 8)}` +
      `  ${cores(m.senderCores)}  ${cores(m.sinkCores)}  ${perCpu}  ${String(s.runs).padStart(4)}`
    )
  })
  return [header, ...rows].join('\n') + '\n'
}
