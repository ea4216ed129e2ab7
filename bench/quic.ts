/**
 * `pnpm bench quic`: quic-flood against quic-sink on fresh linked namespaces, and quinn's own client
 * (bench/quinn-client, built from Debian's librust-quinn-dev) against the same sinks on the same bed.
 * Cases: quic-flood --io xdp and --io socket, with 1 and 2 workers (`--workers`, on a 2-queue bed; a
 * row says "not available" while quic-flood or quic-sink lacks the option), fanning out to 1, 2 and 4
 * sinks (`--server` repeated, `--fanout all`: every transaction to every sink, each copy counted), and
 * the quinn client to 1 sink. Measured: acked tx/s (every sink's acknowledged copies over the run),
 * send→ack latency percentiles, and the cores the sender and its sinks kept busy mid-run (/proc/PID/stat),
 * whence acked tx per CPU-second of the sender: on a machine shared with other work, tx/s follows the CPU
 * share each sender got (quinn runs 2 tokio threads, quic-flood 1), tx per CPU-second much less. Runs go round the cases `--runs` times (noise spreads over all of
 * them); medians. JSON lines on stdout (`run` per run, `end` with medians, the quic-flood/quinn
 * ratios and whether issue 12's goal, ≥ 10× quinn's acked tx/s, is met), a table on stderr. At the end
 * every sink's transaction count is checked against what the senders counted acked for it.
 *
 * quinn and UDP GSO: quinn 0.9 sends with UDP GSO whenever the kernel takes UDP_SEGMENT and has no
 * option to turn it off; quinn-udp 0.3 falls back to one datagram per send after an EIO, not after an
 * EINVAL. The beds turn veth TX checksum offload off (partial checksums would reach AF_XDP readers), so
 * quinn's default case turns it back on for the quinn client's end of the veth during its run (a real
 * NIC offloads checksums and GSO), and a second case runs it with offload off (`--quinn-tx-csum`).
 *
 * quic-sink runs with --busy-poll 2000 (it polls instead of sleeping) and quic-flood with its default
 * --busy-poll 200. --sink-args / --flood-args / --quinn-args add options, --flood-cpu / --sink-cpu pin
 * with taskset (--flood-cpu pins the quinn client too). Numbers on a shared 2-core VM are noisy.
 */
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { repoRoot } from '@kbx/ffi'
import { JsonLines } from '@kbx/stats'
import { TestNet, followTool, nodeCommand, waitUntil } from '@kbx/testbed'
import type { LinkedNamespace, ToolRun } from '@kbx/testbed'
import { coresBusy } from './lib/proc-cpu.js'
import { caseKey, formatTable, summarize, verdict } from './lib/quic-table.js'
import type { BenchCase, Sample, Sender } from './lib/quic-table.js'

const USAGE = `usage: pnpm bench quic [--runs 3] [--seconds 5] [--io xdp,socket] [--workers 1,2] [--sinks 1,2,4]
       [--rate 0] [--quinn-tx-csum on,off] [--no-quinn] [--quinn-args "..."] [--sink-args "..."] [--flood-args "..."]
       [--flood-cpu LIST] [--sink-cpu LIST]
  Options whose value starts with -- take it after =: --quinn-args="--connections 1".
  --rate 0,1000 adds a 1k tx/s case (1 worker, 1 sink) for latency at low load.
`

const OPTIONS = {
  runs: { type: 'string', default: '3' },
  seconds: { type: 'string', default: '5' },
  io: { type: 'string', default: 'xdp,socket' },
  workers: { type: 'string', default: '1,2' },
  sinks: { type: 'string', default: '1,2,4' },
  rate: { type: 'string', default: '0' },
  'quinn-tx-csum': { type: 'string', default: 'on,off' },
  'no-quinn': { type: 'boolean', default: false },
  'quinn-args': { type: 'string', default: '' },
  // the sink polls for 2 ms after each packet instead of sleeping: at low rates its wakeup from an
  // idle vCPU (tens of µs on this VM) would otherwise be most of the send->ack latency
  'sink-args': { type: 'string', default: '--busy-poll 2000' },
  'flood-args': { type: 'string', default: '' },
  'flood-cpu': { type: 'string' },
  'sink-cpu': { type: 'string' },
  help: { type: 'boolean', default: false },
} as const
const parsed = (() => {
  try {
    return parseArgs({ options: OPTIONS })
  } catch (err) {
    process.stderr.write(`bench quic: ${(err as Error).message}\n${USAGE}`)
    return process.exit(2)
  }
})()
const opts = parsed.values
if (opts.help) {
  process.stderr.write(USAGE)
  process.exit(0)
}
const usage = (message: string): never => {
  process.stderr.write(`bench quic: ${message}\n${USAGE}`)
  process.exit(2)
}
const list = (s: string) => s.split(',').filter(Boolean)
const ints = (s: string, name: string, min: number) =>
  list(s).map((x) => (Number.isInteger(Number(x)) && Number(x) >= min ? Number(x) : usage(`--${name} takes integers ≥ ${min}`)))
const runs = Number(opts.runs)
const seconds = Number(opts.seconds)
if (!(Number.isInteger(runs) && runs >= 1 && seconds > 0)) usage('--runs takes an integer ≥ 1, --seconds a number > 0')
const ios = list(opts.io)
if (!ios.every((io) => io === 'xdp' || io === 'socket')) usage('--io takes xdp and/or socket')
const workerCounts = ints(opts.workers, 'workers', 1)
const sinkCounts = ints(opts.sinks, 'sinks', 1)
const rates = ints(opts.rate, 'rate', 0)
const quinnCsum = list(opts['quinn-tx-csum'])
if (!quinnCsum.every((x) => x === 'on' || x === 'off')) usage('--quinn-tx-csum takes on and/or off')
const words = (s: string): string[] => s.split(/\s+/).filter(Boolean)

const FLOOD_BIN = join(repoRoot, 'packages/quic/src/bin-quic-flood.ts')
const SINK_BIN = join(repoRoot, 'packages/quic/src/bin-quic-sink.ts')
const QUINN_BUILD = join(repoRoot, 'bench/quinn-client/build.sh')
const BASE_PORT = 8004
/** quic-sink's MAX_STREAMS grant (its default, or --max-streams in --sink-args): quinn keeps that many streams open */
const SINK_MAX_STREAMS = (() => {
  const sinkArgs = words(opts['sink-args'])
  const i = sinkArgs.findIndex((w) => w === '--max-streams' || w.startsWith('--max-streams='))
  if (i < 0) return 512
  const value = sinkArgs[i]!.includes('=') ? sinkArgs[i]!.split('=')[1] : sinkArgs[i + 1]
  return Number(value) > 0 ? Number(value) : usage('--sink-args: --max-streams takes a number > 0')
})()
const TX_SIZE = 235 // quic-flood's default mock transaction
const out = new JsonLines({ tool: 'bench-quic' })

/** The command, pinned to a CPU list with taskset when one is given. */
const pinned = ([cmd, argv]: [string, string[]], cpus: string | undefined): [string, string[]] =>
  cpus ? ['taskset', ['-c', cpus, cmd, ...argv]] : [cmd, argv]

/** Whether a kbx tool's --help lists an option (the bench runs against whatever this tree has). */
function toolHasOption(bin: string, option: string): boolean {
  const [cmd, argv] = nodeCommand(bin, ['--help'])
  const help = spawnSync(cmd, argv, { encoding: 'utf8', timeout: 60_000 })
  return new RegExp(`(^|\\s)${option}\\b`).test(`${help.stdout}\n${help.stderr}`)
}

/** Builds the quinn client; its path, or why it is not available. */
function buildQuinn(): { bin?: string; unavailable?: string } {
  process.stderr.write('bench quic: building bench/quinn-client (Debian cargo, librust-quinn-dev)…\n')
  const build = spawnSync('bash', [QUINN_BUILD], { encoding: 'utf8', timeout: 20 * 60_000 })
  const bin = build.stdout?.trim().split('\n').pop()
  if (build.status === 0 && bin) return { bin }
  const lines = (build.stderr ?? '').trim().split('\n')
  process.stderr.write(`bench quic: the quinn client could not be built:\n${lines.slice(-15).join('\n')}\n`)
  const why = lines.at(-1)?.replace(/^quinn-client build: /, '') || `exit ${build.status ?? build.signal}`
  return { unavailable: `quinn client not built (bash bench/quinn-client/build.sh: ${why.slice(0, 120)})` }
}

function planCases(workersOk: string | undefined, quinn: { unavailable?: string }): BenchCase[] {
  const cases: BenchCase[] = []
  const add = (c: Omit<BenchCase, 'key'>) => cases.push({ ...c, key: caseKey(c) })
  for (const io of ios as Sender[]) {
    for (const workers of workerCounts) {
      const unavailable = workers > 1 ? workersOk : undefined
      for (const sinks of workers === 1 ? sinkCounts : sinkCounts.filter((s) => s === 1))
        add({ sender: io, workers, sinks, rate: 0, ...(unavailable && { unavailable }) })
    }
    for (const rate of rates.filter((r) => r > 0)) add({ sender: io, workers: 1, sinks: 1, rate })
  }
  if (!opts['no-quinn'])
    for (const csum of quinnCsum)
      add({ sender: 'quinn', workers: 1, sinks: 1, rate: 0, txChecksum: csum === 'on', ...(quinn.unavailable && { unavailable: quinn.unavailable }) })
  return cases
}

/** A linked namespace with `queues` queues and its sinks on BASE_PORT, BASE_PORT+1, …, each with what senders counted acked for it. */
interface Bed {
  link: LinkedNamespace
  sinks: ToolRun[]
  ackedBySenders: number[]
}

async function startBed(net: TestNet, queues: number, sinks: number): Promise<Bed> {
  const link = net.addLinkedNamespace({ queues })
  const bed: Bed = { link, sinks: [], ackedBySenders: [] }
  for (let i = 0; i < sinks; i++) {
    const workers = queues > 1 ? ['--workers', String(queues)] : []
    const [cmd, argv] = pinned(
      nodeCommand(SINK_BIN, ['--listen', `${link.remote.ip}:${BASE_PORT + i}`, '--interval', '600', ...workers, ...words(opts['sink-args'])]),
      opts['sink-cpu'],
    )
    const sink = followTool(net.spawn(link.netns, cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] }))
    await waitUntil(`quic-sink :${BASE_PORT + i} to start`, () => sink.events.some((e) => e.event === 'start') || sink.child.exitCode !== null, 60_000)
    if (sink.child.exitCode !== null) throw new Error(`quic-sink did not start: ${sink.stderr().slice(-500)}`)
    bed.sinks.push(sink)
    bed.ackedBySenders.push(0)
  }
  return bed
}

/** Runs a sender to its end; its end event's data, or an Error with its stderr's tail. */
async function runToEnd(tool: ToolRun, what: string): Promise<Record<string, any>> {
  const timer = setTimeout(() => tool.child.kill('SIGKILL'), (seconds + 60) * 1000)
  const exit = await tool.exited
  clearTimeout(timer)
  const end = tool.events.find((e) => e.event === 'end')?.data
  if (exit.code !== 0 || !end) throw new Error(`${what} failed (exit ${exit.code ?? exit.signal}): ${tool.stderr().slice(-400)}`)
  return end
}

const sampleOf = (end: Record<string, any>): Sample => ({
  ackedPerSec: end['ackedPerSec'],
  acked: end['acked'],
  p50: end['ackLatencyUs']?.p50 ?? 0,
  p90: end['ackLatencyUs']?.p90 ?? 0,
  p99: end['ackLatencyUs']?.p99 ?? 0,
})

/**
 * Runs a sender to its end and measures the cores it and the sinks kept busy from 30 % to 80 % of its
 * sending time (counted from its start event, or from its spawn when it has none).
 */
async function runMeasured(tool: ToolRun, what: string, sinks: readonly ToolRun[], hasStartEvent: boolean): Promise<Sample> {
  if (hasStartEvent) await waitUntil(`${what} to start`, () => tool.events.some((e) => e.event === 'start') || tool.child.exitCode !== null, 60_000)
  const t0 = Date.now()
  const pids = [tool.child.pid!, ...sinks.map((s) => s.child.pid!)]
  const [end, cores] = await Promise.all([runToEnd(tool, what), coresBusy(pids, t0 + seconds * 300, t0 + seconds * 800)])
  const sample = sampleOf(end)
  out.emit('sender', { what, handshakes: end['handshakes'], closes: end['closes'], seconds: end['seconds'] })
  const [sender, ...sinkCores] = cores
  if (sender === undefined || sender <= 0 || sinkCores.some((c) => c === undefined)) return sample
  const sinkSum = sinkCores.reduce((a: number, b) => a + b!, 0)
  return { ...sample, senderCores: sender, sinkCores: Math.round(sinkSum * 100) / 100, ackedPerCpuSec: Math.round(sample.ackedPerSec / sender) }
}

async function runFloodCase(net: TestNet, bed: Bed, c: BenchCase): Promise<Sample> {
  const servers = Array.from({ length: c.sinks }, (_, i) => `${bed.link.remote.ip}:${BASE_PORT + i}`)
  const [cmd, argv] = pinned(
    nodeCommand(FLOOD_BIN, [
      '--iface', bed.link.local.name, ...servers.flatMap((s) => ['--server', s]), ...(c.sinks > 1 ? ['--fanout', 'all'] : []),
      '--io', c.sender,
      // each worker has its own connections: at least one per worker
      ...(c.workers > 1 ? ['--workers', String(c.workers), '--connections', String(c.workers)] : []),
      '--rate', String(c.rate), '--duration', String(seconds), '--interval', '600', '--tx-size', String(TX_SIZE),
      ...words(opts['flood-args']),
    ]),
    opts['flood-cpu'],
  )
  const tool = followTool(net.spawn(null, cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] }))
  const sample = await runMeasured(tool, `quic-flood (${c.key})`, bed.sinks.slice(0, c.sinks), true)
  const end = tool.events.find((e) => e.event === 'end')!.data
  const perServer: { server: string; acked: number }[] = end['servers'] ?? [{ server: servers[0], acked: end['acked'] }]
  for (const s of perServer) {
    const i = servers.indexOf(s.server)
    if (i >= 0) bed.ackedBySenders[i]! += s.acked
  }
  return sample
}

async function runQuinnCase(net: TestNet, bed: Bed, c: BenchCase, bin: string): Promise<Sample> {
  const iface = bed.link.local.name
  if (c.txChecksum) net.run(null, 'ethtool', ['-K', iface, 'tx', 'on'])
  try {
    const [cmd, argv] = pinned(
      [bin, ['--server', `${bed.link.remote.ip}:${BASE_PORT}`, '--duration', String(seconds), '--streams', String(SINK_MAX_STREAMS),
        '--tx-size', String(TX_SIZE), ...words(opts['quinn-args'])]],
      opts['flood-cpu'],
    )
    const sample = await runMeasured(followTool(net.spawn(null, cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] })), `quinn-client (${c.key})`, bed.sinks.slice(0, 1), false)
    bed.ackedBySenders[0]! += sample.acked
    return sample
  } finally {
    if (c.txChecksum) net.run(null, 'ethtool', ['-K', iface, 'tx', 'off'])
  }
}

/** Stops a bed's sinks; per sink, its transaction count beside what the senders counted acked. */
async function stopBed(bed: Bed, queues: number) {
  const checks = []
  for (const [i, sink] of bed.sinks.entries()) {
    sink.child.kill('SIGINT')
    await sink.exited
    const transactions = sink.events.find((e) => e.event === 'end')?.data['transactions'] as number | undefined
    checks.push({ queues, sink: BASE_PORT + i, transactions: transactions ?? null, ackedBySenders: bed.ackedBySenders[i], equal: transactions === bed.ackedBySenders[i] })
  }
  return checks
}

async function main(): Promise<number> {
  const floodWorkers = toolHasOption(FLOOD_BIN, '--workers')
  const sinkWorkers = toolHasOption(SINK_BIN, '--workers')
  const workersOk = floodWorkers && sinkWorkers ? undefined
    : `--workers not in this tree's ${[!floodWorkers && 'quic-flood', !sinkWorkers && 'quic-sink'].filter(Boolean).join(' and ')}`
  const quinn = opts['no-quinn'] ? {} : buildQuinn()
  const cases = planCases(workersOk, quinn)
  const samples = new Map<string, Sample[]>()
  const failures: { key: string; run: number; error: string }[] = []
  const net = new TestNet()
  process.on('SIGINT', () => {
    net.destroy()
    process.exit(130)
  })
  const beds = new Map<number, Bed>()
  const sinkChecks = []
  try {
    for (let run = 0; run < runs; run++) {
      for (const c of cases.filter((c) => !c.unavailable)) {
        let bed = beds.get(c.workers)
        if (!bed) {
          const sinks = Math.max(...cases.filter((x) => x.workers === c.workers && !x.unavailable).map((x) => x.sinks))
          bed = await startBed(net, c.workers, sinks)
          beds.set(c.workers, bed)
        }
        try {
          const sample = c.sender === 'quinn' ? await runQuinnCase(net, bed, c, quinn.bin!) : await runFloodCase(net, bed, c)
          ;(samples.get(c.key) ?? samples.set(c.key, []).get(c.key)!).push(sample)
          out.emit('run', { case: c.key, run, ...sample })
        } catch (err) {
          const error = (err as Error).message
          failures.push({ key: c.key, run, error })
          out.emit('run', { case: c.key, run, error })
          process.stderr.write(`bench quic: ${c.key} run ${run}: ${error}\n`)
        }
      }
    }
    for (const [queues, bed] of beds) sinkChecks.push(...(await stopBed(bed, queues)))
  } finally {
    net.destroy()
  }
  const summaries = summarize(cases, samples)
  const goal = verdict(summaries, cases)
  out.emit('end', {
    runs, seconds, cases: summaries, ratiosOverQuinn: goal.ratios, perCpuRatiosOverQuinn: goal.perCpuRatios, goalMet: goal.met, best: goal.best,
    sinkChecks, failures,
  })
  process.stderr.write(`\n${formatTable(summaries)}  ${goal.line}\n`)
  for (const check of sinkChecks.filter((s) => !s.equal))
    process.stderr.write(`  sink :${check.sink} (${check.queues} queue bed) counted ${check.transactions}, senders counted ${check.ackedBySenders} acked\n`)
  return sinkChecks.every((s) => s.equal) ? 0 : 1
}

process.exitCode = await main()
