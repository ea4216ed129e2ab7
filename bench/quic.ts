/**
 * `pnpm bench quic`: quic-flood against quic-sink on a fresh linked namespace, --io xdp vs --io socket,
 * at full speed and at a fixed 1k tx/s. Measured: acked tx/s (the flooder's acknowledged transactions
 * over the run) and send->ack latency percentiles. Runs alternate xdp and socket; medians of --runs runs
 * of --seconds each. JSON lines on stdout (`run` per run, `end` with medians and xdp/socket ratios), a
 * table on stderr. Numbers on a shared 2-core VM are noisy; the sink usually is the bottleneck.
 */
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { repoRoot } from '@kbx/ffi'
import { JsonLines } from '@kbx/stats'
import { TestNet, followTool, nodeCommand, waitUntil } from '@kbx/testbed'

const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '3' },
    help: { type: 'boolean', default: false },
  },
})
if (opts.help) {
  process.stderr.write('usage: pnpm bench quic [--runs 3] [--seconds 3]\n')
  process.exit(0)
}
const runs = Number(opts.runs)
const seconds = Number(opts.seconds)
if (!(runs >= 1 && seconds > 0)) {
  process.stderr.write('bench quic: --runs ≥ 1, --seconds > 0\n')
  process.exit(2)
}

const floodBin = join(repoRoot, 'packages/quic/src/bin-quic-flood.ts')
const sinkBin = join(repoRoot, 'packages/quic/src/bin-quic-sink.ts')
const out = new JsonLines({ tool: 'bench-quic' })

interface Sample {
  ackedPerSec: number
  acked: number
  p50: number
  p90: number
  p99: number
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length ? (s[(s.length - 1) >> 1]! + s[s.length >> 1]!) / 2 : 0
}

const net = new TestNet()
process.on('SIGINT', () => {
  net.destroy()
  process.exit(130)
})
try {
  const { netns, local, remote } = net.addLinkedNamespace()
  const [scmd, sargv] = nodeCommand(sinkBin, ['--listen', `${remote.ip}:8004`, '--interval', '60'])
  const sink = followTool(net.spawn(netns, scmd, sargv, { stdio: ['ignore', 'pipe', 'pipe'] }))
  await waitUntil('quic-sink to start', () => sink.events.some((e) => e.event === 'start'))

  const results: Record<string, Sample[]> = {}
  for (let r = 0; r < runs; r++) {
    for (const rate of [0, 1000]) {
      for (const io of ['xdp', 'socket'] as const) {
        const [cmd, argv] = nodeCommand(floodBin, [
          '--iface', local.name, '--server', `${remote.ip}:8004`, '--io', io,
          '--rate', String(rate), '--duration', String(seconds), '--interval', '60',
        ])
        const flood = followTool(net.spawn(null, cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] }))
        const exit = await flood.exited
        const end = flood.events.find((e) => e.event === 'end')?.data as Record<string, any> | undefined
        if (exit.code !== 0 || !end) throw new Error(`quic-flood --io ${io} failed: ${flood.stderr().slice(-500)}`)
        const sample: Sample = {
          ackedPerSec: Math.round(end['acked'] / seconds),
          acked: end['acked'],
          p50: end['ackLatencyUs'].p50,
          p90: end['ackLatencyUs'].p90,
          p99: end['ackLatencyUs'].p99,
        }
        const key = `${io}@${rate === 0 ? 'full' : '1k'}`
        ;(results[key] ??= []).push(sample)
        out.emit('run', { io, rate, run: r, ...sample })
      }
    }
  }
  const med: Record<string, Sample> = {}
  for (const [key, samples] of Object.entries(results)) {
    med[key] = {
      ackedPerSec: median(samples.map((s) => s.ackedPerSec)),
      acked: median(samples.map((s) => s.acked)),
      p50: median(samples.map((s) => s.p50)),
      p90: median(samples.map((s) => s.p90)),
      p99: median(samples.map((s) => s.p99)),
    }
  }
  const ratio = (a?: number, b?: number) => (a && b ? Math.round((a / b) * 100) / 100 : null)
  out.emit('end', {
    runs,
    seconds,
    medians: med,
    ratioXdpOverSocketFull: ratio(med['xdp@full']?.ackedPerSec, med['socket@full']?.ackedPerSec),
    p50RatioXdpOverSocket1k: ratio(med['xdp@1k']?.p50, med['socket@1k']?.p50),
  })
  process.stderr.write('\n  case          acked tx/s    p50 us    p90 us    p99 us\n')
  for (const [key, m] of Object.entries(med))
    process.stderr.write(`  ${key.padEnd(12)} ${String(m.ackedPerSec).padStart(11)} ${m.p50.toFixed(0).padStart(9)} ${m.p90.toFixed(0).padStart(9)} ${m.p99.toFixed(0).padStart(9)}\n`)
  process.stderr.write(`  xdp/socket acked tx/s at full speed: ${ratio(med['xdp@full']?.ackedPerSec, med['socket@full']?.ackedPerSec)}\n`)
  sink.child.kill('SIGINT')
  await sink.exited
} finally {
  net.destroy()
}
