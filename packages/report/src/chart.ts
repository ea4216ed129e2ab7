// The comparison picture of latency runs, hand-written SVG: the percentile curve (x: 1/(1-p) on a log
// scale up to p99.99, as HdrHistogram's plotter draws it) above the per-interval rate of each run.

/** A value of a latency distribution at a percentile (0..100). */
export interface PercentilePoint {
  percentile: number
  valueNs: number
}

export interface LatencyCurve {
  label: string
  points: PercentilePoint[]
  /** The largest value recorded, marked at the right edge. */
  maxNs?: number
  count?: number
}

export interface RateSeries {
  label: string
  /** Seconds since the run's start (the interval's end) and the rate over the interval. */
  points: { tSec: number; perSec: number }[]
}

export interface ChartInput {
  title: string
  subtitle?: string
  curves: LatencyCurve[]
  rates: RateSeries[]
  /** e.g. "acked tx/s"; default "per second". */
  rateUnit?: string
  /** What the curves measure, e.g. "send→ack latency". */
  latencyLabel?: string
}

/** The furthest percentile drawn: 99.99 (1/(1-p) = 10^4). */
export const TOP_PERCENTILE = 99.99
const X_DECADES = 4
const WIDTH = 960
const HEIGHT = 680
const MARGIN = { left: 90, right: 30 }
const LATENCY_PANEL = { top: 92, height: 340 }
const RATE_PANEL = { top: 500, height: 130 }
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf']

export function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!)
}

/** x position (0..4) of a percentile: log10(1/(1-p)), p99.99 and above at 4. */
export function percentileToDecades(percentile: number): number {
  if (percentile >= TOP_PERCENTILE) return X_DECADES
  return Math.min(Math.log10(1 / (1 - Math.max(percentile, 0) / 100)), X_DECADES)
}

/** Round step sizes: 1, 2 or 5 times a power of ten, about `target` steps over `span`. */
export function niceStep(span: number, target = 5): number {
  if (!(span > 0)) return 1
  const raw = span / target
  const power = 10 ** Math.floor(Math.log10(raw))
  const mantissa = raw / power
  return (mantissa <= 1 ? 1 : mantissa <= 2 ? 2 : mantissa <= 5 ? 5 : 10) * power
}

interface TimeUnit {
  name: string
  ns: number
}

const UNITS: TimeUnit[] = [
  { name: 'ns', ns: 1 },
  { name: 'µs', ns: 1e3 },
  { name: 'ms', ns: 1e6 },
  { name: 's', ns: 1e9 },
]

/** The unit in which the largest value reads best (under 1000 of it). */
export function unitFor(maxNs: number): TimeUnit {
  return UNITS.findLast((u) => maxNs >= u.ns) ?? UNITS[0]!
}

function formatTick(value: number): string {
  if (value === 0) return '0'
  const abs = Math.abs(value)
  if (abs >= 1e6) return `${+(value / 1e6).toPrecision(3)}M`
  if (abs >= 1e4) return `${+(value / 1e3).toPrecision(3)}k`
  return `${+value.toPrecision(4)}`
}

function percentileLabel(decade: number): string {
  return decade === 0 ? '0%' : `${(100 * (1 - 10 ** -decade)).toFixed(Math.max(decade - 2, 0))}%`
}

/** A y axis: linear from 0, or logarithmic when the tail spans more than two decades over the body. */
interface Axis {
  toY(value: number): number
  ticks: number[]
}

function linearAxis(max: number, top: number, height: number): Axis {
  const step = niceStep(max)
  const end = Math.max(step, Math.ceil(max / step) * step)
  const ticks = Array.from({ length: Math.round(end / step) + 1 }, (_, i) => i * step)
  return { toY: (v) => top + height - (Math.max(v, 0) / end) * height, ticks }
}

function logAxis(min: number, max: number, top: number, height: number): Axis {
  const lo = Math.floor(Math.log10(Math.max(min, 1e-9)))
  const hi = Math.max(Math.ceil(Math.log10(max)), lo + 1)
  const ticks: number[] = []
  for (let d = lo; d <= hi; d++) for (const m of hi - lo > 4 ? [1] : [1, 2, 5]) if (m * 10 ** d <= 10 ** hi) ticks.push(m * 10 ** d)
  return { toY: (v) => top + height - ((Math.log10(Math.max(v, 10 ** lo)) - lo) / (hi - lo)) * height, ticks }
}

const plotWidth = WIDTH - MARGIN.left - MARGIN.right
const toX = (decades: number) => MARGIN.left + (decades / X_DECADES) * plotWidth
const num = (v: number) => (Math.round(v * 10) / 10).toString()

/** Splits a long title into at most `lines` lines of about `width` characters, at spaces. */
export function wrapText(text: string, width: number, lines = 2): string[] {
  const out: string[] = []
  let line = ''
  for (const word of text.split(/\s+/).filter((w) => w !== '')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      out.push(line)
      line = word
    } else line = line === '' ? word : `${line} ${word}`
  }
  if (line !== '') out.push(line)
  if (out.length > lines) out.splice(lines - 1, out.length - lines + 1, `${out.slice(lines - 1).join(' ').slice(0, width - 1)}…`)
  return out
}

function latencyPanel(input: ChartInput, out: string[]): void {
  const { top, height } = LATENCY_PANEL
  const values = input.curves.flatMap((c) => c.points.filter((p) => p.percentile <= TOP_PERCENTILE).map((p) => p.valueNs))
  const positive = values.filter((v) => v > 0)
  const maxNs = Math.max(...values, 1)
  const unit = unitFor(maxNs)
  // the body: the smallest median of the curves; a tail more than 30 times above it is drawn on a log scale
  const medians = input.curves.map((c) => c.points.find((p) => p.percentile >= 50)?.valueNs).filter((v): v is number => v !== undefined && v > 0)
  const body = medians.length ? Math.min(...medians) : maxNs
  const useLog = positive.length > 0 && maxNs / Math.max(body, 1) > 30
  const axis = useLog ? logAxis(Math.min(...positive) / unit.ns, maxNs / unit.ns, top, height) : linearAxis(maxNs / unit.ns, top, height)
  out.push(`<rect x="${MARGIN.left}" y="${top}" width="${plotWidth}" height="${height}" fill="#fafafa" stroke="#999"/>`)
  for (const tick of axis.ticks) {
    const y = num(axis.toY(tick))
    out.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotWidth}" y1="${y}" y2="${y}" stroke="#ddd"/>`)
    out.push(`<text x="${MARGIN.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle" font-size="11">${formatTick(tick)}</text>`)
  }
  for (let d = 0; d <= X_DECADES; d++) {
    const x = num(toX(d))
    out.push(`<line x1="${x}" x2="${x}" y1="${top}" y2="${top + height}" stroke="#ddd"/>`)
    out.push(`<text x="${x}" y="${top + height + 16}" text-anchor="middle" font-size="11">${percentileLabel(d)}</text>`)
  }
  out.push(`<text x="${MARGIN.left + plotWidth / 2}" y="${top + height + 34}" text-anchor="middle" font-size="12">percentile</text>`)
  const yLabel = `${escapeXml(input.latencyLabel ?? 'latency')} (${unit.name}${useLog ? ', log scale' : ''})`
  out.push(`<text transform="translate(18 ${top + height / 2}) rotate(-90)" text-anchor="middle" font-size="12">${yLabel}</text>`)
  input.curves.forEach((curve, i) => {
    const color = COLORS[i % COLORS.length]!
    const pts = curve.points
      .filter((p) => p.percentile <= TOP_PERCENTILE && Number.isFinite(p.valueNs))
      .map((p) => `${num(toX(percentileToDecades(p.percentile)))},${num(axis.toY(p.valueNs / unit.ns))}`)
    if (pts.length > 0) out.push(`<polyline points="${pts.join(' ')}" fill="none" stroke="${color}" stroke-width="2"/>`)
    if (curve.maxNs !== undefined && curve.maxNs > 0) {
      const y = Math.max(axis.toY(curve.maxNs / unit.ns), top)
      out.push(`<circle cx="${num(toX(X_DECADES))}" cy="${num(y)}" r="4" fill="${color}"><title>max ${escapeXml(formatTick(curve.maxNs / unit.ns))} ${unit.name}</title></circle>`)
    }
  })
  legend(input.curves.map((c) => (c.count === undefined ? c.label : `${c.label} (n=${formatTick(c.count)})`)), MARGIN.left + 12, top + 16, out)
}

function legend(labels: string[], x: number, y: number, out: string[]): void {
  labels.forEach((label, i) => {
    const color = COLORS[i % COLORS.length]!
    const ly = y + i * 18
    out.push(`<line x1="${x}" x2="${x + 22}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="3"/>`)
    out.push(`<text x="${x + 28}" y="${ly}" dominant-baseline="middle" font-size="12">${escapeXml(label)}</text>`)
  })
}

function ratePanel(input: ChartInput, out: string[]): void {
  const { top, height } = RATE_PANEL
  out.push(`<rect x="${MARGIN.left}" y="${top}" width="${plotWidth}" height="${height}" fill="#fafafa" stroke="#999"/>`)
  const all = input.rates.flatMap((r) => r.points)
  if (all.length === 0) {
    out.push(`<text x="${MARGIN.left + plotWidth / 2}" y="${top + height / 2}" text-anchor="middle" font-size="12" fill="#666">no per-interval rate</text>`)
    return
  }
  const tMax = Math.max(...all.map((p) => p.tSec), 1e-3)
  const xStep = niceStep(tMax)
  const tEnd = Math.ceil(tMax / xStep) * xStep
  const axis = linearAxis(Math.max(...all.map((p) => p.perSec), 1), top, height)
  const x = (t: number) => MARGIN.left + (t / tEnd) * plotWidth
  for (const tick of axis.ticks) {
    const y = num(axis.toY(tick))
    out.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotWidth}" y1="${y}" y2="${y}" stroke="#ddd"/>`)
    out.push(`<text x="${MARGIN.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle" font-size="11">${formatTick(tick)}</text>`)
  }
  for (let t = 0; t <= tEnd + 1e-9; t += xStep) {
    out.push(`<text x="${num(x(t))}" y="${top + height + 16}" text-anchor="middle" font-size="11">${formatTick(+t.toPrecision(6))}</text>`)
  }
  out.push(`<text x="${MARGIN.left + plotWidth / 2}" y="${top + height + 34}" text-anchor="middle" font-size="12">seconds</text>`)
  out.push(`<text transform="translate(18 ${top + height / 2}) rotate(-90)" text-anchor="middle" font-size="12">${escapeXml(input.rateUnit ?? 'per second')}</text>`)
  input.rates.forEach((series, i) => {
    const curve = input.curves.findIndex((c) => c.label === series.label)
    const color = COLORS[(curve >= 0 ? curve : i) % COLORS.length]!
    const pts = series.points.map((p) => `${num(x(p.tSec))},${num(axis.toY(p.perSec))}`)
    out.push(`<polyline points="${pts.join(' ')}" fill="none" stroke="${color}" stroke-width="2"/>`)
    for (const p of pts) out.push(`<circle cx="${p.split(',')[0]}" cy="${p.split(',')[1]}" r="2.5" fill="${color}"/>`)
  })
}

/** The whole picture as SVG text. */
export function renderChart(input: ChartInput): string {
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="#fff"/>`,
  ]
  wrapText(input.title, 110).forEach((line, i) => out.push(`<text x="${WIDTH / 2}" y="${24 + i * 19}" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(line)}</text>`))
  if (input.subtitle !== undefined) out.push(`<text x="${WIDTH / 2}" y="66" text-anchor="middle" font-size="12" fill="#444">${escapeXml(input.subtitle)}</text>`)
  latencyPanel(input, out)
  ratePanel(input, out)
  out.push('</svg>\n')
  return out.join('\n')
}
