import { pino } from 'pino'
import type { Logger } from 'pino'
import { writeAllSync } from './write.js'
import type { TtyStatus } from './tty.js'

export type { Logger } from 'pino'

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value)
}

export interface LoggerOptions {
  name: string
  level?: LogLevel
  /** Default fd 2. */
  fd?: number
  /** Keeps a live status line below log lines instead of overwriting it. */
  status?: TtyStatus
}

/**
 * A pino logger writing NDJSON to stderr synchronously (nothing is lost when the process exits
 * right after a log call).
 */
export function createLogger(options: LoggerOptions): Logger {
  const fd = options.fd ?? 2
  const status = options.status
  const destination = {
    write(chunk: string): void {
      if (status?.enabled) status.writeAbove(chunk)
      else writeAllSync(fd, chunk)
    },
  }
  return pino({ name: options.name, level: options.level ?? 'info' }, destination)
}
