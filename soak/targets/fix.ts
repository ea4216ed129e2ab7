/**
 * fix: fix-tcp (root namespace, --io xdp: the userspace TCP over AF_XDP) sending NewOrderSingles at a
 * fixed rate with a short heartbeat interval, against the test bed's acceptor
 * (packages/fix/src/bin-fix-acceptor.ts, kernel TCP, in the namespace). The `fix` topology of
 * setup_net.sh with unique names. Accounting: sent == acked == the acceptor's count of orders received
 * (and acked), nothing outstanding or rejected.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { repoRoot } from '@kbx/ffi'
import { nodeCommand } from '@kbx/testbed'
import { check } from '../verdict.js'
import { exitProblem, latest, started, stopTool } from '../harness.js'
import type { Accounting, SoakContext, Target, TargetRun } from '../harness.js'

const FIX_TCP = 'packages/fix/src/bin-fix-tcp.ts'
const ACCEPTOR = 'packages/fix/src/bin-fix-acceptor.ts'
const PORT = 9878

export interface FixSoakOptions {
  /** NewOrderSingles per second. */
  rate: number
  /** HeartBtInt proposed on Logon, seconds. */
  heartbeat: number
}

export const FIX_DEFAULTS: FixSoakOptions = { rate: 2000, heartbeat: 1 }

type Data = Record<string, unknown>

/**
 * A count from the acceptor's events, tolerant of how it is named: the first of `paths` (dotted, e.g.
 * `orders.received`) that holds a number.
 */
export function countOf(data: Data | undefined, paths: readonly string[]): number | undefined {
  for (const path of paths) {
    let v: unknown = data
    for (const key of path.split('.')) v = v !== null && typeof v === 'object' ? (v as Data)[key] : undefined
    if (typeof v === 'number' || typeof v === 'bigint') return Number(v)
  }
  return undefined
}

/** The acceptor's count of NewOrderSingles received, under any of the names it has had or may get. */
export const acceptorReceived = (d: Data | undefined): number | undefined =>
  countOf(d, ['ordersReceived', 'newOrderSingles', 'received', 'orders.received', 'orders.newOrderSingles', 'newOrderSingle.received', 'orders'])

/** The acceptor's count of orders it acknowledged (ExecutionReport New). */
export const acceptorAcked = (d: Data | undefined): number | undefined =>
  countOf(d, ['ordersAcked', 'acked', 'acks', 'orders.acked', 'orders.acks', 'newOrderSingle.acked'])

function acceptorHasInterval(): boolean {
  const [cmd, argv] = nodeCommand(join(repoRoot, ACCEPTOR), ['--help'])
  try {
    return execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).includes('--interval')
  } catch {
    return false
  }
}

export function fixTarget(o: FixSoakOptions = FIX_DEFAULTS): Target {
  return {
    name: 'fix',
    async start(ctx: SoakContext): Promise<TargetRun> {
      const { netns, local, remote } = ctx.net.addLinkedNamespace()
      const dir = mkdtempSync(join(tmpdir(), 'kbx-soak-fix-'))
      const acceptorArgs = ['--listen', `${remote.ip}:${PORT}`, ...(acceptorHasInterval() ? ['--interval', String(ctx.sampleSec)] : [])]
      const acceptor = ctx.spawnTool(netns, ACCEPTOR, acceptorArgs)
      await started('fix-acceptor', acceptor)
      const client = ctx.spawnTool(null, FIX_TCP, [
        '--iface', local.name, '--connect', `${remote.ip}:${PORT}`, '--io', 'xdp', '--rate', String(o.rate),
        '--heartbeat', String(o.heartbeat), '--duration', String(ctx.loadSeconds), '--reset', '--store', join(dir, 'store.json'),
        '--interval', String(ctx.sampleSec), '--log-level', 'warn',
      ])
      await started('fix-tcp', client)
      return {
        processes: { 'fix-tcp': client, 'fix-acceptor': acceptor },
        selfEnding: ['fix-tcp'],
        counters: () => {
          const c = latest(client, 'interval')?.data
          const a = latest(acceptor, 'interval')?.data
          return {
            'fix-tcp': c && { orders: c['orders'], perSec: c['perSec'], latencyUs: c['latencyUs'], retransmits: (c['tcp'] as Data | undefined)?.['retransmits'], session: c['session'] },
            'fix-acceptor': a && { received: acceptorReceived(a), acked: acceptorAcked(a) },
          }
        },
        finish: async (): Promise<Accounting> => {
          try {
            const clientExit = await stopTool(client, 'SIGINT', 30_000)
            const problems = exitProblem('fix-tcp', clientExit, client)
            const acceptorExit = await stopTool(acceptor, 'SIGINT', 30_000)
            problems.push(...exitProblem('fix-acceptor', acceptorExit, acceptor))
            const end = latest(client, 'end')?.data
            const accepted = latest(acceptor, 'end')?.data
            if (!end || !accepted) return { checks: [], values: {}, problems: [...problems, `no end event from ${end ? 'fix-acceptor' : 'fix-tcp'}`] }
            const orders = end['orders'] as Data
            const received = acceptorReceived(accepted)
            const ackedByAcceptor = acceptorAcked(accepted)
            if (received === undefined) problems.push(`fix-acceptor's end event has no count of orders received I recognise: ${JSON.stringify(accepted)}`)
            const session = end['session'] as Data
            return {
              checks: [
                check('sent == acked', orders['sent'] as number, orders['acked'] as number),
                check("acked == the acceptor's orders received", orders['acked'] as number, received),
                ...(ackedByAcceptor === undefined ? [] : [check("acked == the acceptor's acks", orders['acked'] as number, ackedByAcceptor)]),
                check('outstanding == 0', orders['outstanding'] as number, 0),
                check('rejected == 0', orders['rejected'] as number, 0),
              ],
              values: {
                orders,
                ordersPerSec: end['ordersPerSec'],
                latencyUs: end['latencyUs'],
                acceptor: accepted,
                session: Object.fromEntries(Object.entries(session).filter(([key]) => key !== 'events')),
                tcp: end['tcp'],
                closed: end['closed'],
              },
              problems,
            }
          } finally {
            rmSync(dir, { recursive: true, force: true })
          }
        },
      }
    },
  }
}
