// kbx-plot as a user runs it: saved runs of several kinds in, one SVG out (rendered by rsvg-convert to check it).
import t from 'tap'
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { HlogFile, LatencyHistogram, formatHgrm } from '@kbx/stats'
import { decodePng, luminanceVariance } from './testing/png.js'

const BIN = fileURLToPath(new URL('./bin-kbx-plot.ts', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'kbx-plot-'))

function kbxPlot(args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--conditions=kbx-source', BIN, ...args], { encoding: 'utf8', timeout: 60_000 })
  return { code: r.status, stderr: r.stderr, events: r.stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { event: string; data: any }) }
}

function latencies(base: number, seed: number, n = 4000): LatencyHistogram {
  const h = new LatencyHistogram()
  let x = seed
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) % 2 ** 31
    h.record(base + (x / 2 ** 31) ** 6 * base * 20)
  }
  return h
}

function hlog(name: string, base: number): string {
  const path = join(dir, name)
  const log = new HlogFile(path, Date.now(), ['[kbx series: (untagged)=send→ack; values in ns]'])
  for (let i = 0; i < 4; i++) log.write(latencies(base, i + 1).toHdr(), i, i + 1)
  log.close()
  return path
}

t.test('xdp vs socket from two .hlog files, a .hgrm and JSON lines: one SVG, labelled as asked', async (t) => {
  const xdp = hlog('xdp.hlog', 25_000)
  const socket = hlog('socket.hlog', 31_000)
  const hgrm = join(dir, 'fix.hgrm')
  writeFileSync(hgrm, formatHgrm(latencies(50_000, 9).toHdr()))
  const jsonl = join(dir, 'ab.jsonl')
  writeFileSync(
    jsonl,
    [
      { event: 'start', tool: 'quic-flood', ts: 100, data: {} },
      { event: 'interval', tool: 'quic-flood', ts: 101, data: { ackedPerSec: 1000 } },
      { event: 'interval', tool: 'quic-flood', ts: 102, data: { ackedPerSec: 1200 } },
      { event: 'end', tool: 'quic-flood', ts: 102.5, data: { sent: 2200, ackLatencyUs: { count: 2200, min: 10, mean: 30, p50: 25, p90: 40, p99: 80, p999: 120, max: 300 } } },
    ]
      .map((e) => JSON.stringify(e))
      .join('\n') + '\n',
  )
  const out = join(dir, 'cmp.svg')
  const r = kbxPlot([xdp, socket, hgrm, jsonl, '--label', 'xdp', '--label', 'socket', '--label', 'fix', '--label', 'json', '-o', out])
  t.equal(r.code, 0, r.stderr)
  const end = r.events.find((e) => e.event === 'end')?.data
  t.same(end?.curves.map((c: { label: string }) => c.label), ['xdp', 'socket', 'fix', 'json'])
  t.same(end?.curves.map((c: { count: number }) => c.count), [16_000, 16_000, 4000, 2200])
  t.same(end?.rates, [
    { label: 'xdp', intervals: 4 },
    { label: 'socket', intervals: 4 },
    { label: 'json', intervals: 2 },
  ])
  const svg = readFileSync(out, 'utf8')
  t.match(svg, /latency: xdp vs socket vs fix vs json/)
  const png = join(dir, 'cmp.png')
  execFileSync('rsvg-convert', [out, '-o', png])
  t.ok(luminanceVariance(decodePng(readFileSync(png))) > 100, 'rendered, not blank')

  const defaults = kbxPlot([xdp, socket, '-o', join(dir, 'default.svg')])
  t.equal(defaults.code, 0, defaults.stderr)
  t.same(defaults.events.find((e) => e.event === 'end')?.data.curves.map((c: { label: string }) => c.label), ['xdp.hlog', 'socket.hlog'], 'labelled by file name')
})

t.test('bad input: exit 2 with a message naming the file or option', async (t) => {
  const garbage = join(dir, 'garbage.txt')
  writeFileSync(garbage, 'hello\n')
  const cases: [string[], RegExp][] = [
    [[join(dir, 'missing.hlog'), '-o', join(dir, 'x.svg')], /missing\.hlog: ENOENT/],
    [[garbage, '-o', join(dir, 'x.svg')], /garbage\.txt: neither an HdrHistogram log/],
    [[garbage, '--label', 'a', '--label', 'b', '-o', join(dir, 'x.svg')], /--label given 2 times for 1 files/],
    [[garbage, '-o', '/nonexistent-dir/x.svg'], /--out \/nonexistent-dir\/x\.svg: cannot be written/],
    [[garbage], /required option '-o, --out <file.svg>' not specified/],
  ]
  for (const [args, message] of cases) {
    const r = kbxPlot(args)
    t.equal(r.code, 2, `${args.join(' ')}: exit 2`)
    t.match(r.stderr, message)
  }
})
