// HdrHistogram's own file formats for any kbx distribution: the `.hgrm` percentile table
// (outputPercentileDistribution) and the `.hlog` interval log (HistogramLogWriter/Reader), both through
// hdr-histogram-js, so HdrHistogram's log processors and plotters read what the tools write.
import { closeSync, openSync } from 'node:fs'
import * as hdr from 'hdr-histogram-js'
import { UsageError } from '@kbx/errors'
import type { Distribution } from './distribution.js'
import { writeAllSync } from './write.js'

export type HdrHistogram = ReturnType<typeof hdr.build>

/** A distribution that can be copied into an HdrHistogram (LatencyHistogram, BucketHistogram). */
export interface HdrConvertible extends Distribution {
  /** A new HdrHistogram holding the same recordings, in ns. */
  toHdr(): HdrHistogram
}

/** An empty HdrHistogram for nanosecond values: 3 significant digits, 64-bit counts, grows as needed. */
export function newHdrHistogram(): HdrHistogram {
  return hdr.build({ bitBucketSize: 64, autoResize: true, lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: 3 })
}

/** hgrm values in µs (the tools record ns): outputPercentileDistribution's scaling ratio. */
export const HGRM_VALUE_UNIT_NS = 1000

/**
 * The `.hgrm` text of a histogram recorded in ns: `Value Percentile TotalCount 1/(1-Percentile)` rows (values in
 * µs, 5 ticks per half distance, as HdrHistogram writes them), then the `#[Mean …]`, `#[Max …]` and `#[Buckets …]` lines.
 */
export function formatHgrm(histogram: HdrHistogram, valueUnitNs = HGRM_VALUE_UNIT_NS): string {
  return histogram.outputPercentileDistribution(5, valueUnitNs)
}

export interface HgrmRow {
  value: number
  /** 0..1 */
  percentile: number
  totalCount: number
}

export interface HgrmTable {
  rows: HgrmRow[]
  mean: number
  max: number
  totalCount: number
}

/** The rows and summary of a `.hgrm` text (values in its own unit; no rows for an empty histogram); an error when it is not one. */
export function parseHgrm(text: string): HgrmTable {
  const rows: HgrmRow[] = []
  let mean = NaN
  let max = NaN
  let totalCount = NaN
  for (const line of text.split('\n')) {
    const m = /^\s*([\d.]+)\s+([\d.]+)\s+(\d+)\s+([\d.]+|Infinity)?\s*$/.exec(line)
    if (m) rows.push({ value: Number(m[1]), percentile: Number(m[2]), totalCount: Number(m[3]) })
    const meanLine = /^#\[Mean\s*=\s*([\d.]+)/.exec(line)
    if (meanLine) mean = Number(meanLine[1])
    const maxLine = /^#\[Max\s*=\s*([\d.]+),\s*Total count\s*=\s*(\d+)/.exec(line)
    if (maxLine) {
      max = Number(maxLine[1])
      totalCount = Number(maxLine[2])
    }
  }
  if (!/Value\s+Percentile\s+TotalCount/.test(text) || Number.isNaN(max)) throw new UsageError('not an HdrHistogram percentile table (.hgrm): no "Value Percentile TotalCount" rows or no #[Max …] line', { op: 'parse hgrm' })
  return { rows, mean, max, totalCount }
}

/** One interval histogram of a log, `tag` undefined for the untagged series. */
export interface HlogInterval {
  tag: string | undefined
  /** Seconds since the log's StartTime. */
  startSec: number
  endSec: number
  histogram: HdrHistogram
}

export interface Hlog {
  /** Seconds since the epoch (0 when the log has no #[StartTime: …]). */
  startTimeSec: number
  intervals: HlogInterval[]
  /** `#` comment lines other than the format's own, without the `#`. */
  comments: string[]
}

const NO_TAG = 'NO TAG'

/** Reads every interval histogram of an `.hlog` text with hdr-histogram-js's HistogramLogReader. */
export function parseHlog(text: string): Hlog {
  const reader = new hdr.HistogramLogReader(text, 64)
  const intervals: HlogInterval[] = []
  const next = () => {
    try {
      return reader.nextIntervalHistogram()
    } catch (e) {
      throw new UsageError(`not an HdrHistogram interval log (.hlog): line ${reader.currentLineIndex}: ${(e as Error).message}`, { op: 'parse hlog' })
    }
  }
  for (let h = next(); h !== null; h = next()) {
    const start = reader.startTimeSec || 0
    intervals.push({
      tag: h.tag === NO_TAG || h.tag === undefined || h.tag === '' ? undefined : h.tag,
      startSec: h.startTimeStampMsec / 1000 - start,
      endSec: h.endTimeStampMsec / 1000 - start,
      histogram: h,
    })
  }
  const dataLines = text.split(/\r?\n/).filter((l) => l !== '' && !l.startsWith('#') && !l.startsWith('"StartTimestamp"'))
  if (intervals.length !== dataLines.length) throw new UsageError(`not an HdrHistogram interval log (.hlog): ${dataLines.length - intervals.length} of ${dataLines.length} interval lines unreadable`, { op: 'parse hlog' })
  const comments = text
    .split(/\r?\n/)
    .filter((l) => l.startsWith('#') && !/^#\[(StartTime|BaseTime|Histogram log format version)/.test(l))
    .map((l) => l.slice(1))
  return { startTimeSec: reader.startTimeSec || 0, intervals, comments }
}

/**
 * An `.hlog` written as the run goes (one line per interval histogram, so a run cut short still leaves a log):
 * format version, `#[StartTime: …]` and `#[BaseTime: …]` (interval timestamps are seconds since the start, as
 * jHiccup writes them), any comments, the legend, then the interval lines. Interval_Max is in ms for ns values.
 */
export class HlogFile {
  private fd: number | undefined
  private readonly writer: InstanceType<typeof hdr.HistogramLogWriter>

  constructor(
    readonly path: string,
    startTimeMs: number,
    comments: readonly string[] = [],
  ) {
    try {
      this.fd = openSync(path, 'w')
    } catch (e) {
      const err = e as NodeJS.ErrnoException
      throw new UsageError(`cannot write ${path}: ${err.message}`, { op: 'open hlog', ...(err.errno === undefined ? {} : { errno: Math.abs(err.errno) }), hint: 'check that the directory exists and is writable' })
    }
    const fd = this.fd
    this.writer = new hdr.HistogramLogWriter((s) => writeAllSync(fd, s))
    this.writer.outputLogFormatVersion()
    const startSec = (startTimeMs / 1000).toFixed(3)
    this.writer.outputComment(`[StartTime: ${startSec} (seconds since epoch), ${new Date(startTimeMs).toISOString()}]`)
    this.writer.outputComment(`[BaseTime: ${startSec} (seconds since epoch)]`)
    for (const c of comments) this.writer.outputComment(c.replace(/[\r\n]+/g, ' '))
    this.writer.outputLegend()
  }

  /** One interval's histogram (ns values), seconds since the start; `tag` names a series beside the untagged one. */
  write(histogram: HdrHistogram, startSec: number, endSec: number, tag?: string): void {
    if (this.fd === undefined) return
    histogram.tag = tag ?? NO_TAG
    this.writer.outputIntervalHistogram(histogram, startSec, endSec, 1_000_000)
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd)
    this.fd = undefined
  }
}
