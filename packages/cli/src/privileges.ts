import { readFileSync } from 'node:fs'
import { PermissionError } from '@kbx/errors'

/** Linux capability numbers (include/uapi/linux/capability.h). */
export const CAP = { NET_ADMIN: 12, NET_RAW: 13, SYS_ADMIN: 21, BPF: 39 } as const
export type CapabilityName = keyof typeof CAP

export interface PrivilegeOptions {
  /** Capabilities needed; default BPF, NET_ADMIN, NET_RAW. SYS_ADMIN stands in for BPF (kernels before 5.8). */
  need?: readonly CapabilityName[]
  /** Text of /proc/self/status (injectable for tests). */
  readStatus?: () => string
  /** Effective uid (injectable for tests). */
  euid?: () => number
}

const DEFAULT_NEEDS: readonly CapabilityName[] = ['BPF', 'NET_ADMIN', 'NET_RAW']

/** The CapEff bit set from the text of /proc/<pid>/status; 0n when the line is missing. */
export function effectiveCapabilities(statusText: string): bigint {
  const m = /^CapEff:\s*([0-9a-f]+)\s*$/im.exec(statusText)
  return m ? BigInt('0x' + m[1]) : 0n
}

function has(caps: bigint, cap: number): boolean {
  return ((caps >> BigInt(cap)) & 1n) === 1n
}

/** Which of `need` the capability set lacks. */
export function missingCapabilities(caps: bigint, need: readonly CapabilityName[] = DEFAULT_NEEDS): CapabilityName[] {
  return need.filter((name) => {
    if (has(caps, CAP[name])) return false
    return !(name === 'BPF' && has(caps, CAP.SYS_ADMIN))
  })
}

/**
 * Throws a PermissionError with a plain message unless the process is root or holds the needed
 * capabilities.
 */
export function requirePrivileges(tool: string, options: PrivilegeOptions = {}): void {
  const euid = (options.euid ?? (() => process.geteuid?.() ?? -1))()
  if (euid === 0) return
  let statusText = ''
  try {
    statusText = (options.readStatus ?? (() => readFileSync('/proc/self/status', 'utf8')))()
  } catch {
    statusText = ''
  }
  const missing = missingCapabilities(effectiveCapabilities(statusText), options.need ?? DEFAULT_NEEDS)
  if (missing.length === 0) return
  throw new PermissionError(`${tool} needs root: run it with sudo`, {
    op: 'check privileges',
    hint: `run it with sudo, or grant the missing capabilities: ${missing.map((c) => `CAP_${c}`).join(', ')}`,
  })
}
