import { KbxError } from '@kbx/errors'
import { stringifyJson } from './json.js'
import { writeAllSync } from './write.js'

/** Where JSON lines go: a file descriptor, or anything with `write` (a stream with an `fd` is written to by fd). */
export type JsonLinesOutput = number | { write(chunk: string): unknown; fd?: unknown }

export interface JsonLinesOptions {
  tool: string
  /** Default stdout, written synchronously through fd 1 (process.stdout is not touched, so a pipe stays blocking). */
  out?: JsonLinesOutput
  /** False for --no-json: nothing is written. */
  enabled?: boolean
  /** Clock in milliseconds since the epoch; tests inject one. */
  now?: () => number
}

export type EventData = Record<string, unknown>

/**
 * Machine-readable events, one JSON object per line on stdout:
 * `{"event":"interval","tool":"quic-flood","ts":1700000000.123,"data":{...}}`.
 * Lines are written synchronously in one write each so they never interleave and `end` is never
 * lost when the process exits right after it.
 */
export class JsonLines {
  readonly tool: string
  readonly enabled: boolean
  private readonly fd: number | undefined
  private readonly writer: { write(chunk: string): unknown } | undefined
  private readonly now: () => number
  private readerGone = false

  constructor(options: JsonLinesOptions) {
    this.tool = options.tool
    this.enabled = options.enabled ?? true
    this.now = options.now ?? Date.now
    const out = options.out ?? 1
    if (typeof out === 'number') {
      this.fd = out
    } else if (typeof out.fd === 'number') {
      this.fd = out.fd
    } else {
      this.writer = out
    }
  }

  /** The line `emit` would write, without the trailing newline. */
  format(event: string, data: EventData = {}): string {
    const ts = Math.round(this.now()) / 1000
    return stringifyJson({ event, tool: this.tool, ts, data })
  }

  emit(event: string, data: EventData = {}): void {
    if (!this.enabled || this.readerGone) return
    const line = this.format(event, data) + '\n'
    if (this.fd !== undefined) {
      if (!writeAllSync(this.fd, line)) this.readerGone = true
    } else {
      this.writer?.write(line)
    }
  }

  start(data: EventData = {}): void {
    this.emit('start', data)
  }

  interval(data: EventData = {}): void {
    this.emit('interval', data)
  }

  end(data: EventData = {}): void {
    this.emit('end', data)
  }

  error(err: unknown, data: EventData = {}): void {
    this.emit('error', { ...errorData(err), ...data })
  }
}

/** The fields of an `error` event for any thrown value. */
export function errorData(err: unknown): EventData {
  if (err instanceof KbxError) return err.toJSON()
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code
    return { type: err.name, message: err.message, ...(typeof code === 'string' ? { code } : {}) }
  }
  return { type: typeof err, message: String(err) }
}
