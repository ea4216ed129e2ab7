/**
 * Names of everything a TestNet creates carry the creating process id, so leftovers of a
 * process that died can be recognised and swept:
 *   namespaces  kbxt-<pid>-<n>             (decimal)
 *   veths       kbt<pid base36>_<n base36><a|b>  (≤ 15 characters: the kernel's IFNAMSIZ limit)
 */
export const NETNS_PATTERN = /^kbxt-(\d+)-(\d+)$/
export const VETH_PATTERN = /^kbt([0-9a-z]+)_([0-9a-z]+)[ab]$/

let counter = 0

export function nextId(): number {
  return ++counter
}

export function netnsName(pid: number, n: number): string {
  return `kbxt-${pid}-${n}`
}

export function vethNames(pid: number, n: number): [string, string] {
  const base = `kbt${pid.toString(36)}_${n.toString(36)}`
  if (base.length + 1 > 15) throw new RangeError(`veth name ${base}a is longer than 15 characters`)
  return [`${base}a`, `${base}b`]
}

/** The creating pid encoded in a TestNet name, or undefined for any other name. */
export function ownerPid(name: string): number | undefined {
  const ns = NETNS_PATTERN.exec(name)
  if (ns) return Number(ns[1])
  const veth = VETH_PATTERN.exec(name)
  if (veth) return parseInt(veth[1] as string, 36)
  return undefined
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
