/**
 * `pnpm soak <xsk|ab|quic|fix|all> --minutes N` (or --seconds N): each tool at full rate on its own test
 * bed, sampled every --sample-interval seconds (RSS and CPU of each process, the tools' counters, UMEM
 * accounting), then one verdict per tool: memory growth after warm-up per process, exact accounting,
 * pass or fail with the reasons. JSON lines on stdout (`sample`, `verdict`), progress on stderr; exit 0
 * when every verdict passes, 1 otherwise, 2 on a usage error, 130 when interrupted.
 */
import { parseArgs } from 'node:util'
import { JsonLines } from '@kbx/stats'
import { soak } from './harness.js'
import type { Target } from './harness.js'
import { DEFAULT_MEMORY_POLICY } from './verdict.js'
import type { MemoryPolicy, Verdict } from './verdict.js'
import { AB_DEFAULTS, abTarget } from './targets/ab.js'
import { FIX_DEFAULTS, fixTarget } from './targets/fix.js'
import { quicTarget } from './targets/quic.js'
import { XSK_DEFAULTS, xskTarget } from './targets/xsk.js'

const TARGETS = ['xsk', 'ab', 'quic', 'fix'] as const
type TargetName = (typeof TARGETS)[number]

const USAGE = `usage: pnpm soak <xsk|ab|quic|fix|all> [--minutes N | --seconds N] [options]
  --sample-interval S     seconds between samples (default 5)
  --warmup-fraction F     warm-up: this fraction of the run (default ${DEFAULT_MEMORY_POLICY.warmupFraction}) …
  --warmup-min S          … but at least S seconds (default ${DEFAULT_MEMORY_POLICY.warmupMinSec})
  --limit-mb-per-min M    memory growth allowed after warm-up (default ${DEFAULT_MEMORY_POLICY.limitMBPerMin})
  --noise-floor-mb M      growth over the judged window below this never fails (default ${DEFAULT_MEMORY_POLICY.noiseFloorMB})
  --rss-limit-mb M        a process above this RSS ends its soak early, failed (default 2048)
  --ab-rate PPS           ab-feed sequence numbers per second (default 0: as fast as it can)
  --fix-rate R            fix-tcp orders per second (default ${FIX_DEFAULTS.rate})
  --fix-heartbeat S       fix-tcp HeartBtInt (default ${FIX_DEFAULTS.heartbeat})
  --xsk-rate PPS          xsk demo frames per second (default 0: as fast as it can)
`

function usage(message: string): never {
  process.stderr.write(`soak: ${message}\n${USAGE}`)
  process.exit(2)
}

function positive(name: string, value: string | undefined, fallback: number, { integer = false, zero = false } = {}): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < 0 || (!zero && n === 0)) usage(`--${name} must be a ${integer ? 'whole ' : ''}number ${zero ? '≥' : '>'} 0, not ${JSON.stringify(value)}`)
  return n
}

const { values: opts, positionals } = (() => {
  try {
    return parseArgs({
      allowPositionals: true,
      options: {
        minutes: { type: 'string' },
        seconds: { type: 'string' },
        'sample-interval': { type: 'string' },
        'warmup-fraction': { type: 'string' },
        'warmup-min': { type: 'string' },
        'limit-mb-per-min': { type: 'string' },
        'noise-floor-mb': { type: 'string' },
        'rss-limit-mb': { type: 'string' },
        'ab-rate': { type: 'string' },
        'fix-rate': { type: 'string' },
        'fix-heartbeat': { type: 'string' },
        'xsk-rate': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    })
  } catch (err) {
    usage((err as Error).message)
  }
})()

if (opts.help) {
  process.stdout.write(USAGE)
  process.exit(0)
}
const [which, ...extra] = positionals
if (which === undefined) usage('name a tool: xsk, ab, quic, fix or all')
if (extra.length > 0) usage(`one tool or all, not ${positionals.join(' ')}`)
if (which !== 'all' && !(TARGETS as readonly string[]).includes(which)) usage(`unknown tool ${JSON.stringify(which)}`)
if (opts.minutes !== undefined && opts.seconds !== undefined) usage('--minutes or --seconds, not both')
const seconds = opts.seconds !== undefined ? positive('seconds', opts.seconds, 0) : positive('minutes', opts.minutes, 1) * 60
const sampleSec = positive('sample-interval', opts['sample-interval'], 5)
if (sampleSec > seconds / 3) usage(`--sample-interval ${sampleSec} leaves fewer than three samples in ${seconds} s`)
const warmupFraction = positive('warmup-fraction', opts['warmup-fraction'], DEFAULT_MEMORY_POLICY.warmupFraction, { zero: true })
if (warmupFraction >= 1) usage('--warmup-fraction must be below 1')
const policy: MemoryPolicy = {
  ...DEFAULT_MEMORY_POLICY,
  warmupFraction,
  warmupMinSec: positive('warmup-min', opts['warmup-min'], DEFAULT_MEMORY_POLICY.warmupMinSec, { zero: true }),
  limitMBPerMin: positive('limit-mb-per-min', opts['limit-mb-per-min'], DEFAULT_MEMORY_POLICY.limitMBPerMin),
  noiseFloorMB: positive('noise-floor-mb', opts['noise-floor-mb'], DEFAULT_MEMORY_POLICY.noiseFloorMB, { zero: true }),
}
const rssLimitMB = positive('rss-limit-mb', opts['rss-limit-mb'], 2048)
const targets: Record<TargetName, () => Target> = {
  xsk: () => xskTarget({ rate: positive('xsk-rate', opts['xsk-rate'], XSK_DEFAULTS.rate, { integer: true, zero: true }) }),
  ab: () =>
    abTarget({
      ...AB_DEFAULTS,
      rate: positive('ab-rate', opts['ab-rate'], AB_DEFAULTS.rate, { integer: true, zero: true }),
    }),
  quic: () => quicTarget(),
  fix: () =>
    fixTarget({
      rate: positive('fix-rate', opts['fix-rate'], FIX_DEFAULTS.rate, { integer: true }),
      heartbeat: positive('fix-heartbeat', opts['fix-heartbeat'], FIX_DEFAULTS.heartbeat, { integer: true }),
    }),
}
// Built before anything runs, so every option error exits 2 first.
const chosen = (which === 'all' ? [...TARGETS] : [which as TargetName]).map((name) => targets[name]())

if (process.getuid?.() !== 0) {
  process.stderr.write('soak: must run as root (test beds, XDP, AF_XDP)\n')
  process.exit(1)
}

const out = new JsonLines({ tool: 'soak' })
const stop = new AbortController()
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => stop.abort())
const verdicts: Verdict[] = []
for (const target of chosen) {
  if (stop.signal.aborted) break
  const verdict = await soak(target, { seconds, sampleSec, rssLimitMB, policy, signal: stop.signal, progress: (line) => process.stderr.write(`${line}\n`) }, out)
  if (stop.signal.aborted) verdict.reasons.push('interrupted'), (verdict.pass = false)
  out.emit('verdict', verdict as unknown as Record<string, unknown>)
  verdicts.push(verdict)
  const memory = Object.entries(verdict.memoryMBPerMin).map(([p, m]) => `${p} ${m} MB/min`).join(', ')
  process.stderr.write(`soak ${target.name}: ${verdict.pass ? 'PASS' : 'FAIL'} (${memory}; accounting ${verdict.accounting.exact ? 'exact' : 'NOT exact'})\n`)
  for (const reason of verdict.reasons) process.stderr.write(`  - ${reason}\n`)
}
process.exit(stop.signal.aborted ? 130 : verdicts.every((v) => v.pass) ? 0 : 1)
