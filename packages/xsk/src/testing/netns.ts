/**
 * Test-only network fixtures for @kbx/xsk on @kbx/testbed: a veth pair whose `a` end stays in this
 * process's namespace (AF_XDP sockets bind there) and whose `b` end lives in a fresh, uniquely named
 * namespace, plus kernel UDP peers in that namespace. Everything is removed by t.teardown.
 */
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { repoRoot } from '@kbx/ffi'
import { runIn, withTestNet } from '@kbx/testbed'

/** This folder in the source tree: the peers (udp-send.mjs, udp-sink.mjs, sigint-loop.ts) run from here. */
export const testDir = join(repoRoot, 'packages/xsk/src/testing')
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

const run = (cmd: string, args: string[]): string => runIn(null, cmd, args)

/** A veth pair a (here) ↔ b (in a new namespace), both up, with `queues` RX/TX queues per end. */
export function createVethPair(t: Teardown, options: { queues?: number } = {}): VethPair {
  const { netns, local, remote } = withTestNet(t).addLinkedNamespace({ queues: options.queues ?? 1, addresses: false })
  return {
    ns: netns,
    a: local.name,
    b: remote.name,
    aMac: local.mac,
    bMac: remote.mac,
    nsExec: (args) => runIn(netns, args[0]!, args.slice(1)),
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
