/**
 * Test-only namespaces for @kbx/bpf on @kbx/testbed, plus a way to run FFI calls inside one (setns on
 * node's main thread). Every namespace and veth is removed by t.teardown, even when the test fails.
 */
import { execFileSync } from 'node:child_process'
import { closeSync, openSync } from 'node:fs'
import { CLONE_NEWNET, lastErrno, libc } from '@kbx/ffi'
import { withTestNet, type TestNet } from '@kbx/testbed'

export interface TeardownHost {
  teardown(fn: () => void | Promise<void>): void
}

let counter = 0

/** A name unique to this process and call, at most 15 characters: prefix (≤ 6) + pid + counter. */
export function uniqueName(prefix: string): string {
  counter += 1
  const name = `${prefix.slice(0, 6)}${process.pid.toString(36)}${counter.toString(36)}`
  if (name.length > 15) throw new Error(`name ${name} is longer than 15 characters`)
  return name
}

export function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

export interface TestNetns {
  name: string
  net: TestNet
  /** Run `ip` inside the namespace (ip -n NAME ...). */
  ip(...args: string[]): string
  /** Run fn with the calling thread (node's main thread: FFI calls and spawned children) inside the namespace. */
  enter<T>(fn: () => T): T
}

/** A fresh namespace with lo up; deleted on teardown. */
export function createNetns(t: TeardownHost): TestNetns {
  const net = withTestNet(t)
  const name = net.addNamespace()
  return {
    name,
    net,
    ip: (...args: string[]) => ip('-n', name, ...args),
    enter: <T>(fn: () => T): T => inNetns(name, fn),
  }
}

/** Run fn with the calling thread inside /run/netns/NAME, then move it back. */
export function inNetns<T>(name: string, fn: () => T): T {
  const target = openSync(`/run/netns/${name}`, 'r')
  const home = openSync('/proc/thread-self/ns/net', 'r')
  try {
    if (libc().setns(target, CLONE_NEWNET) !== 0) throw new Error(`setns(${name}) failed: errno ${lastErrno()}`)
    try {
      return fn()
    } finally {
      if (libc().setns(home, CLONE_NEWNET) !== 0) throw new Error(`setns back failed: errno ${lastErrno()}`)
    }
  } finally {
    closeSync(target)
    closeSync(home)
  }
}

export interface VethPair {
  a: string
  b: string
}

/** A veth pair inside ns, both ends up, no addresses; removed with the namespace. */
export function createVeth(ns: TestNetns, options: { queues?: number } = {}): VethPair {
  const inside = { netns: ns.name }
  const { a, b } = ns.net.addVethPair({ a: inside, b: inside, queues: options.queues ?? 1, addresses: false, txChecksumOff: false })
  return { a: a.name, b: b.name }
}

interface IpLinkXdp {
  ifname: string
  xdp?: { mode: number; prog?: { id: number }; attached?: { mode: number; prog?: { id: number } }[] }
}

/** The XDP program ids and modes `ip -j -d link show dev IF` reports inside ns (independent of @kbx/bpf). */
export function ipXdpOf(ns: TestNetns, ifname: string): { progId: number; mode: number }[] {
  const [entry] = JSON.parse(ns.ip('-j', '-d', 'link', 'show', 'dev', ifname)) as IpLinkXdp[]
  const xdp = entry?.xdp
  if (!xdp) return []
  const attached = xdp.attached ?? (xdp.prog ? [{ mode: xdp.mode, prog: xdp.prog }] : [])
  return attached.flatMap((a) => (a.prog ? [{ progId: a.prog.id, mode: a.mode }] : []))
}
