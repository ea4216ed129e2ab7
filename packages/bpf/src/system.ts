import { readFileSync, existsSync, mkdirSync, unlinkSync } from 'node:fs'
import { constants } from 'node:os'
import { NetError, SystemError, UsageError, unknownInterfaceHint } from '@kbx/errors'
import { CPU_SET_BYTES, lastErrno, libc, MS_NODEV, MS_NOEXEC, MS_NOSUID, RLIM_INFINITY, RLIMIT_MEMLOCK } from '@kbx/ffi'

/**
 * Raise RLIMIT_MEMLOCK to infinity (kernels before 5.11 charge BPF maps to it). Falls back to raising the
 * soft limit to the hard one. Never throws; returns whether the limit is now unlimited.
 */
export function raiseMemlockLimit(): boolean {
  try {
    const c = libc()
    if (c.setrlimit(RLIMIT_MEMLOCK, { rlim_cur: RLIM_INFINITY, rlim_max: RLIM_INFINITY }) === 0) return true
    const current = { rlim_cur: 0n, rlim_max: 0n }
    if (c.getrlimit(RLIMIT_MEMLOCK, current) !== 0) return false
    c.setrlimit(RLIMIT_MEMLOCK, { rlim_cur: current.rlim_max, rlim_max: current.rlim_max })
    return BigInt(current.rlim_max) === RLIM_INFINITY
  } catch {
    return false
  }
}

/** Current RLIMIT_MEMLOCK (bytes; RLIM_INFINITY when unlimited). */
export function memlockLimit(): { soft: bigint; hard: bigint } {
  const current = { rlim_cur: 0n, rlim_max: 0n }
  if (libc().getrlimit(RLIMIT_MEMLOCK, current) !== 0) throw new SystemError('getrlimit(RLIMIT_MEMLOCK)', lastErrno())
  return { soft: BigInt(current.rlim_cur), hard: BigInt(current.rlim_max) }
}

/** ifindex of an interface name (or the number itself), in the calling thread's network namespace. */
export function resolveIfindex(iface: string | number): number {
  if (typeof iface === 'number') {
    if (!Number.isInteger(iface) || iface <= 0) throw new UsageError(`invalid ifindex ${iface}`)
    return iface
  }
  if (/^\d+$/.test(iface)) return Number(iface)
  const ifindex = iface.length > 0 && iface.length < 16 ? libc().if_nametoindex(iface) : 0
  if (ifindex === 0) {
    throw new NetError(`unknown interface "${iface}"`, {
      op: 'if_nametoindex',
      errno: lastErrno() || 19,
      hint: unknownInterfaceHint(iface, 'list interfaces with `ip link`; inside a namespace run under `ip netns exec NAME`'),
    })
  }
  return ifindex
}

/** Interface name of an ifindex, or undefined when there is none in this namespace. */
export function ifnameOf(ifindex: number): string | undefined {
  const buf = Buffer.alloc(16)
  return libc().if_indextoname(ifindex, buf) ?? undefined
}

const BPF_FS_TYPE = 'bpf'

/** Whether dir is a bpffs mount point in this mount namespace. */
export function isBpffsMounted(dir = '/sys/fs/bpf'): boolean {
  const mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')
  for (const line of mountinfo.split('\n')) {
    // id parent major:minor root mountpoint options [optional...] - fstype source superoptions
    const [left, right] = line.split(' - ')
    if (!left || !right) continue
    const mountPoint = unescapeMountinfo(left.split(' ')[4] ?? '')
    const fsType = right.split(' ')[0]
    if (mountPoint === dir && fsType === BPF_FS_TYPE) return true
  }
  return false
}

function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)))
}

/**
 * Mount bpffs at dir unless it is mounted already (inside `ip netns exec`, /sys is a fresh sysfs without
 * it). Returns true when it mounted. Throws SystemError when the mount fails.
 */
export function ensureBpffs(dir = '/sys/fs/bpf'): boolean {
  if (isBpffsMounted(dir)) return false
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true })
  if (libc().mount('bpf', dir, 'bpf', MS_NOSUID | MS_NODEV | MS_NOEXEC, 'mode=0700') !== 0) {
    throw new SystemError(`mount bpffs on ${dir}`, lastErrno(), {
      hint: 'needs root (CAP_SYS_ADMIN); or mount it yourself: mount -t bpf bpf /sys/fs/bpf',
    })
  }
  return true
}

/** Run fn with the calling thread pinned to one CPU; the previous affinity is restored afterwards. */
export function onCpu<T>(cpu: number, fn: () => T): T {
  const c = libc()
  const previous = Buffer.alloc(CPU_SET_BYTES)
  if (c.sched_getaffinity(0, CPU_SET_BYTES, previous) !== 0) throw new SystemError('sched_getaffinity', lastErrno())
  if (!Number.isInteger(cpu) || cpu < 0 || cpu >= CPU_SET_BYTES * 8) throw new UsageError(`invalid cpu ${cpu}`)
  const mask = Buffer.alloc(CPU_SET_BYTES)
  mask[cpu >> 3] = 1 << (cpu & 7)
  if (c.sched_setaffinity(0, CPU_SET_BYTES, mask) !== 0) {
    throw new SystemError(`pin thread to cpu ${cpu}`, lastErrno(), { hint: 'is the CPU online and allowed (taskset)?' })
  }
  try {
    return fn()
  } finally {
    c.sched_setaffinity(0, CPU_SET_BYTES, previous)
  }
}

/** Remove a bpffs pin (a program, map or link stays alive while other fds or pins hold it). */
export function unpinPath(path: string): void {
  try {
    unlinkSync(path)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO'
    const errno = (constants.errno as Record<string, number>)[code] ?? 5
    throw new SystemError(`unpin ${path}`, errno, { cause: err })
  }
}
