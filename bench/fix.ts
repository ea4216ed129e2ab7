/**
 * `pnpm bench fix`: fix-tcp against fix-acceptor (kernel TCP) on a fresh linked namespace, one order at a
 * time (each NewOrderSingle sent after the previous order's ack), four cases: --io xdp --busy-poll and
 * --io xdp (sleeping in poll() when idle), both with the native reflex answering each ExecutionReport (the
 * default), --io xdp --busy-poll --no-reflex (the TypeScript session answers) and --io socket. Measured:
 * order→ack round trip (NewOrderSingle submitted → its first ExecutionReport parsed, in fix-tcp) and, for
 * --io xdp, fix-tcp's internal times: RX descriptors taken → the next order's TX descriptor submitted
 * (before the kick), by the reflex in C or by the session (whose C share is shown), and the TX call after
 * it (see the README). Runs alternate the cases; medians of --runs runs of --orders orders each. JSON lines on stdout
 * (`run` per run, `end` with medians and the xdp/socket p50 ratios), a table on stderr.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { repoRoot } from '@kbx/ffi'
import { JsonLines, median } from '@kbx/stats'
import { TestNet, followTool, nodeCommand, waitUntil } from '@kbx/testbed'

const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    orders: { type: 'string', default: '10000' },
    help: { type: 'boolean', default: false },
  },
})
if (opts.help) {
  process.stderr.write('usage: pnpm bench fix [--runs 3] [--orders 10000]\n')
  process.exit(0)
}
const runs = Number(opts.runs)
const orders = Number(opts.orders)
if (!(Number.isInteger(runs) && runs >= 1 && Number.isInteger(orders) && orders >= 1)) {
  process.stderr.write('bench fix: --runs and --orders are integers ≥ 1\n')
  process.exit(2)
}

const fixTcpBin = join(repoRoot, 'packages/fix/src/bin-fix-tcp.ts')
const acceptorBin = join(repoRoot, 'packages/fix/src/bin-fix-acceptor.ts')
const PORT = 9878
const out = new JsonLines({ tool: 'bench-fix' })

interface Percentiles {
  p50: number
  p90: number
  p99: number
}

interface Sample {
  acked: number
  ordersPerSec: number
  rtt: Percentiles
  /** --io xdp only, µs: RX descriptors taken → next order submitted to TX (before the kick); its C share; the TX call after it. */
  internal?: Percentiles
  internalNative?: Percentiles
  internalKick?: Percentiles
  /** Which path answered: the reflex (C) or the session (TS). */
  answeredBy?: 'reflex' | 'session'
}

const CASES = {
  'xdp-busy': ['--io', 'xdp', '--busy-poll'],
  xdp: ['--io', 'xdp'],
  'xdp-busy-ts': ['--io', 'xdp', '--busy-poll', '--no-reflex'],
  socket: ['--io', 'socket'],
} as const
type Case = keyof typeof CASES

const medianOf = (ps: Percentiles[]): Percentiles => ({ p50: median(ps.map((p) => p.p50)), p90: median(ps.map((p) => p.p90)), p99: median(ps.map((p) => p.p99)) })
const pick = (s: Record<string, number>): Percentiles => ({ p50: s['p50']!, p90: s['p90']!, p99: s['p99']! })

const dir = mkdtempSync(join(tmpdir(), 'kbx-bench-fix-'))
const net = new TestNet()
process.on('SIGINT', () => {
  net.destroy()
  rmSync(dir, { recursive: true, force: true })
  process.exit(130)
})
try {
  const { netns, local, remote } = net.addLinkedNamespace()
  const [acmd, aargv] = nodeCommand(acceptorBin, ['--listen', `${remote.ip}:${PORT}`])
  const acceptor = followTool(net.spawn(netns, acmd, aargv, { stdio: ['ignore', 'pipe', 'pipe'] }))
  await waitUntil('fix-acceptor to start', () => acceptor.events.some((e) => e.event === 'start'))

  const results: Record<Case, Sample[]> = { 'xdp-busy': [], xdp: [], 'xdp-busy-ts': [], socket: [] }
  for (let r = 0; r < runs; r++) {
    for (const name of Object.keys(CASES) as Case[]) {
      const [cmd, argv] = nodeCommand(fixTcpBin, [
        '--iface', local.name, '--connect', `${remote.ip}:${PORT}`, ...CASES[name], '--orders', String(orders),
        '--reset', '--store', join(dir, `${name}.json`), '--interval', '60', '--log-level', 'warn',
      ])
      const run = followTool(net.spawn(null, cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] }))
      const exit = await run.exited
      const end = run.events.find((e) => e.event === 'end')?.data as Record<string, any> | undefined
      if (exit.code !== 0 || !end) throw new Error(`fix-tcp ${CASES[name].join(' ')} failed: ${run.stderr().slice(-500)}`)
      if (end['orders'].acked !== orders) throw new Error(`fix-tcp ${CASES[name].join(' ')}: ${end['orders'].acked} of ${orders} orders acked`)
      const sample: Sample = { acked: end['orders'].acked, ordersPerSec: end['ordersPerSec'], rtt: pick(end['latencyUs']) }
      if (end['internalUs'] !== undefined) {
        const byReflex = end['reflex'].sent > 0
        if (byReflex && end['reflex'].sent < orders - 1) throw new Error(`fix-tcp ${CASES[name].join(' ')}: the reflex sent ${end['reflex'].sent} of ${orders - 1} orders`)
        sample.answeredBy = byReflex ? 'reflex' : 'session'
        sample.internal = pick(byReflex ? end['internalReflexUs'] : end['internalUs'])
        if (!byReflex) sample.internalNative = pick(end['internalNativeUs'])
        sample.internalKick = pick(byReflex ? end['internalReflexKickUs'] : end['internalKickUs'])
      }
      results[name].push(sample)
      out.emit('run', { case: name, run: r, ...sample })
    }
  }
  const medians = Object.fromEntries(
    (Object.keys(CASES) as Case[]).map((name) => {
      const samples = results[name]
      const internals = samples.flatMap((s) => (s.internal ? [s.internal] : []))
      const natives = samples.flatMap((s) => (s.internalNative ? [s.internalNative] : []))
      const kicks = samples.flatMap((s) => (s.internalKick ? [s.internalKick] : []))
      return [name, {
        rtt: medianOf(samples.map((s) => s.rtt)),
        ordersPerSec: median(samples.map((s) => s.ordersPerSec)),
        ...(internals.length ? { answeredBy: samples[0]!.answeredBy, internal: medianOf(internals), ...(natives.length ? { internalNative: medianOf(natives) } : {}), internalKick: medianOf(kicks) } : {}),
      }]
    }),
  ) as Record<Case, { rtt: Percentiles; ordersPerSec: number; answeredBy?: string; internal?: Percentiles; internalNative?: Percentiles; internalKick?: Percentiles }>
  const ratio = (a: number, b: number) => (b > 0 ? Math.round((a / b) * 100) / 100 : null)
  const socketP50 = medians.socket.rtt.p50
  out.emit('end', {
    runs,
    orders,
    medians,
    p50RatioXdpBusyOverSocket: ratio(medians['xdp-busy'].rtt.p50, socketP50),
    p50RatioXdpOverSocket: ratio(medians.xdp.rtt.p50, socketP50),
    p50RatioXdpBusyTsOverSocket: ratio(medians['xdp-busy-ts'].rtt.p50, socketP50),
  })
  const row = (name: string, p: Percentiles, rate: string) =>
    `  ${name.padEnd(30)} ${p.p50.toFixed(1).padStart(9)} ${p.p90.toFixed(1).padStart(9)} ${p.p99.toFixed(1).padStart(9)} ${rate.padStart(9)}\n`
  process.stderr.write(`\n  medians of ${runs} runs × ${orders} orders, one at a time\n`)
  process.stderr.write(`  ${'case'.padEnd(30)} ${'p50 us'.padStart(9)} ${'p90 us'.padStart(9)} ${'p99 us'.padStart(9)} ${'orders/s'.padStart(9)}\n`)
  for (const name of Object.keys(CASES) as Case[]) process.stderr.write(row(`${name} order→ack`, medians[name].rtt, String(medians[name].ordersPerSec)))
  process.stderr.write('  internal: RX descriptors taken → next order\'s TX descriptor submitted (before the kick); then the TX call\n')
  for (const name of ['xdp-busy', 'xdp', 'xdp-busy-ts'] as const) {
    const m = medians[name]
    if (m.internal && m.internalKick) {
      process.stderr.write(row(`${name} internal (${m.answeredBy})`, m.internal, ''))
      if (m.internalNative) process.stderr.write(row(`  of which C (TCP etc.)`, m.internalNative, ''))
      process.stderr.write(row(`  then the TX call (kick)`, m.internalKick, ''))
    }
  }
  process.stderr.write(`  order→ack p50 xdp/socket: ${ratio(medians.xdp.rtt.p50, socketP50)}, xdp --busy-poll/socket: ${ratio(medians['xdp-busy'].rtt.p50, socketP50)}, xdp --busy-poll --no-reflex/socket: ${ratio(medians['xdp-busy-ts'].rtt.p50, socketP50)}\n`)
  acceptor.child.kill('SIGINT')
  await acceptor.exited
} finally {
  net.destroy()
  rmSync(dir, { recursive: true, force: true })
}
