/**
 * CPU a process used over a window of wall time, from /proc/PID/stat (utime + stime of all its
 * threads): how many cores it kept busy. On a machine shared with other work, acked transactions per
 * CPU-second compare senders better than acked tx/s, which depends on the CPU share each one got.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

let ticksPerSecond: number | undefined

/** utime + stime (seconds) from the text of /proc/PID/stat; the command name may hold spaces and parentheses. */
export function cpuSecondsFromStat(stat: string, clockTicks: number): number {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // fields[0] is field 3 (state): utime is field 14, stime field 15
  return (Number(fields[11]) + Number(fields[12])) / clockTicks
}

/** The process's CPU seconds so far, or undefined once it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  ticksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
  try {
    return cpuSecondsFromStat(readFileSync(`/proc/${pid}/stat`, 'utf8'), ticksPerSecond)
  } catch {
    return undefined
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)))

/** Cores each process kept busy from `fromMs` to `toMs` (Date.now() times); undefined for one that was gone. */
export async function coresBusy(pids: readonly number[], fromMs: number, toMs: number): Promise<(number | undefined)[]> {
  await sleep(fromMs - Date.now())
  const t0 = performance.now()
  const before = pids.map(cpuSeconds)
  await sleep(toMs - Date.now())
  const after = pids.map(cpuSeconds)
  const wall = (performance.now() - t0) / 1000
  return pids.map((_, i) => {
    const a = after[i]
    const b = before[i]
    return a === undefined || b === undefined || wall <= 0 ? undefined : Math.round(((a - b) / wall) * 100) / 100
  })
}
