// --hgrm, --hlog and --plot of a tool (latencyFileOptions of @kbx/cli): one LatencyRecording per run takes each
// interval's histograms, appends them to the .hlog as it goes, and writes the .hgrm tables and the SVG at the end.
import { accessSync, constants, existsSync, writeFileSync } from 'node:fs'
import { basename, dirname, extname, join } from 'node:path'
import type { LatencyFileOptions } from '@kbx/cli'
import { UsageError } from '@kbx/errors'
import { HlogFile, formatHgrm, newHdrHistogram, summarizeLatency } from '@kbx/stats'
import type { HdrConvertible, HdrHistogram } from '@kbx/stats'
import { renderChart } from './chart.js'
import type { RateSeries } from './chart.js'
import { curveOfHdr } from './curves.js'

/** One latency a tool measures. The first series of a tool is its main one: untagged in the .hlog, in the --hgrm file itself. */
export interface SeriesSpec {
  /** Short name: the .hlog tag and the suffix of its .hgrm file (`run.hgrm` → `run.<name>.hgrm`). */
  name: string
  /** What a person reads in the legend, e.g. "send→ack". */
  label: string
}

export interface RecordingSpec {
  series: readonly SeriesSpec[]
  /** What the per-interval rate counts, e.g. "acked tx/s". */
  rateUnit: string
  /** What the curves measure, e.g. "send→ack latency". */
  latencyLabel: string
}

/** The part of a ToolContext a recording needs. */
export interface RecordingContext {
  readonly tool: string
  readonly argv?: readonly string[] | undefined
  readonly opts: Partial<LatencyFileOptions>
  onCleanup(fn: () => void): void
}

const FILE_OPTIONS = ['--hgrm', '--hlog', '--plot']

/** The command line without the file options: the run's parameters, for titles. */
export function runParameters(tool: string, argv: readonly string[]): string {
  const kept: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (FILE_OPTIONS.includes(a)) i++
    else if (!FILE_OPTIONS.some((o) => a.startsWith(`${o}=`))) kept.push(a)
  }
  return [tool, ...kept].join(' ')
}

/** `run.hgrm` and series `hold` → `run.hold.hgrm`. */
export function seriesFile(path: string, series: string): string {
  const ext = extname(path)
  return join(dirname(path), `${basename(path, ext)}.${series}${ext}`)
}

/** A usage error (exit 2, before anything is attached) when `path` cannot be written. */
export function checkWritable(option: string, path: string): void {
  try {
    accessSync(existsSync(path) ? path : dirname(path) || '.', constants.W_OK)
  } catch (e) {
    const err = e as NodeJS.ErrnoException
    throw new UsageError(`${option} ${path}: cannot be written (${err.code ?? err.message})`, { op: `check ${option}`, ...(err.errno === undefined ? {} : { errno: Math.abs(err.errno) }), hint: 'name a file in a directory that exists and is writable' })
  }
}

class SeriesState {
  readonly total: HdrHistogram = newHdrHistogram()
  constructor(readonly spec: SeriesSpec) {}
}

export class LatencyRecording {
  private hlog: HlogFile | undefined
  private readonly series: SeriesState[]
  private startedMs = Date.now()
  private started = process.hrtime.bigint()
  private lastSec = 0
  private readonly rates: { tSec: number; perSec: number }[] = []
  private finished = false
  /** The tool gives its own rate: intervals without one then add no rate point. */
  private explicitRates = false

  private constructor(
    private readonly ctx: RecordingContext,
    private readonly spec: RecordingSpec,
  ) {
    const o = ctx.opts
    this.series = spec.series.map((s) => new SeriesState(s))
    this.openHlog()
    if (o.hlog !== undefined) ctx.onCleanup(() => this.hlog?.close())
  }

  private openHlog(): void {
    const path = this.ctx.opts.hlog
    if (path === undefined) return
    this.hlog?.close()
    const params = runParameters(this.ctx.tool, this.ctx.argv ?? [])
    const series = this.spec.series.map((s, i) => `${i === 0 ? '(untagged)' : s.name}=${s.label}`).join(', ')
    this.hlog = new HlogFile(path, this.startedMs, [`[kbx: ${params}]`, `[kbx series: ${series}; values in ns]`])
  }

  /** Starts the clock again (e.g. once the run is set up and its loop begins): the first interval starts now. */
  begin(): void {
    if (this.lastSec !== 0 || this.finished) return
    this.startedMs = Date.now()
    this.started = process.hrtime.bigint()
    this.openHlog()
  }

  /** Checks the file options (usage errors) and starts the .hlog; call it before attaching anything. Without any file option it records nothing. */
  static open(ctx: RecordingContext, spec: RecordingSpec): LatencyRecording {
    if (spec.series.length === 0) throw new Error('a latency recording needs a series')
    const o = ctx.opts
    if (o.hgrm !== undefined) checkWritable('--hgrm', o.hgrm)
    if (o.hlog !== undefined) checkWritable('--hlog', o.hlog)
    if (o.plot !== undefined) checkWritable('--plot', o.plot)
    return new LatencyRecording(ctx, spec)
  }

  /** Whether any file is written. */
  get active(): boolean {
    const o = this.ctx.opts
    return o.hgrm !== undefined || o.hlog !== undefined || o.plot !== undefined
  }

  /**
   * What each series recorded since the last call (by series name; a series left out recorded nothing), and the
   * run's main rate over it (default: the first series' recordings per second). The interval ends now.
   */
  interval(recorded: Readonly<Record<string, HdrConvertible | undefined>>, ratePerSec?: number): void {
    if (!this.active || this.finished) return
    const endSec = Number(process.hrtime.bigint() - this.started) / 1e9
    const startSec = this.lastSec
    this.lastSec = endSec
    this.series.forEach((s, i) => {
      const h = recorded[s.spec.name]?.toHdr() ?? newHdrHistogram()
      s.total.add(h)
      this.hlog?.write(h, startSec, endSec, i === 0 ? undefined : s.spec.name)
      if (i === 0 && ratePerSec === undefined && !this.explicitRates && endSec > startSec) this.rates.push({ tSec: endSec, perSec: h.totalCount / (endSec - startSec) })
    })
    if (ratePerSec !== undefined) {
      if (!this.explicitRates) this.rates.length = 0
      this.explicitRates = true
      this.rates.push({ tSec: endSec, perSec: ratePerSec })
    }
  }

  /** Writes the .hgrm tables and the SVG, closes the .hlog; the files written. Call interval() for the last stretch first. */
  finish(): string[] {
    if (!this.active || this.finished) return []
    this.finished = true
    const o = this.ctx.opts
    const written: string[] = []
    this.hlog?.close()
    if (o.hlog !== undefined) written.push(o.hlog)
    if (o.hgrm !== undefined) {
      this.series.forEach((s, i) => {
        const file = i === 0 ? o.hgrm! : seriesFile(o.hgrm!, s.spec.name)
        writeFileSync(file, formatHgrm(s.total))
        written.push(file)
      })
    }
    if (o.plot !== undefined) {
      writeFileSync(o.plot, this.svg())
      written.push(o.plot)
    }
    return written
  }

  /** The SVG of the run so far. */
  svg(): string {
    const main = this.series[0]!
    const drawn = this.series.filter((s, i) => i === 0 || s.total.totalCount > 0)
    const rate: RateSeries = { label: main.spec.label, points: this.rates }
    const summary = summarizeLatency({
      count: main.total.totalCount,
      minValueNs: main.total.totalCount ? main.total.minNonZeroValue : 0,
      maxValueNs: main.total.maxValue,
      meanNs: main.total.mean,
      valueAtRankNs: (rank) => main.total.getValueAtPercentile((100 * rank) / main.total.totalCount),
    })
    return renderChart({
      title: runParameters(this.ctx.tool, this.ctx.argv ?? []),
      subtitle: `${new Date(this.startedMs).toISOString().replace('T', ' ').slice(0, 19)} UTC, ${this.lastSec.toFixed(1)} s · ${main.spec.label}: n=${summary.count} p50 ${summary.p50} µs p99 ${summary.p99} µs p99.9 ${summary.p999} µs max ${summary.max} µs`,
      curves: drawn.map((s) => curveOfHdr(s.spec.label, s.total)),
      rates: [rate],
      rateUnit: this.spec.rateUnit,
      latencyLabel: this.spec.latencyLabel,
    })
  }
}
