// The live line of a long-running tool: one line on stderr, redrawn in place by TtyStatus, only on a terminal.
import { formatNumber } from './tty.js'

/** Whether the live line is drawn: stderr is a terminal and --no-live was not given. */
export function liveLineEnabled(options: { live?: boolean | undefined; isTTY: boolean }): boolean {
  return options.live !== false && options.isTTY
}

/** A latency in µs as a person reads it: 850µs, 1.25ms, 2.1s. */
export function formatMicros(us: number): string {
  if (!Number.isFinite(us)) return '-'
  const magnitude = Math.abs(us)
  if (magnitude < 1000) return `${formatNumber(Math.round(us * 10) / 10)}µs`
  if (magnitude < 1_000_000) return `${formatNumber(Math.round(us / 10) / 100)}ms`
  return `${formatNumber(Math.round(us / 10_000) / 100)}s`
}

export interface LiveLineFields {
  tool: string
  /** Seconds since the run started. */
  elapsedSec?: number
  /** The main rate, e.g. { value: 102345, unit: 'tx/s' }. */
  rate?: { value: number; unit: string }
  /** Running totals, shown in order: { acked: 123, sent: 130 }. */
  totals?: Readonly<Record<string, number | bigint>>
  /** Percentiles so far, in µs; `label` names what is measured (e.g. "ack"). Left out when nothing was recorded. */
  latency?: { label?: string; count: number; p50: number; p99: number }
}

/** `quic-flood 12s │ 102,345 tx/s │ acked 1,234,567  sent 1,240,000 │ ack p50 400µs p99 986µs` */
export function formatLiveLine(f: LiveLineFields): string {
  const parts = [f.elapsedSec === undefined ? f.tool : `${f.tool} ${formatNumber(Math.floor(f.elapsedSec))}s`]
  if (f.rate) parts.push(`${formatNumber(Math.round(f.rate.value))} ${f.rate.unit}`)
  const totals = Object.entries(f.totals ?? {}).map(([k, v]) => `${k} ${formatNumber(v)}`)
  if (totals.length > 0) parts.push(totals.join('  '))
  if (f.latency && f.latency.count > 0) parts.push(`${f.latency.label === undefined ? '' : `${f.latency.label} `}p50 ${formatMicros(f.latency.p50)} p99 ${formatMicros(f.latency.p99)}`)
  return parts.join(' │ ')
}
