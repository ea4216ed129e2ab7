/**
 * The soak's judgement, kept free of I/O so it can be tested with made-up samples: memory growth after
 * warm-up as a least-squares slope per process, exact-accounting checks, and the pass/fail verdict that
 * combines them with the reasons for a fail.
 */

/** One RSS reading of one process. */
export interface RssPoint {
  /** Seconds since the soak started. */
  t: number
  rssMB: number
  /**
   * Which process instance (its pid) when one role is played by successive processes (a restarted tool):
   * each instance is fitted about its own mean, so a new process starting lower is not read as a fall.
   */
  segment?: number
}

export interface Line {
  /** MB per second. */
  slope: number
  intercept: number
}

/**
 * Ordinary least squares through the points; slope 0 when fewer than two distinct times. Points of
 * several segments share one slope, each segment its own level (the pooled within-segment slope); with
 * one segment this is the plain least-squares line (intercept: that of the overall means).
 */
export function leastSquares(points: readonly RssPoint[]): Line {
  const n = points.length
  if (n === 0) return { slope: 0, intercept: 0 }
  const bySegment = new Map<number, RssPoint[]>()
  for (const p of points) {
    const list = bySegment.get(p.segment ?? 0) ?? []
    list.push(p)
    bySegment.set(p.segment ?? 0, list)
  }
  let sxx = 0
  let sxy = 0
  for (const group of bySegment.values()) {
    const meanT = group.reduce((sum, p) => sum + p.t, 0) / group.length
    const meanY = group.reduce((sum, p) => sum + p.rssMB, 0) / group.length
    for (const p of group) {
      sxx += (p.t - meanT) ** 2
      sxy += (p.t - meanT) * (p.rssMB - meanY)
    }
  }
  const meanT = points.reduce((sum, p) => sum + p.t, 0) / n
  const meanY = points.reduce((sum, p) => sum + p.rssMB, 0) / n
  if (sxx === 0) return { slope: 0, intercept: meanY }
  const slope = sxy / sxx
  return { slope, intercept: meanY - slope * meanT }
}

/** The points judged: after the run's warm-up, and after warmupMinSec of their own segment (a process started later warms up too). */
export function afterWarmup(points: readonly RssPoint[], warmupSec: number, segmentWarmupSec: number): RssPoint[] {
  const firstSeen = new Map<number, number>()
  for (const p of points) if (!firstSeen.has(p.segment ?? 0)) firstSeen.set(p.segment ?? 0, p.t)
  return points.filter((p) => p.t >= warmupSec && p.t - firstSeen.get(p.segment ?? 0)! >= Math.min(segmentWarmupSec, warmupSec))
}

export interface MemoryPolicy {
  /** Growth allowed after warm-up, MB per minute. */
  limitMBPerMin: number
  /** Warm-up: this fraction of the run… */
  warmupFraction: number
  /** …but at least this many seconds. */
  warmupMinSec: number
  /**
   * Growth over the judged window (slope × window) below this is within what a Node process's RSS does
   * anyway (heap resizing, GC): a short run cannot tell it from a leak, so it does not fail. Over ten
   * minutes it is far below the limit; over 20 s it is what a 30-second soak can resolve.
   */
  noiseFloorMB: number
  /** Fewer samples than this after warm-up: no verdict on memory, which is a fail. */
  minSamples: number
}

export const DEFAULT_MEMORY_POLICY: MemoryPolicy = {
  limitMBPerMin: 1,
  warmupFraction: 0.2,
  warmupMinSec: 10,
  noiseFloorMB: 3,
  minSamples: 3,
}

/** Seconds of warm-up for a run of runSec seconds. */
export function warmupSeconds(runSec: number, policy: MemoryPolicy = DEFAULT_MEMORY_POLICY): number {
  return Math.max(policy.warmupMinSec, policy.warmupFraction * runSec)
}

export interface ProcessMemory {
  /** Least-squares slope over the samples after warm-up, MB per minute (rounded to 0.001). */
  slopeMBPerMin: number
  /** slope × the judged window: what the fitted line grew by after warm-up, MB. */
  growthMB: number
  /** Samples after warm-up / all samples. */
  samples: number
  samplesTotal: number
  windowSec: number
  rssMB: { first: number; afterWarmup: number; last: number; max: number }
  pass: boolean
  reason?: string
}

const round = (x: number, digits = 3): number => Math.round(x * 10 ** digits) / 10 ** digits

/** Judges one process's RSS series (sorted by time) with the given warm-up. */
export function judgeMemory(name: string, points: readonly RssPoint[], warmupSec: number, policy: MemoryPolicy = DEFAULT_MEMORY_POLICY): ProcessMemory {
  const judged = afterWarmup(points, warmupSec, policy.warmupMinSec)
  const { slope } = leastSquares(judged)
  const windowSec = judged.length > 1 ? judged[judged.length - 1]!.t - judged[0]!.t : 0
  const slopeMBPerMin = slope * 60
  const growthMB = slope * windowSec
  const rss = points.map((p) => p.rssMB)
  const result: ProcessMemory = {
    slopeMBPerMin: round(slopeMBPerMin),
    growthMB: round(growthMB),
    samples: judged.length,
    samplesTotal: points.length,
    windowSec: round(windowSec, 1),
    rssMB: {
      first: round(rss[0] ?? 0, 1),
      afterWarmup: round(judged[0]?.rssMB ?? 0, 1),
      last: round(rss[rss.length - 1] ?? 0, 1),
      max: round(rss.length ? Math.max(...rss) : 0, 1),
    },
    pass: true,
  }
  if (judged.length < policy.minSamples) {
    result.pass = false
    result.reason = `${name}: only ${judged.length} RSS samples after the ${round(warmupSec, 1)} s warm-up (need ${policy.minSamples}): run longer or sample more often`
  } else if (slopeMBPerMin > policy.limitMBPerMin && growthMB > policy.noiseFloorMB) {
    result.pass = false
    result.reason =
      `${name}: RSS grows ${round(slopeMBPerMin, 1)} MB/min after warm-up (limit ${policy.limitMBPerMin} MB/min): ` +
      `${result.rssMB.afterWarmup} → ${result.rssMB.last} MB in ${result.windowSec} s`
  }
  return result
}

/** One exact-accounting check: `what` holds when left equals right. */
export interface Check {
  what: string
  left: number | string
  right: number | string
  ok: boolean
}

/** left == right, compared exactly (bigints and numbers as decimal strings). */
export function check(what: string, left: number | bigint | string | undefined, right: number | bigint | string | undefined): Check {
  const norm = (v: number | bigint | string | undefined): number | string => (v === undefined ? 'missing' : typeof v === 'bigint' ? v.toString() : v)
  const l = norm(left)
  const r = norm(right)
  return { what, left: l, right: r, ok: l !== 'missing' && r !== 'missing' && String(l) === String(r) }
}

export interface Verdict {
  target: string
  pass: boolean
  seconds: number
  warmupSec: number
  limitMBPerMin: number
  memoryMBPerMin: Record<string, number>
  memory: Record<string, ProcessMemory>
  accounting: { exact: boolean; values: Record<string, unknown>; checks: Check[] }
  reasons: string[]
}

export interface VerdictInput {
  target: string
  seconds: number
  /** RSS series per process name. */
  rss: Record<string, RssPoint[]>
  checks: Check[]
  values?: Record<string, unknown>
  /** Failures found outside memory and accounting (a tool that crashed, a test bed that broke). */
  problems?: string[]
  policy?: MemoryPolicy
}

/** The verdict for one tool: pass only when every process's memory and every check passes and nothing else went wrong. */
export function makeVerdict(input: VerdictInput): Verdict {
  const policy = input.policy ?? DEFAULT_MEMORY_POLICY
  const warmupSec = warmupSeconds(input.seconds, policy)
  const memory: Record<string, ProcessMemory> = {}
  const reasons: string[] = [...(input.problems ?? [])]
  for (const [name, points] of Object.entries(input.rss)) {
    memory[name] = judgeMemory(name, points, warmupSec, policy)
    if (memory[name].reason) reasons.push(memory[name].reason)
  }
  if (Object.keys(memory).length === 0) reasons.push('no process was sampled')
  for (const c of input.checks) if (!c.ok) reasons.push(`accounting: ${c.what} does not hold: ${c.left} ≠ ${c.right}`)
  if (input.checks.length === 0) reasons.push('accounting: no check could be made')
  const exact = input.checks.length > 0 && input.checks.every((c) => c.ok)
  return {
    target: input.target,
    pass: reasons.length === 0,
    seconds: round(input.seconds, 1),
    warmupSec: round(warmupSec, 1),
    limitMBPerMin: policy.limitMBPerMin,
    memoryMBPerMin: Object.fromEntries(Object.entries(memory).map(([name, m]) => [name, m.slopeMBPerMin])),
    memory,
    accounting: { exact, values: input.values ?? {}, checks: input.checks },
    reasons,
  }
}
