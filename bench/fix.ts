/**
 * `pnpm bench fix`: fix-tcp against the QuickFIX acceptor (native/build/fix-quickfix-acceptor) and our own
 * (fix-acceptor), both on the kernel's TCP in a fresh linked namespace. Cases, each against each acceptor:
 * - one order at a time (each NewOrderSingle after the previous order's ack): --io xdp --busy-poll and --io xdp
 *   (asleep in poll() when idle) answered by the native reflex, --io xdp --busy-poll --no-reflex (the TypeScript
 *   session answers), --io socket;
 * - at a rate (--rate, paced without waiting for acks): --io xdp --busy-poll and --io socket;
 * - cancels: every order rests (the acceptor started with --fill-every 0) and is canceled once acked
 *   (--cancel-ratio 1, one at a time): order→ack and cancel→ack, --io xdp --busy-poll and --io socket.
 * Measured in fix-tcp: order→ack (NewOrderSingle submitted → its first ExecutionReport parsed), cancel→ack
 * (OrderCancelRequest submitted → its first answer), and for the reflex its internal time (RX descriptors
 * taken → the next order's TX descriptor submitted, before the kick) with its breakdown by stage (clock
 * reads, TCP input, FIX parse, order build, TCP output, UMEM frame and TX submit; end.reflex.breakdownNs).
 * Runs alternate the cases; medians of --runs runs (the machine is shared: compare within one run of the
 * bench). JSON lines on stdout (`run` per run, `end` with the medians and the goal), a table on stderr.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { repoRoot } from '@kbx/ffi'
import { JsonLines, median } from '@kbx/stats'
import { TestNet, followTool, nodeCommand, waitUntil } from '@kbx/testbed'
import type { ToolRun } from '@kbx/testbed'

const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    orders: { type: 'string', default: '5000' },
    rate: { type: 'string', default: '1000' },
    'rate-seconds': { type: 'string', default: '2' },
    cancels: { type: 'string', default: '1000' },
    acceptor: { type: 'string', default: 'both' },
    cases: { type: 'string', default: '' },
    help: { type: 'boolean', default: false },
  },
})
const usage = 'usage: pnpm bench fix [--runs 3] [--orders 5000] [--rate 1000] [--rate-seconds 2] [--cancels 1000] [--acceptor quickfix|kbx|both] [--cases reflex,socket,…]\n'
if (opts.help) {
  process.stderr.write(usage)
  process.exit(0)
}
const int = (v: string) => (/^[1-9][0-9]*$/.test(v) ? Number(v) : NaN)
const runs = int(opts.runs)
const orders = int(opts.orders)
const rate = int(opts.rate)
const rateOrders = rate * int(opts['rate-seconds'])
const cancels = int(opts.cancels)
type AcceptorKind = 'quickfix' | 'kbx'
const acceptorKinds: AcceptorKind[] = opts.acceptor === 'both' ? ['quickfix', 'kbx'] : opts.acceptor === 'quickfix' || opts.acceptor === 'kbx' ? [opts.acceptor] : []
if (![runs, orders, rate, rateOrders, cancels].every(Number.isInteger) || acceptorKinds.length === 0) {
  process.stderr.write(`bench fix: --runs, --orders, --rate, --rate-seconds and --cancels are integers ≥ 1; --acceptor quickfix, kbx or both\n${usage}`)
  process.exit(2)
}

const fixTcpBin = join(repoRoot, 'packages/fix/src/bin-fix-tcp.ts')
const kbxAcceptorBin = join(repoRoot, 'packages/fix/src/bin-fix-acceptor.ts')
const quickfixAcceptorBin = join(repoRoot, 'native/build/fix-quickfix-acceptor')
const pingPong = join(repoRoot, 'examples/strategies/ping-pong.ts')
/** Each acceptor twice: filling every order (the order cases) and leaving them resting (the cancel cases). */
const PORTS: Record<AcceptorKind, { fill: number; rest: number }> = { quickfix: { fill: 9878, rest: 9879 }, kbx: { fill: 9880, rest: 9881 } }
/** The reflex's goal (issue 13): internal time p50 at most this. */
const GOAL_NS = 1000
const out = new JsonLines({ tool: 'bench-fix' })

interface Case {
  args: string[]
  /** Orders of one run. */
  orders: number
  acceptor: 'fill' | 'rest'
  /** The native reflex answers each ExecutionReport (checked: it sent all but the first order). */
  reflex?: boolean
}

const CASES: Record<string, Case> = {
  'xdp-busy reflex': { args: ['--io', 'xdp', '--busy-poll'], orders, acceptor: 'fill', reflex: true },
  'xdp reflex': { args: ['--io', 'xdp'], orders, acceptor: 'fill', reflex: true },
  'xdp-busy ts': { args: ['--io', 'xdp', '--busy-poll', '--no-reflex'], orders, acceptor: 'fill' },
  socket: { args: ['--io', 'socket'], orders, acceptor: 'fill' },
  [`xdp-busy @${rate}/s`]: { args: ['--io', 'xdp', '--busy-poll', '--rate', String(rate)], orders: rateOrders, acceptor: 'fill' },
  [`socket @${rate}/s`]: { args: ['--io', 'socket', '--rate', String(rate)], orders: rateOrders, acceptor: 'fill' },
  'xdp-busy cancel': { args: ['--io', 'xdp', '--busy-poll', '--cancel-ratio', '1'], orders: cancels, acceptor: 'rest' },
  'socket cancel': { args: ['--io', 'socket', '--cancel-ratio', '1'], orders: cancels, acceptor: 'rest' },
  // the strategy API's ping-pong: handing the reflex its template, and answering each report in TypeScript
  'xdp-busy strategy+reflex': { args: ['--io', 'xdp', '--busy-poll', '--strategy', pingPong], orders, acceptor: 'fill', reflex: true },
  'xdp-busy strategy': { args: ['--io', 'xdp', '--busy-poll', '--no-reflex', '--strategy', pingPong], orders, acceptor: 'fill' },
}

/** --cases: only the cases whose name contains one of these words. */
const wanted = opts.cases.split(',').filter((w) => w !== '')
for (const name of Object.keys(CASES)) if (wanted.length > 0 && !wanted.some((w) => name.includes(w))) delete CASES[name]
if (Object.keys(CASES).length === 0) {
  process.stderr.write(`bench fix: --cases ${opts.cases} names no case\n${usage}`)
  process.exit(2)
}

interface Percentiles {
  p50: number
  p90: number
  p99: number
}
interface Sample {
  ordersPerSec: number
  rtt: Percentiles
  cancelRtt?: Percentiles
  /** µs, RX descriptors taken → next order's TX descriptor submitted, by the reflex or (ts) the session. */
  internal?: Percentiles
  /** ns per stage of the reflex's internal time (p50, p99). */
  breakdown?: Record<string, { p50: number; p99: number }>
}

const pick = (s: Record<string, number>): Percentiles => ({ p50: s['p50']!, p90: s['p90']!, p99: s['p99']! })
const medianOf = (ps: Percentiles[]): Percentiles => ({ p50: median(ps.map((p) => p.p50)), p90: median(ps.map((p) => p.p90)), p99: median(ps.map((p) => p.p99)) })

const dir = mkdtempSync(join(tmpdir(), 'kbx-bench-fix-'))
const net = new TestNet()
process.on('SIGINT', () => {
  net.destroy()
  rmSync(dir, { recursive: true, force: true })
  process.exit(130)
})

async function startAcceptor(netns: string, ip: string, kind: AcceptorKind, port: number, rest: boolean): Promise<ToolRun> {
  const fillEvery = rest ? ['--fill-every', '0'] : []
  const [cmd, argv] =
    kind === 'kbx'
      ? nodeCommand(kbxAcceptorBin, ['--listen', `${ip}:${port}`, '--interval', '0', ...fillEvery])
      : [quickfixAcceptorBin, ['--port', String(port), '--store', join(dir, `qf-store-${port}`), '--log', join(dir, `qf-log-${port}`), ...fillEvery]]
  const run = followTool(net.spawn(netns, cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] }))
  await waitUntil(`the ${kind} acceptor on port ${port} to listen`, () => run.events.some((e) => e.event === 'start'))
  return run
}

function sampleOf(name: string, c: Case, end: Record<string, any>): Sample {
  const what = `fix-tcp ${c.args.join(' ')}`
  if (end['orders'].acked !== c.orders) throw new Error(`${what}: ${end['orders'].acked} of ${c.orders} orders acked`)
  const sample: Sample = { ordersPerSec: end['ordersPerSec'], rtt: pick(end['latencyUs']) }
  if (c.acceptor === 'rest') {
    if (end['cancelLatencyUs']?.count !== c.orders) throw new Error(`${what}: ${end['cancelLatencyUs']?.count} of ${c.orders} cancels answered`)
    sample.cancelRtt = pick(end['cancelLatencyUs'])
  }
  if (c.reflex) {
    if (end['reflex'].sent !== c.orders - 1) throw new Error(`${what}: the reflex sent ${end['reflex'].sent} of ${c.orders - 1} orders`)
    sample.internal = pick(end['internalReflexUs'])
    sample.breakdown = Object.fromEntries(Object.entries(end['reflex'].breakdownNs as Record<string, { p50: number; p99: number }>).map(([k, v]) => [k, { p50: v.p50, p99: v.p99 }]))
  } else if (name === 'xdp-busy ts') sample.internal = pick(end['internalUs'])
  return sample
}

try {
  const { netns, local, remote } = net.addLinkedNamespace()
  const acceptors: ToolRun[] = []
  for (const kind of acceptorKinds) {
    acceptors.push(await startAcceptor(netns, remote.ip!, kind, PORTS[kind].fill, false), await startAcceptor(netns, remote.ip!, kind, PORTS[kind].rest, true))
  }
  const results = new Map<string, Sample[]>()
  for (let r = 0; r < runs; r++) {
    for (const kind of acceptorKinds) {
      for (const [name, c] of Object.entries(CASES)) {
        const port = PORTS[kind][c.acceptor]
        const [cmd, argv] = nodeCommand(fixTcpBin, [
          '--iface', local.name, '--connect', `${remote.ip}:${port}`, ...c.args, '--orders', String(c.orders),
          '--reset', '--store', join(dir, `${kind}-${port}.json`), '--interval', '60', '--log-level', 'warn',
        ])
        const run = followTool(net.spawn(null, cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] }))
        const exit = await run.exited
        const end = run.events.find((e) => e.event === 'end')?.data as Record<string, any> | undefined
        if (exit.code !== 0 || !end) throw new Error(`fix-tcp ${c.args.join(' ')} against ${kind} failed: ${run.stderr().slice(-500)}`)
        const sample = sampleOf(name, c, end)
        const key = `${kind} ${name}`
        results.set(key, [...(results.get(key) ?? []), sample])
        out.emit('run', { acceptor: kind, case: name, run: r, orders: c.orders, ...sample })
      }
    }
  }

  const medians = Object.fromEntries(
    [...results].map(([key, samples]) => {
      const internals = samples.flatMap((s) => (s.internal ? [s.internal] : []))
      const cancelRtts = samples.flatMap((s) => (s.cancelRtt ? [s.cancelRtt] : []))
      const breakdowns = samples.flatMap((s) => (s.breakdown ? [s.breakdown] : []))
      const stages = breakdowns.length ? Object.keys(breakdowns[0]!) : []
      return [key, {
        rtt: medianOf(samples.map((s) => s.rtt)),
        ordersPerSec: median(samples.map((s) => s.ordersPerSec)),
        ...(cancelRtts.length ? { cancelRtt: medianOf(cancelRtts) } : {}),
        ...(internals.length ? { internal: medianOf(internals) } : {}),
        ...(stages.length ? { breakdownNs: Object.fromEntries(stages.map((st) => [st, { p50: median(breakdowns.map((b) => b[st]!.p50)), p99: median(breakdowns.map((b) => b[st]!.p99)) }])) } : {}),
      }]
    }),
  ) as Record<string, { rtt: Percentiles; ordersPerSec: number; cancelRtt?: Percentiles; internal?: Percentiles; breakdownNs?: Record<string, { p50: number; p99: number }> }>
  const reflexP50Ns = Object.entries(medians).flatMap(([key, m]) => (key.endsWith('reflex') && m.internal ? [{ case: key, p50Ns: Math.round(m.internal.p50 * 1000) }] : []))
  const goal = { goalNs: GOAL_NS, reflexInternalP50Ns: reflexP50Ns, met: reflexP50Ns.length > 0 && reflexP50Ns.every((x) => x.p50Ns <= GOAL_NS) }
  out.emit('end', { runs, orders, rate, rateOrders, cancels, acceptors: acceptorKinds, medians, goal })

  const num = (v: number | undefined, digits = 1) => (v === undefined ? '' : v.toFixed(digits))
  const row = (name: string, p: Percentiles | undefined, extra = '') => `  ${name.padEnd(38)} ${num(p?.p50).padStart(9)} ${num(p?.p90).padStart(9)} ${num(p?.p99).padStart(9)} ${extra.padStart(9)}\n`
  const w = (s: string) => process.stderr.write(s)
  w(`\n  medians of ${runs} runs; one at a time: ${orders} orders, at a rate: ${rateOrders} at ${rate}/s, cancels: ${cancels}\n`)
  w(`  ${'acceptor case'.padEnd(38)} ${'p50 us'.padStart(9)} ${'p90 us'.padStart(9)} ${'p99 us'.padStart(9)} ${'orders/s'.padStart(9)}\n`)
  for (const [key, m] of Object.entries(medians)) {
    w(row(`${key} order→ack`, m.rtt, String(m.ordersPerSec)))
    if (m.cancelRtt) w(row(`${key} cancel→ack`, m.cancelRtt))
  }
  w('  internal: RX descriptors taken → next order\'s TX descriptor submitted (before the kick)\n')
  for (const [key, m] of Object.entries(medians)) {
    if (!m.internal) continue
    w(row(`${key} internal`, m.internal))
    if (m.breakdownNs) w(`    breakdown p50 (p99) ns: ${Object.entries(m.breakdownNs).map(([st, v]) => `${st} ${v.p50} (${v.p99})`).join(', ')}\n`)
  }
  w(`  reflex internal p50 ≤ ${GOAL_NS} ns: ${goal.met ? 'met' : 'NOT met'} (${reflexP50Ns.map((x) => `${x.case} ${x.p50Ns} ns`).join(', ')})\n`)
  for (const a of acceptors) a.child.kill('SIGINT')
  await Promise.all(acceptors.map((a) => a.exited))
} finally {
  net.destroy()
  rmSync(dir, { recursive: true, force: true })
}
