/**
 * xsk: the foundation's demo (examples/xsk-demo.ts, as scripts/demo.sh drives it): an AF_XDP socket in
 * the namespace sends UDP frames as fast as it can through its TX ring; xdp_xsk_redirect on the root end
 * steers them to an AF_XDP socket that receives them. The `quic` topology with unique names.
 * Accounting: every frame sent was received or counted as dropped by the receiving AF_XDP socket (at full
 * rate the demo's receiver, a TypeScript loop, falls behind and the kernel drops frames for want of fill
 * frames; `--xsk-rate` below its pace makes that 0) or by the veth pair (a copy-mode TX completion is not a
 * delivery: under load the receiving veth's queue overflows, counted in the interfaces' dropped counters,
 * which also hold the socket's drops), every UMEM frame of both ends accounted at the end.
 */
import { check } from '../verdict.js'
import { exitProblem, latest, started, stopTool } from '../harness.js'
import type { Accounting, SoakContext, Target, TargetRun } from '../harness.js'
import { umemChecks } from './umem.js'
import { vethDropsFrom } from '../links.js'

const DEMO = 'examples/xsk-demo.ts'

export interface XskSoakOptions {
  /** Frames per second (0: as fast as possible). */
  rate: number
}

export const XSK_DEFAULTS: XskSoakOptions = { rate: 0 }

export function xskTarget(o: XskSoakOptions = XSK_DEFAULTS): Target {
  return {
    name: 'xsk',
    async start(ctx: SoakContext): Promise<TargetRun> {
      const { netns, local, remote } = ctx.net.addLinkedNamespace()
      const interval = ['--interval', String(ctx.sampleSec)]
      const rx = ctx.spawnTool(null, DEMO, ['rx', '--iface', local.name, '--count', '0', '--duration', String(ctx.loadSeconds + 120), ...interval])
      await started('xsk-demo-rx', rx)
      const vethDropsSince = vethDropsFrom({ netns, name: remote.name }, { netns: null, name: local.name })
      const tx = ctx.spawnTool(netns, DEMO, ['tx', '--iface', remote.name, '--dst', local.ip!, '--count', '1000000000000', '--rate', String(o.rate), '--duration', String(ctx.loadSeconds), ...interval])
      await started('xsk-demo-tx', tx)
      return {
        processes: { 'xsk-demo-rx': rx, 'xsk-demo-tx': tx },
        selfEnding: ['xsk-demo-tx'],
        counters: () => {
          const r = latest(rx, 'interval')?.data
          const t = latest(tx, 'interval')?.data
          return {
            'xsk-demo-rx': r && { packets: r['packets'], pps: r['pps'], rxDropped: r['rxDropped'], rxRingFull: r['rxRingFull'], fillRingEmpty: r['fillRingEmpty'] },
            'xsk-demo-tx': t && { sent: t['sent'], pps: t['pps'] },
          }
        },
        umem: () => {
          const r = latest(rx, 'interval')?.data['umem']
          const t = latest(tx, 'interval')?.data['umem']
          return r || t ? { 'xsk-demo-rx': r, 'xsk-demo-tx': t } : undefined
        },
        finish: async (): Promise<Accounting> => {
          const txExit = await stopTool(tx, 'SIGINT', 30_000)
          const problems = exitProblem('xsk-demo-tx', txExit, tx)
          const sent = latest(tx, 'end')?.data['sent'] as number | undefined
          const received = () => Number(latest(rx, 'interval')?.data['packets'] ?? 0)
          const deadline = Date.now() + 5000 + 2000 * ctx.sampleSec
          while (sent !== undefined && received() < sent && Date.now() < deadline && rx.child.exitCode === null) await new Promise((r) => setTimeout(r, 200))
          const rxExit = await stopTool(rx, 'SIGINT', 30_000)
          problems.push(...exitProblem('xsk-demo-rx', rxExit, rx))
          const t = latest(tx, 'end')?.data
          const r = latest(rx, 'end')?.data
          if (!t || !r) return { checks: [], values: {}, problems: [...problems, `no end event from ${t ? 'xsk-demo-rx' : 'xsk-demo-tx'}`] }
          const socketDrops = BigInt(r['rxDropped']) + BigInt(r['rxRingFull'])
          const veth = vethDropsSince(socketDrops)
          return {
            checks: [
              check('sent == received + dropped by the receiving socket + dropped by the veth pair', t['sent'], BigInt(r['packets']) + socketDrops + veth.lost),
              ...umemChecks('xsk-demo-rx', r['umem']), ...umemChecks('xsk-demo-tx', t['umem'])],
            values: {
              sent: t['sent'],
              received: r['packets'],
              droppedFraction: Number(r['rxDropped'] + r['rxRingFull']) / Math.max(1, Number(t['sent'])),
              rxDropped: r['rxDropped'],
              rxRingFull: r['rxRingFull'],
              vethDropped: { receiverRx: veth.receiverRx, senderTx: veth.senderTx, beyondSocket: veth.lost },
              fillRingEmpty: r['fillRingEmpty'],
              txStatistics: t['statistics'],
              umem: { rx: r['umem'], tx: t['umem'] },
            },
            problems,
          }
        },
      }
    },
  }
}
