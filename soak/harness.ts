/**
 * One soak of one tool: a fresh test bed (TestNet: unique names, always removed), the tool's processes
 * started by the target, a sample every few seconds (RSS and CPU of every process from /proc, the
 * tools' own counters from their latest JSON interval lines, UMEM frame accounting where a tool reports
 * it), then the target's graceful stop and exact accounting, and the verdict. Every process is started in
 * its own process group; whatever happens, the groups are killed and the bed is removed.
 */
import type { ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { repoRoot } from '@kbx/ffi'
import type { JsonLines } from '@kbx/stats'
import { TestNet, followTool, nodeCommand, waitUntil } from '@kbx/testbed'
import type { ToolEvent, ToolRun } from '@kbx/testbed'
import { readProcess } from './proc.js'
import type { ProcessReading } from './proc.js'
import { makeVerdict } from './verdict.js'
import type { Check, MemoryPolicy, RssPoint, Verdict } from './verdict.js'

export interface SoakOptions {
  /** Seconds of load (sampling time). */
  seconds: number
  /** Seconds between samples. */
  sampleSec: number
  /** A process above this RSS ends the soak early (a leak must not take the host down with it). */
  rssLimitMB: number
  policy: MemoryPolicy
  signal: AbortSignal
  /** Human progress (stderr). */
  progress: (line: string) => void
}

/** What a target's finish() found: exact-accounting checks, the numbers behind them, other failures. */
export interface Accounting {
  checks: Check[]
  values: Record<string, unknown>
  problems: string[]
}

/** A started target: the processes to sample, what to show per sample, how to stop and account. */
export interface TargetRun {
  processes: Record<string, ToolRun>
  /** The tools' own counters for a sample (from their latest interval events). */
  counters(): Record<string, unknown>
  /** UMEM frame accounting for a sample, where a tool reports it. */
  umem?(): Record<string, unknown> | undefined
  /** Processes that end by themselves when the load ends (the feeder, the flooder…), by name. */
  selfEnding: readonly string[]
  /** Stops the tools gracefully (the load has ended) and checks the accounting. */
  finish(): Promise<Accounting>
}

export interface SoakContext {
  net: TestNet
  /** Seconds of load the tools should produce (a little more than the sampling window). */
  loadSeconds: number
  sampleSec: number
  /** Starts a repository TypeScript entry point (path relative to the repo) in netns (null = root), in its own process group. */
  spawnTool(netns: string | null, script: string, args: readonly string[]): ToolRun
}

export interface Target {
  name: string
  start(ctx: SoakContext): Promise<TargetRun>
}

/** The latest event of a kind a tool printed. */
export function latest(run: ToolRun, event: string): ToolEvent | undefined {
  for (let i = run.events.length - 1; i >= 0; i--) if (run.events[i]!.event === event) return run.events[i]
  return undefined
}

/** Waits for a tool's `start` event; throws with its stderr when it exits first or takes too long. */
export async function started(name: string, run: ToolRun, timeoutMs = 60_000): Promise<ToolEvent> {
  await waitUntil(`${name} to start`, () => latest(run, 'start') !== undefined || run.child.exitCode !== null || run.child.signalCode !== null, timeoutMs).catch(() => {})
  const event = latest(run, 'start')
  if (!event) throw new Error(`${name} did not start (exit ${run.child.exitCode ?? run.child.signalCode ?? 'none yet'}): ${tail(run.stderr())}`)
  return event
}

/** Sends a signal and waits for the exit (SIGKILL after timeoutMs); the exit status. */
export async function stopTool(run: ToolRun, signal: NodeJS.Signals = 'SIGINT', timeoutMs = 20_000): Promise<{ code: number | null; signal: string | null }> {
  if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill(signal)
  return exitedWithin(run, timeoutMs)
}

/** The exit status once the tool exits by itself; SIGKILL (and its status) after timeoutMs. */
export async function exitedWithin(run: ToolRun, timeoutMs: number): Promise<{ code: number | null; signal: string | null }> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)))
  const result = await Promise.race([run.exited, timeout])
  clearTimeout(timer)
  if (result !== 'timeout') {
    await stdoutDrained(run)
    return result
  }
  killGroup(run.child)
  const killed = await run.exited
  await stdoutDrained(run)
  return killed
}

/** Waits (up to 5 s) until everything the tool wrote on stdout has been read: 'exit' can come before the last lines. */
async function stdoutDrained(run: ToolRun): Promise<void> {
  const stdout = run.child.stdout
  if (!stdout || stdout.readableEnded || stdout.destroyed) return
  let timer: NodeJS.Timeout | undefined
  await Promise.race([new Promise((resolve) => stdout.once('close', resolve)), new Promise((resolve) => (timer = setTimeout(resolve, 5000)))])
  clearTimeout(timer)
}

/** A problem line when a tool did not exit 0. */
export function exitProblem(name: string, exit: { code: number | null; signal: string | null }, run: ToolRun): string[] {
  if (exit.code === 0) return []
  return [`${name} exited ${exit.code ?? exit.signal}: ${tail(run.stderr())}`]
}

export function tail(text: string, chars = 600): string {
  const t = text.trim()
  return t.length > chars ? `…${t.slice(-chars)}` : t
}

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
  try {
    process.kill(-child.pid, 'SIGKILL')
  } catch {
    try {
      child.kill('SIGKILL')
    } catch {
      // gone
    }
  }
}

interface Series {
  points: RssPoint[]
  last?: { t: number; cpuSec: number; pid: number }
}

const r1 = (x: number): number => Math.round(x * 10) / 10

/** Runs one target's soak and returns its verdict (also when the target fails to start or to stop). */
export async function soak(target: Target, options: SoakOptions, out: JsonLines): Promise<Verdict> {
  const net = new TestNet()
  const children: ToolRun[] = []
  const series: Record<string, Series> = {}
  const problems: string[] = []
  let accounting: Accounting = { checks: [], values: {}, problems: [] }
  let sampledSec = 0
  const ctx: SoakContext = {
    net,
    loadSeconds: options.seconds + 2,
    sampleSec: options.sampleSec,
    spawnTool: (netns, script, args) => {
      const [cmd, argv] = nodeCommand(join(repoRoot, script), args)
      const run = followTool(net.spawn(netns, cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], detached: true }))
      children.push(run)
      return run
    },
  }
  try {
    options.progress(`soak ${target.name}: starting on a fresh test bed`)
    const run = await target.start(ctx)
    options.progress(`soak ${target.name}: running for ${options.seconds} s, a sample every ${options.sampleSec} s`)
    sampledSec = await sampleLoop(target.name, run, options, out, series, problems)
    accounting = await run.finish()
  } catch (err) {
    problems.push(`${target.name}: ${err instanceof Error ? err.message : String(err)}`)
  } finally {
    for (const c of children) killGroup(c.child)
    await Promise.all(children.map((c) => (c.child.pid === undefined ? undefined : c.exited)))
    try {
      net.destroy()
    } catch (err) {
      problems.push(`test bed cleanup: ${(err as Error).message}`)
    }
  }
  return makeVerdict({
    target: target.name,
    seconds: sampledSec,
    rss: Object.fromEntries(Object.entries(series).map(([name, s]) => [name, s.points])),
    checks: accounting.checks,
    values: accounting.values,
    problems: [...problems, ...accounting.problems],
    policy: options.policy,
  })
}

/** Samples every sampleSec until seconds have passed, a process dies, or the soak is interrupted; the seconds sampled. */
async function sampleLoop(name: string, run: TargetRun, options: SoakOptions, out: JsonLines, series: Record<string, Series>, problems: string[]): Promise<number> {
  const t0 = performance.now()
  const elapsed = () => (performance.now() - t0) / 1000
  for (let k = 0; ; k++) {
    const t = elapsed()
    const processes: Record<string, ProcessReading & { cpuPct: number }> = {}
    for (const [proc, tool] of Object.entries(run.processes)) {
      const reading = tool.child.pid === undefined || tool.child.exitCode !== null ? undefined : readProcess(tool.child.pid)
      if (reading === undefined) continue
      const s = (series[proc] ??= { points: [] })
      const cpuPct = s.last && s.last.pid === reading.pid && t - s.last.t > 0.2 ? ((reading.cpuSec - s.last.cpuSec) / (t - s.last.t)) * 100 : 0
      s.last = { t, cpuSec: reading.cpuSec, pid: reading.pid }
      s.points.push({ t, rssMB: reading.rssMB, segment: reading.pid })
      processes[proc] = { ...reading, rssMB: r1(reading.rssMB), cpuSec: Math.round(reading.cpuSec * 100) / 100, cpuPct: Math.round(cpuPct) }
    }
    const umem = run.umem?.()
    out.emit('sample', { target: name, t: Math.round(t * 100) / 100, processes, counters: run.counters(), ...(umem ? { umem } : {}) })
    options.progress(
      `soak ${name} ${t.toFixed(0).padStart(4)} s  ` +
        Object.entries(processes).map(([p, r]) => `${p} ${r.rssMB.toFixed(1)} MB ${r.cpuPct}%`).join('  '),
    )
    const dead = Object.entries(run.processes).filter(([proc, tool]) => (tool.child.exitCode !== null || tool.child.signalCode !== null) && !(run.selfEnding.includes(proc) && t >= options.seconds - options.sampleSec))
    if (dead.length > 0) {
      for (const [proc, tool] of dead) problems.push(`${proc} exited ${tool.child.exitCode ?? tool.child.signalCode} after ${t.toFixed(1)} s of ${options.seconds}: ${tail(tool.stderr())}`)
      return t
    }
    const swollen = Object.entries(processes).filter(([, r]) => r.rssMB > options.rssLimitMB)
    if (swollen.length > 0) {
      for (const [proc, r] of swollen) problems.push(`${proc}: RSS ${r.rssMB} MB passed the ${options.rssLimitMB} MB ceiling after ${t.toFixed(1)} s: soak stopped early`)
      return t
    }
    // (timers may fire a little early: a sample within 50 ms of the end is the last)
    if (t >= options.seconds - 0.05 || options.signal.aborted) return t
    const next = Math.min(options.seconds, (k + 1) * options.sampleSec)
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, (next - elapsed()) * 1000)))
  }
}
