// Test support: a veth pair between the caller's namespace and a fresh namespace (@kbx/testbed), on a
// random /29 so that tests know which neighbouring addresses nobody holds. No neighbour entries and
// checksum offload left on: the tests below look at the kernel's own behaviour.
import { randomInt } from 'node:crypto'
import { runIn, withTestNet } from '@kbx/testbed'
import { formatIPv4, parseIPv4 } from '../index.js'

export function run(cmd: string, args: string[]): string {
  return runIn(null, cmd, args)
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
  // A random /29 in 10.200.0.0/13, away from the /24s TestNet hands out.
  const base = parseIPv4(`10.${200 + randomInt(8)}.${randomInt(256)}.0`) + randomInt(32) * 8
  const net = withTestNet(t)
  const netns = net.addNamespace()
  const { a: local, b: remote } = net.addVethPair({
    a: { cidr: `${formatIPv4(base + 1)}/29` },
    b: { netns, cidr: `${formatIPv4(base + 2)}/29` },
    ...(options.rxQueues !== undefined ? { queues: options.rxQueues } : {}),
    ...(options.txQueues !== undefined ? { txQueues: options.txQueues } : {}),
    neighbours: false,
    txChecksumOff: false,
  })
  return {
    ns: netns,
    hostIf: local.name,
    peerIf: remote.name,
    hostIp: local.ip!,
    peerIp: remote.ip!,
    freeIps: [3, 4, 5, 6].map((i) => formatIPv4(base + i)),
    prefixLength: 29,
    hostMac: local.mac,
    peerMac: remote.mac,
  }
}
