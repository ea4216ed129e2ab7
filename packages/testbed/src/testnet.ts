import { execFileSync, spawn } from 'node:child_process'
import type { ChildProcess, SpawnOptions } from 'node:child_process'
import { mkdirSync, readFileSync, readdirSync, rmdirSync } from 'node:fs'
import { NetError } from '@kbx/errors'
import { BPFFS_BASE, bpffsPathFor, execIn, runIn, spawnIn } from './exec.js'
import type { ExecResult, InNamespaceOptions, RunOptions } from './exec.js'
import { NETNS_PATTERN, VETH_PATTERN, netnsName, nextId, ownerPid, pidAlive, vethNames } from './names.js'

export interface VethEndSpec {
  /** Interface name (≤ 15 chars); default a unique kbt… name. */
  name?: string
  /** Namespace to put this end in; null/undefined = the root namespace. */
  netns?: string | null
  /** IPv4 address with prefix, e.g. "10.0.0.1/24". Default: a free /24 picked per pair. */
  cidr?: string
  /** MAC address; default whatever the kernel picked. */
  mac?: string
}

export interface VethSpec {
  a?: VethEndSpec
  b?: VethEndSpec
  /** numrxqueues = numtxqueues on both ends (default 1). */
  queues?: number
  /** numtxqueues when it should differ from `queues`. */
  txQueues?: number
  /** Assign IPv4 addresses (default true; explicit cidrs are always assigned). */
  addresses?: boolean
  /** `ethtool -K … tx off` on both ends (default true). */
  txChecksumOff?: boolean
  /** Permanent neighbour entries for each other on both ends (default true; needs addresses). */
  neighbours?: boolean
  /** Bring both ends up (default true). */
  up?: boolean
}

export interface VethEnd {
  name: string
  /** null = root namespace. */
  netns: string | null
  ifindex: number
  mac: string
  /** Address without prefix, when one was assigned. */
  ip: string | undefined
  cidr: string | undefined
}

export interface VethPair {
  a: VethEnd
  b: VethEnd
  queues: number
}

export interface NamespaceOptions {
  /** Mount a persistent bpffs for the namespace (see bpffsPathFor; spawn with { bpffs: true } to see it on /sys/fs/bpf). */
  bpffs?: boolean
}

export interface LinkedNamespace {
  netns: string
  pair: VethPair
  /** The end in the root namespace. */
  local: VethEnd
  /** The end inside `netns`. */
  remote: VethEnd
}

const live = new Set<TestNet>()
let exitHooksInstalled = false
let sweptOnce = false

// Removes everything a process's TestNets made once that process is gone, however it ended
// (SIGKILL, a test-runner timeout…): namespaces kbxt-<pid>-* (after killing what runs inside),
// veths kbt<pid36>_*, bpffs mounts. It polls, so it needs no signal handlers in the process.
const WATCHDOG = `pid=$1 pid36=$2 base=$3
while kill -0 "$pid" 2>/dev/null; do sleep 0.5; done
for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^kbxt-$pid-"); do
  for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
  ip netns del "$ns" 2>/dev/null
done
for l in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep "^kbt\${pid36}_"); do
  ip link del dev "$l" 2>/dev/null
done
for d in "$base"/kbxt-"$pid"-*; do
  [ -d "$d" ] || continue
  umount "$d" 2>/dev/null
  rmdir "$d" 2>/dev/null
done
exit 0`

/** Set to "1" to start no watchdog (a test that needs leftovers to stay until it sweeps them). */
export const NO_WATCHDOG_ENV = 'KBX_TESTBED_NO_WATCHDOG'

function installExitHooks(): void {
  if (exitHooksInstalled) return
  exitHooksInstalled = true
  process.on('exit', destroyAllTestNets)
  if (process.env[NO_WATCHDOG_ENV] === '1') return
  try {
    spawn('sh', ['-c', WATCHDOG, 'kbx-testbed-watchdog', String(process.pid), process.pid.toString(36), BPFFS_BASE], {
      detached: true,
      stdio: 'ignore',
    }).unref()
  } catch {
    // best effort: destroy() and sweepStale() still work
  }
}

/** Best effort: removes every TestNet of this process that is still alive. */
export function destroyAllTestNets(): void {
  for (const net of [...live]) {
    try {
      net.destroy()
    } catch {
      // keep going: this runs at exit
    }
  }
}

function mountedAt(path: string): string | undefined {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const fields = line.split(' ')
    if (fields[4] === path) {
      const dash = fields.indexOf('-')
      return fields[dash + 1]
    }
  }
  return undefined
}

function mountBpffsAt(path: string): void {
  mkdirSync(path, { recursive: true })
  if (mountedAt(path) !== 'bpf') runIn(null, 'mount', ['-t', 'bpf', 'bpf', path])
}

function unmountBpffsAt(path: string): void {
  while (mountedAt(path) !== undefined) runIn(null, 'umount', [path])
  try {
    rmdirSync(path)
  } catch {
    // absent already
  }
}

function listNamespaces(): string[] {
  const out = runIn(null, 'ip', ['netns', 'list'])
  return out
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n !== '')
}

function linkNames(netns: string | null): string[] {
  const out = runIn(null, 'ip', [...(netns === null ? [] : ['-n', netns]), '-o', 'link', 'show'])
  const names: string[] = []
  for (const line of out.split('\n')) {
    const m = /^\d+:\s+([^:@\s]+)/.exec(line)
    if (m) names.push(m[1] as string)
  }
  return names
}

function linkInfo(netns: string | null, name: string): { ifindex: number; mac: string } {
  const out = runIn(null, 'ip', [...(netns === null ? [] : ['-n', netns]), '-j', 'link', 'show', 'dev', name])
  const info = (JSON.parse(out) as Array<{ ifindex: number; address: string }>)[0]
  if (!info) throw new NetError(`interface ${name} vanished`, { op: 'ip link show' })
  return { ifindex: info.ifindex, mac: info.address }
}

function rootIPv4Prefixes(): Set<string> {
  const prefixes = new Set<string>()
  const out = runIn(null, 'ip', ['-4', '-o', 'addr', 'show'])
  for (const m of out.matchAll(/inet (\d+\.\d+\.\d+)\.\d+\//g)) prefixes.add(m[1] as string)
  return prefixes
}

let subnetCursor = -1

/** A 10.x.y.0/24 not used by any root-namespace address (x in 100..249), spread by pid. */
function freeSubnet(taken: Set<string>): string {
  const space = 150 * 256
  if (subnetCursor < 0) subnetCursor = (process.pid * 97) % space
  for (let i = 0; i < space; i++) {
    const k = (subnetCursor + i) % space
    const prefix = `10.${100 + Math.floor(k / 256)}.${k % 256}`
    if (!taken.has(prefix)) {
      subnetCursor = k + 1
      taken.add(prefix)
      return prefix
    }
  }
  throw new NetError('no free 10.100-249.x.0/24 subnet', { op: 'pick test subnet' })
}

const ipOf = (cidr: string | undefined) => cidr?.split('/')[0]
const ipIn = (netns: string | null) => (netns === null ? [] : ['-n', netns])

/**
 * Uniquely named network namespaces and veth pairs for one test, removed again by destroy()
 * (also at process exit, and by a watchdog process once this process is gone however it died,
 * best effort). Everything is set up with
 * synchronous `ip`/`ethtool` calls.
 */
export class TestNet {
  readonly pid = process.pid
  private readonly namespaces: string[] = []
  private readonly bpffsMounts: string[] = []
  private readonly links: Array<{ name: string; netns: string | null }> = []
  private readonly children = new Set<ChildProcess>()
  private destroyed = false

  constructor() {
    if (!sweptOnce) {
      sweptOnce = true
      sweepStale()
    }
    installExitHooks()
    live.add(this)
  }

  get isDestroyed(): boolean {
    return this.destroyed
  }

  /** Names of the namespaces this TestNet made. */
  get netnsNames(): readonly string[] {
    return this.namespaces
  }

  /** Creates a namespace `kbxt-<pid>-<n>` with lo up. */
  addNamespace(options: NamespaceOptions = {}): string {
    this.assertAlive()
    const name = netnsName(this.pid, nextId())
    runIn(null, 'ip', ['netns', 'add', name])
    this.namespaces.push(name)
    runIn(null, 'ip', ['-n', name, 'link', 'set', 'lo', 'up'])
    if (options.bpffs) this.mountBpffs(name)
    return name
  }

  /** Mounts the namespace's persistent bpffs at bpffsPathFor(netns); returns that path. */
  mountBpffs(netns: string): string {
    this.assertAlive()
    const path = bpffsPathFor(netns)
    mountBpffsAt(path)
    if (!this.bpffsMounts.includes(path)) this.bpffsMounts.push(path)
    return path
  }

  /** Creates a veth pair, places, addresses and configures both ends. */
  addVethPair(spec: VethSpec = {}): VethPair {
    this.assertAlive()
    const queues = spec.queues ?? 1
    const txQueues = spec.txQueues ?? queues
    for (const n of [queues, txQueues]) {
      if (!Number.isInteger(n) || n < 1 || n > 64) throw new RangeError(`queues must be 1..64, got ${n}`)
    }
    const [defaultA, defaultB] = vethNames(this.pid, nextId())
    const a = { name: spec.a?.name ?? defaultA, netns: spec.a?.netns ?? null, cidr: spec.a?.cidr, mac: spec.a?.mac }
    const b = { name: spec.b?.name ?? defaultB, netns: spec.b?.netns ?? null, cidr: spec.b?.cidr, mac: spec.b?.mac }
    for (const end of [a, b]) {
      if (end.name.length > 15) throw new RangeError(`interface name ${end.name} is longer than 15 characters`)
    }
    if ((spec.addresses ?? true) && (a.cidr === undefined || b.cidr === undefined)) {
      const prefix = freeSubnet(rootIPv4Prefixes())
      a.cidr ??= `${prefix}.1/24`
      b.cidr ??= `${prefix}.2/24`
    }
    const q = ['numrxqueues', String(queues), 'numtxqueues', String(txQueues)]
    runIn(null, 'ip', ['link', 'add', a.name, ...q, 'type', 'veth', 'peer', 'name', b.name, ...q])
    const linkA = { name: a.name, netns: null as string | null }
    this.links.push(linkA)
    if (b.netns !== null) runIn(null, 'ip', ['link', 'set', 'dev', b.name, 'netns', b.netns])
    if (a.netns !== null) {
      runIn(null, 'ip', ['link', 'set', 'dev', a.name, 'netns', a.netns])
      linkA.netns = a.netns
    }
    for (const end of [a, b]) {
      if (end.mac !== undefined) runIn(null, 'ip', [...ipIn(end.netns), 'link', 'set', 'dev', end.name, 'address', end.mac])
      if (end.cidr !== undefined) runIn(null, 'ip', [...ipIn(end.netns), 'addr', 'add', end.cidr, 'dev', end.name])
      if (spec.up ?? true) runIn(null, 'ip', [...ipIn(end.netns), 'link', 'set', 'dev', end.name, 'up'])
      if (spec.txChecksumOff ?? true) runIn(end.netns, 'ethtool', ['-K', end.name, 'tx', 'off'])
    }
    const infoA = linkInfo(a.netns, a.name)
    const infoB = linkInfo(b.netns, b.name)
    if ((spec.neighbours ?? true) && a.cidr !== undefined && b.cidr !== undefined) {
      runIn(null, 'ip', [...ipIn(a.netns), 'neigh', 'replace', ipOf(b.cidr) as string, 'lladdr', infoB.mac, 'dev', a.name, 'nud', 'permanent'])
      runIn(null, 'ip', [...ipIn(b.netns), 'neigh', 'replace', ipOf(a.cidr) as string, 'lladdr', infoA.mac, 'dev', b.name, 'nud', 'permanent'])
    }
    return {
      a: { name: a.name, netns: a.netns, ifindex: infoA.ifindex, mac: infoA.mac, ip: ipOf(a.cidr), cidr: a.cidr },
      b: { name: b.name, netns: b.netns, ifindex: infoB.ifindex, mac: infoB.mac, ip: ipOf(b.cidr), cidr: b.cidr },
      queues,
    }
  }

  /** A new namespace joined to the root namespace by a veth pair (end `b` inside it). */
  addLinkedNamespace(options: NamespaceOptions & Omit<VethSpec, 'a' | 'b'> = {}): LinkedNamespace {
    const { bpffs, ...vethSpec } = options
    const netns = this.addNamespace({ bpffs: bpffs ?? false })
    const pair = this.addVethPair({ ...vethSpec, b: { netns } })
    return { netns, pair, local: pair.a, remote: pair.b }
  }

  /** Runs a command to completion inside `netns` (null = root); stdout, or NetError. */
  run(netns: string | null, cmd: string, args: readonly string[] = [], options: RunOptions = {}): string {
    return runIn(netns, cmd, args, options)
  }

  /** Runs a command asynchronously inside `netns` (null = root). */
  exec(netns: string | null, cmd: string, args: readonly string[] = [], options: RunOptions = {}): Promise<ExecResult> {
    return execIn(netns, cmd, args, options)
  }

  /** Starts a command inside `netns` (null = root); destroy() kills it if still running. */
  spawn(netns: string | null, cmd: string, args: readonly string[] = [], options: SpawnOptions & InNamespaceOptions = {}): ChildProcess {
    this.assertAlive()
    const child = spawnIn(netns, cmd, args, options)
    this.children.add(child)
    child.once('exit', () => this.children.delete(child))
    return child
  }

  /**
   * Kills spawned children, deletes the veths, bpffs mounts and namespaces this TestNet made.
   * Idempotent. Throws a NetError naming anything that could not be removed.
   */
  destroy(): void {
    if (this.destroyed) return
    this.destroyed = true
    live.delete(this)
    const failures: string[] = []
    for (const child of this.children) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    }
    // Children in a namespace keep it (and its veths) alive: wait for them to be gone.
    for (const child of this.children) {
      if (child.pid !== undefined) waitForPidExit(child.pid)
    }
    this.children.clear()
    const existingNs = new Set(safe(listNamespaces, []))
    for (const link of [...this.links].reverse()) {
      if (link.netns !== null && !existingNs.has(link.netns)) continue
      if (!safe(() => linkNames(link.netns), []).includes(link.name)) continue
      try {
        runIn(null, 'ip', [...ipIn(link.netns), 'link', 'del', 'dev', link.name])
      } catch (err) {
        failures.push((err as Error).message)
      }
    }
    for (const path of this.bpffsMounts) {
      try {
        unmountBpffsAt(path)
      } catch (err) {
        failures.push((err as Error).message)
      }
    }
    for (const ns of [...this.namespaces].reverse()) {
      if (!existingNs.has(ns)) continue
      killProcessesIn(ns)
      try {
        runIn(null, 'ip', ['netns', 'del', ns])
      } catch (err) {
        failures.push((err as Error).message)
      }
    }
    const leftNs = safe(listNamespaces, []).filter((n) => this.namespaces.includes(n))
    const rootLinks = safe(() => linkNames(null), [])
    const leftLinks = this.links.filter((l) => rootLinks.includes(l.name)).map((l) => l.name)
    if (failures.length > 0 || leftNs.length > 0 || leftLinks.length > 0) {
      throw new NetError(`TestNet cleanup incomplete: ${[...failures, ...leftNs.map((n) => `netns ${n} left`), ...leftLinks.map((l) => `link ${l} left`)].join('; ')}`, {
        op: 'destroy test network',
      })
    }
  }

  private assertAlive(): void {
    if (this.destroyed) throw new NetError('this TestNet was destroyed', { op: 'use test network' })
  }
}

function safe<T>(fn: () => T, fallback: T): T {
  try {
    return fn()
  } catch {
    return fallback
  }
}

/** SIGKILLs every process still in the namespace: they would keep it, and its veths, alive. */
function killProcessesIn(netns: string): void {
  const pids = safe(() => runIn(null, 'ip', ['netns', 'pids', netns]), '')
    .split('\n')
    .map(Number)
    .filter((pid) => Number.isInteger(pid) && pid > 0 && pid !== process.pid)
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // gone already
    }
  }
  for (const pid of pids) waitForPidExit(pid)
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4))

function waitForPidExit(pid: number, timeoutMs = 2000): void {
  const until = Date.now() + timeoutMs
  while (Date.now() < until) {
    let state: string | undefined
    try {
      state = /^State:\s+(\S)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]
    } catch {
      return
    }
    if (state === 'Z' || state === 'X') return
    Atomics.wait(sleepCell, 0, 0, 5)
  }
}

/** A TestNet removed when the tap test ends (t.teardown), pass or fail. */
export function withTestNet(t: { teardown(fn: () => unknown): unknown }): TestNet {
  const net = new TestNet()
  t.teardown(() => net.destroy())
  return net
}

export interface SweepResult {
  namespaces: string[]
  links: string[]
  bpffs: string[]
}

/** Removes kbxt-* namespaces, kbt* veths and bpffs mounts left by TestNet processes that are gone. */
export function sweepStale(): SweepResult {
  const result: SweepResult = { namespaces: [], links: [], bpffs: [] }
  const stale = (name: string) => {
    const pid = ownerPid(name)
    return pid !== undefined && pid !== process.pid && !pidAlive(pid)
  }
  for (const ns of safe(listNamespaces, [])) {
    if (!NETNS_PATTERN.test(ns) || !stale(ns)) continue
    killProcessesIn(ns)
    if (safe(() => (runIn(null, 'ip', ['netns', 'del', ns]), true), false)) result.namespaces.push(ns)
  }
  for (const link of safe(() => linkNames(null), [])) {
    if (!VETH_PATTERN.test(link) || !stale(link)) continue
    if (safe(() => (runIn(null, 'ip', ['link', 'del', 'dev', link]), true), false)) result.links.push(link)
  }
  for (const dir of safe(() => readdirSync(BPFFS_BASE), [] as string[])) {
    if (!NETNS_PATTERN.test(dir) || !stale(dir)) continue
    if (safe(() => (unmountBpffsAt(bpffsPathFor(dir)), true), false)) result.bpffs.push(dir)
  }
  return result
}

/** Whether a namespace exists (any name). */
export function netnsExists(name: string): boolean {
  return listNamespaces().includes(name)
}

/** Whether an interface exists in `netns` (null = root). */
export function linkExists(netns: string | null, name: string): boolean {
  try {
    execFileSync('ip', [...ipIn(netns), 'link', 'show', 'dev', name], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}
