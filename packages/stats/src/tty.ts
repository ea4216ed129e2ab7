import { isatty } from 'node:tty'
import { writeAllSync } from './write.js'

export interface TtyStatusOptions {
  /** Default fd 2 (stderr). */
  fd?: number
  /** Default: whether `fd` is a TTY. */
  enabled?: boolean
  /** Minimum time between two redraws (default 100 ms: at most 10 per second). */
  minIntervalMs?: number
  /** Terminal width used to cut the line; default the TTY's columns or 120. */
  columns?: number
}

const CLEAR_LINE = '\r\x1b[2K'

/**
 * A one-line live status on stderr, drawn only when stderr is a terminal. Redraws are throttled;
 * the newest text of a throttled burst is drawn when the throttle window ends. Log lines can be
 * written around it with `writeAbove`.
 */
export class TtyStatus {
  readonly enabled: boolean
  private readonly fd: number
  private readonly minIntervalMs: number
  private readonly columns: number
  private text = ''
  private shown = false
  private lastDrawAt = -Infinity
  private pendingTimer: NodeJS.Timeout | undefined
  private stopped = false

  constructor(options: TtyStatusOptions = {}) {
    this.fd = options.fd ?? 2
    // isatty() rather than process.stderr.isTTY: touching process.stderr would make a piped fd 2 non-blocking.
    const tty = isatty(this.fd)
    this.enabled = options.enabled ?? tty
    this.minIntervalMs = options.minIntervalMs ?? 100
    // a terminal of unknown size (a pty nobody sized, e.g. under script(1)) reports 0 columns
    this.columns = options.columns ?? ((tty && this.fd === 2 ? process.stderr.columns : 0) || 120)
  }

  /** Sets the status text; drawn now or at the end of the current throttle window. */
  update(text: string): void {
    if (!this.enabled || this.stopped) return
    this.text = text.replace(/[\r\n]+/g, ' ')
    const sinceLast = Date.now() - this.lastDrawAt
    if (sinceLast >= this.minIntervalMs) {
      this.draw()
    } else if (this.pendingTimer === undefined) {
      this.pendingTimer = setTimeout(() => {
        this.pendingTimer = undefined
        if (!this.stopped) this.draw()
      }, this.minIntervalMs - sinceLast)
      this.pendingTimer.unref()
    }
  }

  /** Writes `chunk` (e.g. a log line) on its own lines, keeping the status line below it. */
  writeAbove(chunk: string): void {
    if (this.shown) writeAllSync(this.fd, CLEAR_LINE)
    writeAllSync(this.fd, chunk)
    if (this.shown) writeAllSync(this.fd, this.visibleText())
  }

  /** Removes the status line and stops drawing. */
  stop(): void {
    this.stopped = true
    if (this.pendingTimer !== undefined) clearTimeout(this.pendingTimer)
    this.pendingTimer = undefined
    if (this.shown) writeAllSync(this.fd, CLEAR_LINE)
    this.shown = false
  }

  private draw(): void {
    this.lastDrawAt = Date.now()
    writeAllSync(this.fd, CLEAR_LINE + this.visibleText())
    this.shown = true
  }

  private visibleText(): string {
    const width = Math.max(this.columns - 1, 10)
    return this.text.length > width ? this.text.slice(0, width - 1) + '…' : this.text
  }
}

/** Short number formatting for humans: grouped integers, at most 3 decimals. */
export function formatNumber(value: number | bigint): string {
  if (typeof value === 'bigint') return value.toLocaleString('en-US')
  if (!Number.isFinite(value)) return String(value)
  if (Number.isInteger(value)) return value.toLocaleString('en-US')
  return value.toLocaleString('en-US', { maximumFractionDigits: Math.abs(value) >= 100 ? 1 : 3 })
}

function formatValue(value: unknown): string {
  if (typeof value === 'number' || typeof value === 'bigint') return formatNumber(value)
  if (typeof value === 'string') return value
  if (value === null || value === undefined) return '-'
  if (Array.isArray(value)) return value.map(formatValue).join(', ')
  if (typeof value === 'object') {
    return Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k} ${formatValue(v)}`)
      .join('  ')
  }
  return String(value)
}

/**
 * Human-readable end-of-run summary: a title line then one aligned `key  value` line per field.
 * Nested objects (e.g. a latency summary) print on one line as `p50 12.3  p99 45.6 …`.
 */
export function formatSummary(tool: string, data: Readonly<Record<string, unknown>>): string {
  const rows = Object.entries(data).filter(([, v]) => v !== undefined)
  const width = rows.reduce((w, [k]) => Math.max(w, k.length), 0)
  const lines = [`${tool} summary`]
  for (const [key, value] of rows) lines.push(`  ${key.padEnd(width)}  ${formatValue(value)}`)
  return lines.join('\n') + '\n'
}
