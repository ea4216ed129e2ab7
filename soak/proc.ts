/**
 * Resident memory and CPU time of a process from /proc. A process inside a network namespace is an
 * ordinary pid here (network namespaces do not hide pids), so the quic sink, the FIX acceptor and the
 * A/B feeder are read the same way as the tools in the root namespace.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

export interface ProcessReading {
  pid: number
  /** Command name (`Name:` in /proc/PID/status). */
  name: string
  rssMB: number
  /** utime + stime, seconds. */
  cpuSec: number
}

let clockTicks: number | undefined

/** Clock ticks per second of /proc/PID/stat times (`getconf CLK_TCK`, 100 on Linux). */
export function clockTicksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
    } catch {
      clockTicks = 100
    }
  }
  return clockTicks
}

/** VmRSS in MB from the text of /proc/PID/status; undefined when absent (a zombie). */
export function parseVmRssMB(status: string): number | undefined {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)
  return m ? Number(m[1]) / 1024 : undefined
}

/** utime + stime in clock ticks from the text of /proc/PID/stat (the command name may hold spaces and parentheses). */
export function parseCpuTicks(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // fields[0] is field 3 (state): utime and stime are fields 14 and 15.
  return Number(fields[11]) + Number(fields[12])
}

/** The process's RSS and CPU time now; undefined when it is gone. */
export function readProcess(pid: number): ProcessReading | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const rssMB = parseVmRssMB(status)
    if (rssMB === undefined) return undefined
    const name = /^Name:\s+(.*)$/m.exec(status)?.[1] ?? '?'
    return { pid, name, rssMB, cpuSec: parseCpuTicks(stat) / clockTicksPerSecond() }
  } catch {
    return undefined
  }
}
