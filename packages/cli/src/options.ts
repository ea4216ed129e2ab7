import { UsageError } from '@kbx/errors'
import { LOG_LEVELS, isLogLevel } from '@kbx/stats'
import type { LogLevel } from '@kbx/stats'

export type XdpMode = 'native' | 'skb' | 'auto'
export const XDP_MODES: readonly XdpMode[] = ['native', 'skb', 'auto']

type Parser<T> = (value: string) => T

function usage(option: string, expected: string, value: string): UsageError {
  return new UsageError(`${option}: expected ${expected}, got ${JSON.stringify(value)}`, { op: `parse ${option}` })
}

/** A parser for an integer option within [min, max]; accepts decimal or 0x-hex. */
export function parseIntOption(name: string, range: { min?: number; max?: number } = {}): Parser<number> {
  const min = range.min ?? Number.MIN_SAFE_INTEGER
  const max = range.max ?? Number.MAX_SAFE_INTEGER
  const expected =
    range.min !== undefined && range.max !== undefined
      ? `an integer from ${min} to ${max}`
      : range.min !== undefined
        ? `an integer ≥ ${min}`
        : range.max !== undefined
          ? `an integer ≤ ${max}`
          : 'an integer'
  return (value) => {
    const text = value.trim()
    if (!/^[-+]?(\d+|0x[0-9a-f]+)$/i.test(text)) throw usage(name, expected, value)
    const negative = text.startsWith('-')
    const magnitude = Number(text.replace(/^[-+]/, ''))
    const n = negative ? -magnitude : magnitude
    if (!Number.isSafeInteger(n) || n < min || n > max) throw usage(name, expected, value)
    return n
  }
}

const SCALE: Record<string, number> = { '': 1, k: 1e3, K: 1e3, m: 1e6, M: 1e6, g: 1e9, G: 1e9 }

/** A parser for counts and rates with an optional k/M/G (×1000) suffix: "64", "1.5M", "10k". */
export function parseScaledInt(name: string, range: { min?: number; max?: number } = {}): Parser<number> {
  const min = range.min ?? 0
  const max = range.max ?? Number.MAX_SAFE_INTEGER
  const expected = `a count from ${min} to ${max} (suffix k, M or G allowed)`
  return (value) => {
    const m = /^(\d+(?:\.\d+)?)([kKmMgG]?)$/.exec(value.trim())
    if (!m) throw usage(name, expected, value)
    const n = Number(m[1]) * (SCALE[m[2] ?? ''] ?? 1)
    if (!Number.isSafeInteger(n) || n < min || n > max) throw usage(name, expected, value)
    return n
  }
}

const SECONDS_PER: Record<string, number> = { '': 1, s: 1, ms: 1e-3, us: 1e-6, m: 60, min: 60, h: 3600 }

/** A parser for a non-negative duration in seconds: "10", "2.5", "500ms", "2m", "1h". */
export function parseSeconds(name: string, range: { min?: number; max?: number } = {}): Parser<number> {
  const min = range.min ?? 0
  const max = range.max ?? Number.MAX_SAFE_INTEGER
  const expected = `seconds from ${min} to ${max} (e.g. 10, 2.5, 500ms, 2m)`
  return (value) => {
    const m = /^(\d+(?:\.\d+)?|\.\d+)(s|ms|us|m|min|h)?$/.exec(value.trim())
    if (!m) throw usage(name, expected, value)
    const seconds = Number(m[1]) * (SECONDS_PER[m[2] ?? ''] ?? 1)
    if (!Number.isFinite(seconds) || seconds < min || seconds > max) throw usage(name, expected, value)
    return seconds
  }
}

/** A parser for one of a fixed set of words. */
export function parseChoice<T extends string>(name: string, choices: readonly T[]): Parser<T> {
  return (value) => {
    if ((choices as readonly string[]).includes(value)) return value as T
    throw usage(name, `one of ${choices.join(', ')}`, value)
  }
}

export const parseMode: Parser<XdpMode> = parseChoice('--mode', XDP_MODES)
export const parseLogLevel: Parser<LogLevel> = (value) => {
  if (isLogLevel(value)) return value
  throw usage('--log-level', `one of ${LOG_LEVELS.join(', ')}`, value)
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/

/** Validates a dotted-quad IPv4 address. */
export function parseIPv4Option(name: string): Parser<string> {
  return (value) => {
    if (IPV4.test(value)) return value
    throw usage(name, 'an IPv4 address like 10.0.0.11', value)
  }
}

export interface IpPort {
  ip: string
  port: number
}

/** Parses "10.0.0.11:8004". */
export function parseIpPort(value: string, name = 'address'): IpPort {
  const m = /^(.+):(\d{1,5})$/.exec(value.trim())
  const port = m ? Number(m[2]) : NaN
  if (!m || !IPV4.test(m[1] ?? '') || port < 1 || port > 65535) {
    throw usage(name, 'IPv4:port like 10.0.0.11:8004', value)
  }
  return { ip: m[1] as string, port }
}

/** A parser for IPv4:port, for use as a commander option parser. */
export function parseIpPortOption(name: string): Parser<IpPort> {
  return (value) => parseIpPort(value, name)
}

/** Validates a network interface name (1..15 chars, no '/', ':' or whitespace). */
export function parseInterfaceName(value: string, name = 'interface'): string {
  if (/^[^\s/:]{1,15}$/.test(value) && value !== '.' && value !== '..') return value
  throw usage(name, 'an interface name of at most 15 characters', value)
}

/** Validates a MAC address "aa:bb:cc:dd:ee:ff" and returns it lower-case. */
export function parseMacOption(name: string): Parser<string> {
  return (value) => {
    if (/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(value)) return value.toLowerCase()
    throw usage(name, 'a MAC address like 02:00:00:00:00:01', value)
  }
}

const LEVEL_ORDER: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']

/** The effective log level: -v means debug, -vv trace, whichever of that and --log-level says more. */
export function resolveLogLevel(logLevel: LogLevel = 'info', verbose = 0): LogLevel {
  const fromVerbose: LogLevel = verbose >= 2 ? 'trace' : verbose === 1 ? 'debug' : logLevel
  return LEVEL_ORDER.indexOf(fromVerbose) < LEVEL_ORDER.indexOf(logLevel) ? fromVerbose : logLevel
}
