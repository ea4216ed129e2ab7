// Test support: a veth pair between the caller's namespace and a fresh, uniquely named namespace.
import { execFileSync } from 'node:child_process'
import { randomBytes, randomInt } from 'node:crypto'
import { formatIPv4, parseIPv4 } from '../src/index.js'

export function run(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  } catch (err) {
    const e = err as { stderr?: string }
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.stderr ?? String(err)}`)
  }
}

function runQuietly(cmd: string, args: string[]): void {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' })
  } catch {
    // already gone
  }
}

export interface VethNetns {
  ns: string
  /** veth end in the caller's namespace. */
  hostIf: string
  /** veth end inside `ns`. */
  peerIf: string
  hostIp: string
  peerIp: string
  /** Addresses in the /29 that nobody holds. */
  freeIps: string[]
  prefixLength: number
  hostMac: string
  peerMac: string
}

/** Creates the pair (optionally multi-queue); removes everything in t.teardown, even when setup fails. */
export function createVethNetns(
  t: { teardown: (fn: () => void) => void },
  options: { rxQueues?: number; txQueues?: number } = {},
): VethNetns {
  const tag = randomBytes(3).toString('hex')
  const ns = `kbxnet-${tag}-${process.pid}`
  const hostIf = `kn${tag}h`
  const peerIf = `kn${tag}p`
  t.teardown(() => {
    runQuietly('ip', ['link', 'del', hostIf])
    runQuietly('ip', ['netns', 'del', ns])
  })
  // A random /29 in 10.200.0.0/13, away from anything this machine uses.
  const base = parseIPv4(`10.${200 + randomInt(8)}.${randomInt(256)}.0`) + randomInt(32) * 8
  const hostIp = formatIPv4(base + 1)
  const peerIp = formatIPv4(base + 2)
  const queues = (which: 'rx' | 'tx', n: number | undefined): string[] =>
    n === undefined ? [] : [which === 'rx' ? 'numrxqueues' : 'numtxqueues', String(n)]
  const q = [...queues('rx', options.rxQueues), ...queues('tx', options.txQueues)]
  run('ip', ['netns', 'add', ns])
  run('ip', ['link', 'add', hostIf, ...q, 'type', 'veth', 'peer', 'name', peerIf, ...q, 'netns', ns])
  run('ip', ['addr', 'add', `${hostIp}/29`, 'dev', hostIf])
  run('ip', ['link', 'set', hostIf, 'up'])
  run('ip', ['-n', ns, 'addr', 'add', `${peerIp}/29`, 'dev', peerIf])
  run('ip', ['-n', ns, 'link', 'set', peerIf, 'up'])
  run('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
  const mac = (args: string[]): string => (JSON.parse(run('ip', ['-j', ...args])) as { address: string }[])[0]!.address
  return {
    ns,
    hostIf,
    peerIf,
    hostIp,
    peerIp,
    freeIps: [3, 4, 5, 6].map((i) => formatIPv4(base + i)),
    prefixLength: 29,
    hostMac: mac(['link', 'show', 'dev', hostIf]),
    peerMac: mac(['-n', ns, 'link', 'show', 'dev', peerIf]),
  }
}
