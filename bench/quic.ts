/**
 * `pnpm bench quic`: quic-flood against quic-sink on a fresh linked namespace, --io xdp vs --io socket,
 * at full speed and at a fixed 1k tx/s. Measured: acked tx/s (the flooder's acknowledged transactions
 * over the run) and send->ack latency percentiles. Runs alternate xdp and socket; medians of --runs runs
 * of --seconds each. JSON lines on stdout (`run` per run, `end` with medians and xdp/socket ratios), a
 * table on stderr. Numbers on a shared 2-core VM are noisy.
 *
 * Configuration: quic-sink runs with --busy-poll 2000 (it polls instead of sleeping, so send->ack at 1k
 * tx/s measures the path, not the sink's wakeup) and quic-flood with its default --busy-poll 200 (it polls
 * while an ACK is due). At full speed both are busy anyway; the limit there is the sink (one core, and
 * ngtcp2 0.12.1 never frees a finished remote unidirectional stream: ngtcp2/ngtcp2#662) and its
 * MAX_STREAMS 512 per round trip. --sink-args / --flood-args replace or add options, --flood-cpu /
 * --sink-cpu pin with taskset.
 */
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { repoRoot } from '@kbx/ffi'
import { JsonLines, median } from '@kbx/stats'
import { TestNet, followTool, nodeCommand, waitUntil } from '@kbx/testbed'

const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '3' },
    io: { type: 'string', default: 'xdp,socket' },
    rate: { type: 'string', default: '0,1000' },
    // the sink polls for 2 ms after each packet instead of sleeping: at 1k tx/s its wakeup from an idle
    // vCPU (tens of µs on this VM) would otherwise be most of the send->ack latency
    'sink-args': { type: 'string', default: '--busy-poll 2000' },
    'flood-args': { type: 'string', default: '' },
    'flood-cpu': { type: 'string' },
    'sink-cpu': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
})
if (opts.help) {
  process.stderr.write(
    'usage: pnpm bench quic [--runs 3] [--seconds 3] [--io xdp,socket] [--rate 0,1000] [--sink-args "..."] [--flood-args "..."]\n',
  )
  process.exit(0)
}
const runs = Number(opts.runs)
const seconds = Number(opts.seconds)
if (!(runs >= 1 && seconds > 0)) {
  process.stderr.write('bench quic: --runs ≥ 1, --seconds > 0\n')
  process.exit(2)
}

const ios = opts.io.split(',') as ('xdp' | 'socket')[]
const rates = opts.rate.split(',').map(Number)
if (!ios.every((io) => io === 'xdp' || io === 'socket') || !rates.every((r) => Number.isInteger(r) && r >= 0)) {
  process.stderr.write('bench quic: --io takes xdp and/or socket, --rate integers ≥ 0 (0: full speed)\n')
  process.exit(2)
}
const words = (s: string): string[] => s.split(/\s+/).filter(Boolean)

/** The command, pinned to a CPU list with taskset when one is given. */
const pinned = ([cmd, argv]: [string, string[]], cpus: string | undefined): [string, string[]] =>
  cpus ? ['taskset', ['-c', cpus, cmd, ...argv]] : [cmd, argv]

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


const net = new TestNet()
process.on('SIGINT', () => {
  net.destroy()
  process.exit(130)
})
try {
  const { netns, local, remote } = net.addLinkedNamespace()
  const [scmd, sargv] = pinned(nodeCommand(sinkBin, ['--listen', `${remote.ip}:8004`, '--interval', '60', ...words(opts['sink-args'])]), opts['sink-cpu'])
  const sink = followTool(net.spawn(netns, scmd, sargv, { stdio: ['ignore', 'pipe', 'pipe'] }))
  await waitUntil('quic-sink to start', () => sink.events.some((e) => e.event === 'start'))

  const results: Record<string, Sample[]> = {}
  for (let r = 0; r < runs; r++) {
    for (const rate of rates) {
      for (const io of ios) {
        const [cmd, argv] = pinned(nodeCommand(floodBin, [
          '--iface', local.name, '--server', `${remote.ip}:8004`, '--io', io,
          '--rate', String(rate), '--duration', String(seconds), '--interval', '60',
          ...words(opts['flood-args']),
        ]), opts['flood-cpu'])
        const flood = followTool(net.spawn(null, cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] }))
        const exit = await flood.exited
        const end = flood.events.find((e) => e.event === 'end')?.data as Record<string, any> | undefined
        if (exit.code !== 0 || !end) throw new Error(`quic-flood --io ${io} failed: ${flood.stderr().slice(-500)}`)
        const sample: Sample = {
          ackedPerSec: end['ackedPerSec'],
          acked: end['acked'],
          p50: end['ackLatencyUs'].p50,
          p90: end['ackLatencyUs'].p90,
          p99: end['ackLatencyUs'].p99,
        }
        const key = `${io}@${rate === 0 ? 'full' : rate === 1000 ? '1k' : rate}`
        ;(results[key] ??= []).push(sample)
        out.emit('run', {
          io, rate, run: r, ...sample,
          packetsSent: end['packetsSent'], packetsReceived: end['packetsReceived'], rttUs: end['rttUs'],
        })
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
