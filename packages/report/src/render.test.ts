// The SVG as a person sees it: rendered by a real SVG renderer (librsvg's rsvg-convert), then looked at.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LatencyHistogram } from '@kbx/stats'
import { renderChart } from './chart.js'
import { curveOfHdr, curveOfSummary } from './curves.js'
import { countColour, decodePng, luminanceVariance } from './testing/png.js'

const dir = mkdtempSync(join(tmpdir(), 'kbx-render-'))

function render(svg: string, name: string) {
  const svgPath = join(dir, `${name}.svg`)
  const pngPath = join(dir, `${name}.png`)
  writeFileSync(svgPath, svg)
  execFileSync('rsvg-convert', [svgPath, '-o', pngPath], { stdio: ['ignore', 'ignore', 'pipe'] })
  return decodePng(readFileSync(pngPath))
}

function skewed(base: number, tail: number, seed: number): LatencyHistogram {
  const h = new LatencyHistogram()
  let x = seed
  for (let i = 0; i < 50_000; i++) {
    x = (x * 1103515245 + 12345) % 2 ** 31
    h.record(base + (x / 2 ** 31) ** 8 * tail)
  }
  return h
}

t.test('two runs and their rates render to a non-blank picture with both curves in their colours', async (t) => {
  const rates = (k: number) => Array.from({ length: 10 }, (_, i) => ({ tSec: i + 1, perSec: k * (1 + 0.1 * Math.sin(i)) }))
  const png = render(
    renderChart({
      title: 'quic-flood --iface veth0 --duration 10 vs --io socket',
      subtitle: 'two runs',
      curves: [curveOfHdr('xdp', skewed(20_000, 2_000_000, 1).toHdr()), curveOfHdr('socket', skewed(30_000, 1_000_000, 2).toHdr())],
      rates: [
        { label: 'xdp', points: rates(100_000) },
        { label: 'socket', points: rates(80_000) },
      ],
      rateUnit: 'acked tx/s',
      latencyLabel: 'send→ack latency',
    }),
    'two-runs',
  )
  t.equal(png.width, 960)
  t.equal(png.height, 680)
  t.ok(luminanceVariance(png) > 100, `not blank (luminance variance ${luminanceVariance(png).toFixed(0)})`)
  t.ok(countColour(png, [0x1f, 0x77, 0xb4]) > 500, 'the first run is drawn in blue')
  t.ok(countColour(png, [0xd6, 0x27, 0x28]) > 500, 'the second run is drawn in red')
})

t.test('a blank chart (no data) still renders; only a summary curve renders too', async (t) => {
  const empty = render(renderChart({ title: 'nothing', curves: [], rates: [] }), 'empty')
  t.ok(luminanceVariance(empty) > 0, 'axes and frames only')
  const summary = render(renderChart({ title: 'from JSON lines', curves: [curveOfSummary('fix-tcp', { count: 2000, min: 24.2, p50: 147.8, p90: 375.3, p99: 1611.8, p999: 5521.4, max: 8370.8 })], rates: [] }), 'summary')
  t.ok(countColour(summary, [0x1f, 0x77, 0xb4]) > 200, 'the curve through p50…p99.9 is drawn')
  t.ok(luminanceVariance(summary) > luminanceVariance(empty), 'more drawn than the empty chart')
})

t.test('titles with markup characters stay valid XML', async (t) => {
  const png = render(renderChart({ title: 'a <b> & "c"', curves: [curveOfHdr('x<y', skewed(1000, 10_000, 3).toHdr())], rates: [] }), 'escaped')
  t.ok(luminanceVariance(png) > 100)
})
