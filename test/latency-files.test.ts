// --hgrm, --hlog and --plot of a real run: quic-flood against quic-sink on a test bed for 2 s, then each file read
// back (hdr-histogram-js, the .hgrm parser, rsvg-convert) and checked against the run's own end event.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { withTestNet } from '@kbx/testbed'
import { parseHgrm, parseHlog } from '@kbx/stats'
import { decodePng, luminanceVariance } from '../packages/report/src/testing/png.js'
import { waitUntil } from '@kbx/testbed'
import { abBed, runFeedOnBed, startArbitrator } from './testing/ab-bed.js'
import { fixBed, runFixTcp } from './testing/fix-bed.js'
import { runFlood, startSink, stopSink } from './testing/quic-bed.js'

t.setTimeout(180_000)

t.test('quic-flood --hgrm --hlog --plot: three files that parse and agree with the end event', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kbx-latency-files-'))
  const files = { hgrm: join(dir, 'flood.hgrm'), hlog: join(dir, 'flood.hlog'), plot: join(dir, 'flood.svg') }
  const net = withTestNet(t)
  const { netns, local, remote } = net.addLinkedNamespace()
  const sink = await startSink(net, netns, `${remote.ip}:8004`)
  const flood = runFlood(net, ['--iface', local.name, '--server', `${remote.ip}:8004`, '--io', 'xdp', '--rate', '20000', '--duration', '2', '--interval', '0.5', '--hgrm', files.hgrm, '--hlog', files.hlog, '--plot', files.plot])
  t.same(await flood.exited, { code: 0, signal: null }, flood.stderr())
  await stopSink(sink)
  const end = flood.events.find((e) => e.event === 'end')?.data
  const intervals = flood.events.filter((e) => e.event === 'interval')
  t.ok(end?.acked > 10_000, `acked ${end?.acked}`)
  const latency = end!.ackLatencyUs

  const log = parseHlog(readFileSync(files.hlog, 'utf8'))
  t.ok(log.intervals.length >= intervals.length, `one histogram per interval (${log.intervals.length} for ${intervals.length} interval events, and the last stretch)`)
  t.ok(log.intervals.every((i) => i.tag === undefined), 'send→ack is the untagged series')
  t.equal(log.intervals.reduce((n, i) => n + i.histogram.totalCount, 0), latency.count, 'the log holds every acked transaction once')
  intervals.forEach((e, k) => t.equal(log.intervals[k]!.histogram.totalCount, e.data.ackLatencyUs.count, `interval ${k + 1}: the same count as its event`))
  t.match(log.comments.join('\n'), /kbx: quic-flood --iface \S+ --server \S+ --io xdp --rate 20000 --duration 2 --interval 0\.5\]/, 'the run parameters, without the file options')

  const table = parseHgrm(readFileSync(files.hgrm, 'utf8'))
  t.equal(table.totalCount, latency.count, '.hgrm total count')
  // the end event decodes the C histogram's buckets (1/128 wide) itself: each percentile lies between the .hgrm rows around it
  for (const [p, value] of [[0.5, latency.p50], [0.9, latency.p90], [0.99, latency.p99]] as const) {
    const below = table.rows.findLast((r) => r.percentile <= p)!
    const above = table.rows.find((r) => r.percentile >= p)!
    t.ok(value >= below.value * 0.99 - 0.01 && value <= above.value * 1.01 + 0.01, `p${p * 100}: ${value} µs within the .hgrm's ${below.value}…${above.value} µs`)
  }
  t.ok(Math.abs(table.max - latency.max) <= latency.max * 0.01 + 1, `max ${table.max} µs ≈ ${latency.max}`)

  const svg = readFileSync(files.plot, 'utf8')
  t.match(svg, /quic-flood --iface/, 'parameters in the title')
  t.match(svg, /acked tx\/s/)
  const png = join(dir, 'flood.png')
  execFileSync('rsvg-convert', [files.plot, '-o', png])
  t.ok(luminanceVariance(decodePng(readFileSync(png))) > 100, 'rendered and not blank')
})

t.test('ab-arbitrate --hlog --hgrm: the skew (both sides) and the hold times as series, as many as the end event counts', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kbx-latency-files-'))
  const files = { hgrm: join(dir, 'ab.hgrm'), hlog: join(dir, 'ab.hlog') }
  const net = withTestNet(t)
  const bed = abBed(net)
  const arb = await startArbitrator(net, bed, ['--order', 'sequence', '--hold-us', '50000', '--skew-sample', '1', '--hlog', files.hlog, '--hgrm', files.hgrm])
  const feed = await runFeedOnBed(net, bed, ['--dst-a', bed.dstA.ip!, '--dst-b', bed.dstB.ip!, '--count', '3000', '--rate', '5000', '--seed', '3', '--loss-a', '0.05', '--loss-b', '0.05', '--reorder-a', '0.1:8', '--delay-b', '40'])
  t.same(await feed.exited, { code: 0, signal: null }, feed.stderr())
  const union = feed.events.find((e) => e.event === 'end')!.data['union']
  await waitUntil('the union to be delivered', () => arb.events.some((e) => e.event === 'interval' && e.data['delivered'] >= union), 30_000).catch(() => {})
  arb.child.kill('SIGINT')
  t.same(await arb.exited, { code: 0, signal: null }, arb.stderr())
  const end = arb.events.find((e) => e.event === 'end')!.data

  const log = parseHlog(readFileSync(files.hlog, 'utf8'))
  const total = (tag: string | undefined) => log.intervals.filter((i) => i.tag === tag).reduce((n, i) => n + i.histogram.totalCount, 0)
  t.ok(end.skewUs.samples > 1000, `skew sampled (${end.skewUs.samples})`)
  t.equal(total(undefined) + total('skew-a-late'), end.skewUs.samples, 'B-after-A (untagged) and A-after-B together: every skew sample')
  t.ok(total(undefined) > total('skew-a-late'), 'line B, delayed, mostly arrives second')
  t.equal(total('hold'), end.order.heldUs.count, 'one hold time per held packet')
  t.equal(parseHgrm(readFileSync(files.hgrm, 'utf8')).totalCount, total(undefined), 'ab.hgrm: the main series')
  t.equal(parseHgrm(readFileSync(join(dir, 'ab.hold.hgrm'), 'utf8')).totalCount, end.order.heldUs.count, 'ab.hold.hgrm')
  t.equal(parseHgrm(readFileSync(join(dir, 'ab.skew-a-late.hgrm'), 'utf8')).totalCount, total('skew-a-late'), 'ab.skew-a-late.hgrm')
})

t.test('fix-tcp --hgrm --hlog --plot: every order→ack latency in the log and the table', async (t) => {
  const b = await fixBed(t)
  const files = { hgrm: join(b.dir, 'fix.hgrm'), hlog: join(b.dir, 'fix.hlog'), plot: join(b.dir, 'fix.svg') }
  const run = await runFixTcp(b, ['--orders', '3000', '--rate', '3000', '--interval', '0.25', '--reset', '--hgrm', files.hgrm, '--hlog', files.hlog, '--plot', files.plot], 'socket')
  t.equal(run.end.latencyUs.count, 3000)
  const log = parseHlog(readFileSync(files.hlog, 'utf8'))
  t.equal(log.intervals.reduce((n, i) => n + i.histogram.totalCount, 0), 3000, 'every order once in the log')
  t.ok(log.intervals.length >= 3, `${log.intervals.length} intervals`)
  t.equal(parseHgrm(readFileSync(files.hgrm, 'utf8')).totalCount, 3000)
  t.match(readFileSync(files.plot, 'utf8'), /order→ack \(n=3000\)/)
})
