/**
 * Test-only network fixtures for @kbx/xsk (until @kbx/testbed is used): a veth pair whose `a` end stays
 * in this process's namespace (AF_XDP sockets bind there) and whose `b` end lives in a fresh, uniquely
 * named namespace. Everything is removed by t.teardown, even when the test fails.
 */
import { execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'

export const testDir = dirname(fileURLToPath(import.meta.url))
export const repoRoot = join(testDir, '../../..')
export const xskBench = join(repoRoot, 'native/build/xsk_bench')

interface Teardown {
  teardown(fn: () => unknown): void
}

export interface VethPair {
  ns: string
  a: string
  b: string
  aMac: string
  bMac: string
  /** Runs a command in the namespace; returns stdout. */
  nsExec(args: string[]): string
}

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

function tryRun(cmd: string, args: string[]): void {
  try {
    run(cmd, args)
  } catch {
    // already gone
  }
}

function macOf(args: string[]): string {
  const info = JSON.parse(run('ip', ['-j', ...args])) as { address: string }[]
  return info[0]!.address
}

/** A veth pair a (here) ↔ b (in a new namespace), both up, with `queues` RX/TX queues per end. */
export function createVethPair(t: Teardown, options: { queues?: number } = {}): VethPair {
  const id = `${process.pid.toString(36).slice(-3)}${randomBytes(3).toString('hex')}`
  const ns = `kbxxsk-${id}`
  const a = `xa${id}`
  const b = `xb${id}`
  t.teardown(() => {
    tryRun('ip', ['link', 'del', a])
    tryRun('ip', ['netns', 'del', ns])
  })
  run('ip', ['netns', 'add', ns])
  const queues = options.queues ?? 1
  const q = queues > 1 ? ['numrxqueues', `${queues}`, 'numtxqueues', `${queues}`] : []
  run('ip', ['link', 'add', a, ...q, 'type', 'veth', 'peer', 'name', b, ...q, 'netns', ns])
  run('ip', ['link', 'set', a, 'up'])
  run('ip', ['-n', ns, 'link', 'set', b, 'up'])
  // Kernel senders in the namespace must put full checksums in their frames.
  run('ip', ['netns', 'exec', ns, 'ethtool', '-K', b, 'tx', 'off'])
  return {
    ns,
    a,
    b,
    aMac: macOf(['link', 'show', a]),
    bMac: macOf(['-n', ns, 'link', 'show', b]),
    nsExec: (args) => run('ip', ['netns', 'exec', ns, ...args]),
  }
}

/** Gives b an address, and a static neighbour entry for `peerIp` → a's MAC (XDP redirects hide ARP). */
export function addressPair(pair: VethPair, bCidr: string, peerIp: string): void {
  run('ip', ['-n', pair.ns, 'addr', 'add', bCidr, 'dev', pair.b])
  run('ip', ['-n', pair.ns, 'neigh', 'replace', peerIp, 'lladdr', pair.aMac, 'dev', pair.b, 'nud', 'permanent'])
}

/** Sends UDP datagrams from the namespace with a kernel socket: payloads[i] to host:port. */
export function sendUdpFromNamespace(pair: VethPair, host: string, port: number, payloads: string[]): void {
  run('ip', ['netns', 'exec', pair.ns, process.execPath, join(testDir, 'udp-send.mjs'), host, `${port}`, JSON.stringify(payloads)])
}

export interface UdpSink {
  /** Resolves with the datagrams received (payload as utf8, sender address) once `count` arrived or time ran out. */
  done: Promise<{ payload: string; from: string; port: number }[]>
}

/** A kernel UDP socket in the namespace bound to host:port; resolves once it is listening. */
export async function startUdpSink(
  t: Teardown,
  pair: VethPair,
  host: string,
  port: number,
  count: number,
  timeoutMs = 5000,
): Promise<UdpSink> {
  const child = spawn('ip', ['netns', 'exec', pair.ns, process.execPath, join(testDir, 'udp-sink.mjs'), host, `${port}`, `${count}`, `${timeoutMs}`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL')
  })
  const lines = createInterface({ input: child.stdout })
  const received: { payload: string; from: string; port: number }[] = []
  let markReady: () => void
  const ready = new Promise<void>((resolve) => (markReady = resolve))
  const done = new Promise<{ payload: string; from: string; port: number }[]>((resolve, reject) => {
    lines.on('line', (line) => {
      const event = JSON.parse(line) as { event: string; payload?: string; from?: string; port?: number }
      if (event.event === 'ready') markReady()
      else if (event.event === 'datagram') {
        received.push({ payload: Buffer.from(event.payload!, 'base64').toString('utf8'), from: event.from!, port: event.port! })
      }
    })
    child.on('exit', (code) => (code === 0 ? resolve(received) : reject(new Error(`udp-sink exited with ${code}`))))
  })
  await Promise.race([ready, done.then(() => undefined)])
  return { done }
}

/** Runs native/build/xsk_bench in the namespace (e.g. `tx --iface b --queue 1 --count 50`), returns its JSON result. */
export function xskBenchInNamespace(pair: VethPair, args: string[]): Record<string, unknown> {
  const out = run('ip', ['netns', 'exec', pair.ns, xskBench, ...args])
  return JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>
}
