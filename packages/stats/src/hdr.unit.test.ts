import t from 'tap'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as hdr from 'hdr-histogram-js'
import { percentileNs } from './distribution.js'
import { HlogFile, formatHgrm, parseHgrm, parseHlog } from './hdr.js'
import { LatencyHistogram } from './histogram.js'
import { BucketHistogram, LogLinearLayout } from './log-linear.js'

const dir = mkdtempSync(join(tmpdir(), 'kbx-hdr-'))

/** 20 000 values from 1 µs to ~10 ms, skewed like a latency (deterministic). */
function latencies(seed: number): LatencyHistogram {
  const h = new LatencyHistogram()
  let x = seed
  for (let i = 0; i < 20_000; i++) {
    x = (x * 1103515245 + 12345) % 2 ** 31
    h.record(1000 + (x / 2 ** 31) ** 6 * 10_000_000)
  }
  return h
}

t.test('.hgrm: HdrHistogram columns and footer, read back to the same percentiles and counts', async (t) => {
  const h = latencies(1)
  const text = formatHgrm(h.toHdr())
  t.match(text, /^\s+Value\s+Percentile\s+TotalCount\s+1\/\(1-Percentile\)\n\n/)
  t.match(text, /#\[Mean\s+=\s+[\d.]+, StdDeviation\s+=\s+[\d.]+\]\n#\[Max\s+=\s+[\d.]+, Total count\s+=\s+20000\]\n#\[Buckets\s+=/)
  const table = parseHgrm(text)
  t.equal(table.totalCount, 20_000)
  t.equal(table.rows.at(-1)!.totalCount, 20_000, 'the last row counts everything')
  t.ok(Math.abs(table.max - h.maxValueNs / 1000) <= (h.maxValueNs / 1000) * 1e-3, `max ${table.max} µs ≈ ${h.maxValueNs / 1000}`)
  const hdrCopy = h.toHdr()
  const mismatched = table.rows.filter((r) => r.percentile < 1 && Math.abs(r.value - hdrCopy.getValueAtPercentile(r.percentile * 100) / 1000) > 1e-3)
  t.same(mismatched, [], `each of the ${table.rows.length} rows is the histogram's value at its percentile`)
  for (const p of [50, 90, 99, 99.9]) {
    const row = table.rows.find((r) => r.percentile >= p / 100)!
    const expected = h.percentileNs(p) / 1000
    t.ok(Math.abs(row.value - expected) <= expected * 0.01, `p${p}: ${row.value} µs ≈ ${expected} (the summary kbx prints)`)
  }
  t.ok(Math.abs(table.mean - h.meanNs / 1000) <= (h.meanNs / 1000) * 1e-3, 'mean')
})

t.test('.hgrm of an empty histogram: no rows, a zero count', async (t) => {
  const table = parseHgrm(formatHgrm(new LatencyHistogram().toHdr()))
  t.same(table.rows, [])
  t.equal(table.totalCount, 0)
  t.equal(table.max, 0)
})

t.test('.hlog: each interval (tagged or not) read back by hdr-histogram-js with its counts, times and percentiles', async (t) => {
  const path = join(dir, 'run.hlog')
  const startMs = Date.UTC(2026, 11, 3, 12, 0, 0)
  const log = new HlogFile(path, startMs, ['[kbx: test]'])
  const intervals = [latencies(1), latencies(2), latencies(3)]
  const hold = latencies(4)
  intervals.forEach((h, i) => log.write(h.toHdr(), i, i + 1))
  log.write(hold.toHdr(), 2, 3, 'hold')
  log.close()
  const text = readFileSync(path, 'utf8')
  const header = `#[Histogram log format version 1.3]\n#[StartTime: ${startMs / 1000}.000 (seconds since epoch), 2026-12-03T12:00:00.000Z]\n#[BaseTime: ${startMs / 1000}.000 (seconds since epoch)]\n`
  t.ok(text.startsWith(header), 'format version, StartTime and BaseTime first')

  // hdr-histogram-js's own reader, as any user of it would read the log
  const reader = new hdr.HistogramLogReader(text)
  const read: hdr.Histogram[] = []
  for (let h = reader.nextIntervalHistogram(); h !== null; h = reader.nextIntervalHistogram()) read.push(h)
  t.equal(read.length, 4)
  intervals.forEach((h, i) => {
    t.equal(read[i]!.totalCount, h.count, `interval ${i} count`)
    t.equal(read[i]!.startTimeStampMsec, startMs + i * 1000, `interval ${i} starts ${i} s after StartTime`)
    t.equal(read[i]!.getValueAtPercentile(99), h.toHdr().getValueAtPercentile(99), `interval ${i} p99`)
  })
  t.equal(read[3]!.tag, 'hold')
  t.same(hdr.listTags(text).sort(), ['NO TAG', 'hold'].sort())

  const parsed = parseHlog(text)
  t.equal(parsed.startTimeSec, startMs / 1000)
  t.same(parsed.intervals.map((i) => [i.tag, i.startSec, i.endSec, i.histogram.totalCount]), [
    [undefined, 0, 1, 20_000],
    [undefined, 1, 2, 20_000],
    [undefined, 2, 3, 20_000],
    ['hold', 2, 3, 20_000],
  ])
  t.same(parsed.comments, ['[kbx: test]'])
})

t.test('a log bucket histogram (kbx_histogram.h) becomes an HdrHistogram with the same count and extremes', async (t) => {
  const layout = new LogLinearLayout(5, 40)
  const counts = new Float64Array(layout.length)
  for (const v of [900, 1000, 1100, 50_000, 50_000, 2_000_000]) counts[layout.index(v)]! += 1
  const b = BucketHistogram.of(layout, counts, { minNs: 900, maxNs: 2_000_000 })
  const h = b.toHdr()
  t.equal(h.totalCount, 6)
  t.ok(Math.abs(h.maxValue - 2_000_000) <= 2_000_000 * 1e-3, `max ${h.maxValue}`)
  t.ok(Math.abs(h.getValueAtPercentile(50) - percentileNs(b, 50)) <= percentileNs(b, 50) * 1e-3, 'p50 as the bucket decoder reports it')
})

t.test('bad input is a usage error that says what was expected', async (t) => {
  t.throws(() => parseHgrm('hello\n'), { name: 'UsageError', message: /\.hgrm/ })
  t.throws(() => parseHlog('#[Histogram log format version 1.3]\n0.000,1.000,1.000,HISTnotbase64\n'), { name: 'UsageError', message: /\.hlog/ })
  t.throws(() => new HlogFile(join(dir, 'no-such-dir', 'x.hlog'), Date.now()), { name: 'UsageError', message: /cannot write/ })
})
