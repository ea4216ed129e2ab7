/**
 * quic: quic-flood (root namespace, --io xdp, as fast as the sink allows) → quic-sink (in the namespace,
 * kernel UDP). The `quic` topology of setup_net.sh with unique names. Accounting: every transaction the
 * flooder counts as acked is counted by the sink.
 */
import { check } from '../verdict.js'
import { exitProblem, latest, started, stopTool } from '../harness.js'
import type { Accounting, SoakContext, Target, TargetRun } from '../harness.js'

const FLOOD = 'packages/quic/src/bin-quic-flood.ts'
const SINK = 'packages/quic/src/bin-quic-sink.ts'
const PORT = 8004

export function quicTarget(): Target {
  return {
    name: 'quic',
    async start(ctx: SoakContext): Promise<TargetRun> {
      const { netns, local, remote } = ctx.net.addLinkedNamespace()
      const server = `${remote.ip}:${PORT}`
      const sink = ctx.spawnTool(netns, SINK, ['--listen', server, '--interval', String(ctx.sampleSec), '--duration', String(ctx.loadSeconds + 120)])
      await started('quic-sink', sink)
      const flood = ctx.spawnTool(null, FLOOD, ['--iface', local.name, '--server', server, '--io', 'xdp', '--duration', String(ctx.loadSeconds), '--interval', String(ctx.sampleSec)])
      await started('quic-flood', flood)
      return {
        processes: { 'quic-flood': flood, 'quic-sink': sink },
        selfEnding: ['quic-flood'],
        counters: () => {
          const f = latest(flood, 'interval')?.data
          const s = latest(sink, 'interval')?.data
          return {
            'quic-flood': f && { sent: f['sent'], acked: f['acked'], ackedPerSec: f['ackedPerSec'], connectionsOpen: f['connectionsOpen'], streamFramesLost: f['streamFramesLost'], txRingFull: f['txRingFull'] },
            'quic-sink': s && { transactions: s['transactions'], txPerSec: s['txPerSec'], connectionsOpen: s['connectionsOpen'], rejected: s['rejected'] },
          }
        },
        finish: async (): Promise<Accounting> => {
          const flooded = await stopTool(flood, 'SIGINT', 30_000)
          const problems = exitProblem('quic-flood', flooded, flood)
          const acked = latest(flood, 'end')?.data['acked'] as number | undefined
          // The sink's count catches up within an interval or two.
          const counted = () => Number(latest(sink, 'interval')?.data['transactions'] ?? 0)
          const deadline = Date.now() + 5000 + 2000 * ctx.sampleSec
          while (acked !== undefined && counted() < acked && Date.now() < deadline && sink.child.exitCode === null) await new Promise((r) => setTimeout(r, 200))
          const sank = await stopTool(sink, 'SIGINT', 30_000)
          problems.push(...exitProblem('quic-sink', sank, sink))
          const f = latest(flood, 'end')?.data
          const s = latest(sink, 'end')?.data
          if (!f || !s) return { checks: [], values: {}, problems: [...problems, `no end event from ${f ? 'quic-sink' : 'quic-flood'}`] }
          return {
            checks: [check("flooder's acked == sink's transactions", f['acked'], s['transactions'])],
            values: {
              sent: f['sent'],
              acked: f['acked'],
              unackedAtClose: f['unackedAtClose'],
              ackedPerSec: f['ackedPerSec'],
              sinkTransactions: s['transactions'],
              sinkRejected: s['rejected'],
              handshakes: f['handshakes'],
              connectionsClosed: f['connectionsClosed'],
              sinkConnections: s['connections'],
              streamFramesLost: f['streamFramesLost'],
            },
            problems,
          }
        },
      }
    },
  }
}
