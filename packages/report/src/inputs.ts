// The saved runs kbx-plot reads: .hlog interval logs, .hgrm tables and the tools' JSON lines, each told apart
// by its content.
import { UsageError } from '@kbx/errors'
import { newHdrHistogram, parseHgrm, parseHlog } from '@kbx/stats'
import type { HlogInterval, LatencySummary } from '@kbx/stats'
import type { LatencyCurve, RateSeries } from './chart.js'
import { curveOfHdr, curveOfHgrm, curveOfSummary, rateOfIntervals } from './curves.js'

export type RunFormat = 'hlog' | 'hgrm' | 'jsonl'

export interface RunData {
  format: RunFormat
  curves: LatencyCurve[]
  rates: RateSeries[]
}

export interface ReadOptions {
  /** .hlog: only the series with this tag ("" for the untagged one). */
  tag?: string
  /** .hgrm: ns per value unit (1000: µs, as kbx writes them). */
  hgrmUnitNs?: number
  /** JSON lines: dotted path in the end event's data to the latency summary (default: the first with p50 and p99). */
  latencyField?: string
  /** JSON lines: dotted path in the interval events' data to the rate. */
  rateField?: string
}

/** Which of the three a file's text is. */
export function detectFormat(text: string): RunFormat | undefined {
  if (/^#\[Histogram log format version/m.test(text) || /^(Tag=[^,]*,)?[\d.]+,[\d.]+,[\d.]+,HIST/m.test(text)) return 'hlog'
  if (/Value\s+Percentile\s+TotalCount/.test(text)) return 'hgrm'
  if (text.trimStart().startsWith('{')) return 'jsonl'
  return undefined
}

/** A run's curves and rates; curves are labelled `label` (with the series' name when there are several). */
export function readRun(file: string, text: string, label: string, options: ReadOptions = {}): RunData {
  const format = detectFormat(text)
  if (format === 'hlog') return readHlogRun(text, label, options)
  if (format === 'hgrm') return { format, curves: [curveOfHgrm(label, parseHgrm(text), options.hgrmUnitNs ?? 1000)], rates: [] }
  if (format === 'jsonl') return readJsonLinesRun(file, text, label, options)
  throw new UsageError(`${file}: neither an HdrHistogram log (.hlog), a percentile table (.hgrm) nor kbx JSON lines`, { op: `read ${file}` })
}

/** kbx's own logs name their series: `#[kbx series: (untagged)=send→ack, hold=hold time; …]`. */
function seriesNames(comments: readonly string[]): Map<string, string> {
  const names = new Map<string, string>()
  const line = comments.find((c) => c.startsWith('[kbx series:'))
  for (const m of line?.matchAll(/([^\s:,=]+|\(untagged\))=([^,;\]]+)/g) ?? []) names.set(m[1] === '(untagged)' ? '' : m[1]!, m[2]!.trim())
  return names
}

function readHlogRun(text: string, label: string, options: ReadOptions): RunData {
  const log = parseHlog(text)
  const byTag = new Map<string, HlogInterval[]>()
  for (const i of log.intervals) {
    const tag = i.tag ?? ''
    if (options.tag !== undefined && tag !== options.tag) continue
    byTag.set(tag, [...(byTag.get(tag) ?? []), i])
  }
  if (byTag.size === 0) throw new UsageError(`no interval histograms${options.tag === undefined ? '' : ` tagged ${JSON.stringify(options.tag)}`} in the log`, { op: 'read hlog' })
  const names = seriesNames(log.comments)
  const curves: LatencyCurve[] = []
  const rates: RateSeries[] = []
  for (const [tag, intervals] of byTag) {
    const name = byTag.size === 1 ? label : `${label} ${names.get(tag) ?? (tag || 'untagged')}`
    const total = newHdrHistogram()
    for (const i of intervals) total.add(i.histogram)
    curves.push(curveOfHdr(name, total))
    rates.push(rateOfIntervals(name, intervals))
  }
  return { format: 'hlog', curves, rates }
}

type Json = Record<string, unknown>

function at(data: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((v, key) => (v !== null && typeof v === 'object' ? (v as Json)[key] : undefined), data)
}

/** A latency summary, kbx's (p50 …) or the skew's (p50Us …), as LatencySummary fields. */
function asSummary(v: unknown): (Partial<LatencySummary> & { p50: number; p99: number }) | undefined {
  if (v === null || typeof v !== 'object') return undefined
  const o = v as Json
  const pick = (k: string) => (typeof o[k] === 'number' ? (o[k] as number) : typeof o[`${k}Us`] === 'number' ? (o[`${k}Us`] as number) : undefined)
  const p50 = pick('p50')
  const p99 = pick('p99')
  if (p50 === undefined || p99 === undefined) return undefined
  const fields = { min: pick('min'), p90: pick('p90'), p999: pick('p999'), max: pick('max'), count: typeof o['count'] === 'number' ? o['count'] : typeof o['samples'] === 'number' ? o['samples'] : undefined }
  return { p50, p99, ...Object.fromEntries(Object.entries(fields).filter(([, x]) => x !== undefined)) }
}

const RATE_FIELDS = ['ackedPerSec', 'perSec.acked', 'pps', 'txPerSec']

function readJsonLinesRun(file: string, text: string, label: string, options: ReadOptions): RunData {
  const events: { event: string; ts: number; data: Json }[] = []
  text.split('\n').forEach((line, n) => {
    if (line.trim() === '') return
    try {
      const e = JSON.parse(line) as { event?: unknown; ts?: unknown; data?: unknown }
      if (typeof e.event === 'string') events.push({ event: e.event, ts: typeof e.ts === 'number' ? e.ts : NaN, data: (e.data ?? {}) as Json })
    } catch {
      throw new UsageError(`${file} line ${n + 1}: not JSON`, { op: `read ${file}` })
    }
  })
  const end = events.findLast((e) => e.event === 'end')
  if (!end) throw new UsageError(`${file}: no "end" event (was the run cut short?)`, { op: `read ${file}` })
  const summary = options.latencyField !== undefined ? asSummary(at(end.data, options.latencyField)) : Object.values(end.data).map(asSummary).find((s) => s !== undefined)
  if (!summary) throw new UsageError(`${file}: the end event has no latency summary${options.latencyField === undefined ? ' (an object with p50 and p99)' : ` at ${options.latencyField}`}`, { op: `read ${file}` })
  const start = events.find((e) => e.event === 'start')?.ts ?? events[0]!.ts
  const rateField = options.rateField ?? RATE_FIELDS.find((f) => events.some((e) => e.event === 'interval' && typeof at(e.data, f) === 'number'))
  const points = rateField === undefined ? [] : events.filter((e) => e.event === 'interval' && typeof at(e.data, rateField) === 'number').map((e) => ({ tSec: e.ts - start, perSec: at(e.data, rateField) as number }))
  return { format: 'jsonl', curves: [curveOfSummary(label, summary)], rates: points.length ? [{ label, points }] : [] }
}
