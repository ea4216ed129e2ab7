// A tool's --hgrm/--hlog/--plot through LatencyRecording, read back by hdr-histogram-js and by HdrHistogram's own
// HistogramLogProcessor (the Java reference, Debian's libhdrhistogram-java).
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as hdr from 'hdr-histogram-js'
import { BucketHistogram, LatencyHistogram, LogLinearLayout, newHdrHistogram, parseHgrm, parseHlog } from '@kbx/stats'
import { LatencyRecording, runParameters, seriesFile } from './recording.js'

const HDR_JAR = '/usr/share/java/hdrhistogram.jar'

function context(opts: { hgrm?: string; hlog?: string; plot?: string }) {
  const cleanups: (() => void)[] = []
  return { ctx: { tool: 'quic-flood', argv: ['--iface', 'veth0', '--hgrm', opts.hgrm ?? 'x', '--rate', '1k', `--plot=${opts.plot}`], opts, onCleanup: (fn: () => void) => cleanups.push(fn) }, cleanups }
}

function interval(seed: number, n: number): LatencyHistogram {
  const h = new LatencyHistogram()
  let x = seed
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) % 2 ** 31
    h.record(20_000 + (x / 2 ** 31) ** 6 * 5_000_000)
  }
  return h
}

t.test('hgrm, hlog and SVG of a run of three intervals and a second series', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kbx-rec-'))
  const files = { hgrm: join(dir, 'run.hgrm'), hlog: join(dir, 'run.hlog'), plot: join(dir, 'run.svg') }
  const { ctx } = context(files)
  const rec = LatencyRecording.open(ctx, { series: [{ name: 'ack', label: 'send→ack' }, { name: 'hold', label: 'hold time' }], rateUnit: 'acked tx/s', latencyLabel: 'latency' })
  t.equal(rec.active, true)
  const layout = new LogLinearLayout(5, 40)
  const counts = new Float64Array(layout.length)
  counts[layout.index(3000)] = 7
  const intervals = [interval(1, 5000), interval(2, 8000), interval(3, 3000)]
  const total = new LatencyHistogram()
  for (const [i, h] of intervals.entries()) {
    total.add(h)
    rec.interval({ ack: h, ...(i === 1 ? { hold: BucketHistogram.of(layout, counts) } : {}) }, 1000 * (i + 1))
    await new Promise((r) => setTimeout(r, 20))
  }
  t.same(rec.finish().sort(), [files.hgrm, files.hlog, files.plot, seriesFile(files.hgrm, 'hold')].sort())

  const log = parseHlog(readFileSync(files.hlog, 'utf8'))
  const untagged = log.intervals.filter((i) => i.tag === undefined)
  t.same(untagged.map((i) => i.histogram.totalCount), [5000, 8000, 3000], 'one untagged histogram per interval, with its count')
  t.same(log.intervals.filter((i) => i.tag === 'hold').map((i) => i.histogram.totalCount), [0, 7, 0], 'the second series tagged, every interval')
  untagged.forEach((i, k) => t.ok(i.endSec > i.startSec && (k === 0 || Math.abs(i.startSec - untagged[k - 1]!.endSec) < 0.002), `interval ${k} follows the one before`))
  const summed = newHdrHistogram()
  for (const i of untagged) summed.add(i.histogram)
  t.equal(summed.getValueAtPercentile(99), total.toHdr().getValueAtPercentile(99), 'the log sums to the run: p99')
  t.match(log.comments.join('\n'), /kbx: quic-flood --iface veth0 --rate 1k/)

  const table = parseHgrm(readFileSync(files.hgrm, 'utf8'))
  t.equal(table.totalCount, 16_000)
  t.ok(Math.abs(table.max - total.maxValueNs / 1000) <= (total.maxValueNs / 1000) * 1e-3, 'max')
  t.equal(parseHgrm(readFileSync(seriesFile(files.hgrm, 'hold'), 'utf8')).totalCount, 7, 'run.hold.hgrm')

  const svg = readFileSync(files.plot, 'utf8')
  t.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/)
  t.match(svg, /quic-flood --iface veth0 --rate 1k/, 'the run parameters in the title, without the file options')
  t.match(svg, /send→ack \(n=16k\)/)
  t.match(svg, /hold time \(n=7\)/)

  // HdrHistogram's Java log processor reads the log and agrees on the count and the percentiles
  const out = join(dir, 'java')
  execFileSync('java', ['-cp', HDR_JAR, 'org.HdrHistogram.HistogramLogProcessor', '-i', files.hlog, '-o', out, '-outputValueUnitRatio', '1000'], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000 })
  const java = parseHgrm(readFileSync(`${out}.hgrm`, 'utf8'))
  t.equal(java.totalCount, 16_000, 'Java: total count')
  for (const p of [0.5, 0.9, 0.99]) {
    const ours = table.rows.find((r) => r.percentile >= p)!
    const theirs = java.rows.find((r) => r.percentile >= p)!
    t.ok(Math.abs(ours.value - theirs.value) <= ours.value * 1e-3, `Java p${p * 100}: ${theirs.value} µs = ${ours.value} µs`)
  }
  const intervalsText = readFileSync(out, 'utf8')
  t.equal(intervalsText.split('\n').filter((l) => /^\d+\.\d+: I:/.test(l)).length, 3, 'Java: three intervals')
  execFileSync('java', ['-cp', HDR_JAR, 'org.HdrHistogram.HistogramLogProcessor', '-i', files.hlog, '-tag', 'hold', '-o', `${out}-hold`], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000 })
  t.equal(parseHgrm(readFileSync(`${out}-hold.hgrm`, 'utf8')).totalCount, 7, 'Java: the tagged series')

  // and hdr-histogram-js's reader with its default settings
  const reader = new hdr.HistogramLogReader(readFileSync(files.hlog, 'utf8'))
  let n = 0
  for (let h = reader.nextIntervalHistogram(); h !== null; h = reader.nextIntervalHistogram()) n += h.totalCount
  t.equal(n, 16_007)
})

t.test('without a file option nothing is written; a file that cannot be written is a usage error at open', async (t) => {
  const none = LatencyRecording.open(context({}).ctx, { series: [{ name: 'ack', label: 'ack' }], rateUnit: '/s', latencyLabel: 'l' })
  t.equal(none.active, false)
  none.interval({ ack: interval(1, 10) })
  t.same(none.finish(), [])
  t.throws(() => LatencyRecording.open(context({ hlog: '/nonexistent-dir/x.hlog' }).ctx, { series: [{ name: 'a', label: 'a' }], rateUnit: '', latencyLabel: '' }), { name: 'UsageError', exitCode: 2, message: /--hlog \/nonexistent-dir\/x\.hlog: cannot be written/ })
  t.throws(() => LatencyRecording.open(context({ plot: '/nonexistent-dir/x.svg' }).ctx, { series: [{ name: 'a', label: 'a' }], rateUnit: '', latencyLabel: '' }), { name: 'UsageError' })
})

t.test('run parameters leave the file options out', async (t) => {
  t.equal(runParameters('fix-tcp', ['--orders', '10', '--hlog', 'a.hlog', '--plot=b.svg', '--hgrm', 'c', '--io', 'xdp']), 'fix-tcp --orders 10 --io xdp')
  t.equal(seriesFile('/tmp/run.hgrm', 'hold'), '/tmp/run.hold.hgrm')
  t.equal(seriesFile('run', 'hold'), 'run.hold')
})
