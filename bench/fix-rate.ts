/**
 * `pnpm bench fix-rate`: fix-tcp paced (--rate) against fix-acceptor (TypeScript, kernel TCP) and QuickFIX
 * (native/build/fix-quickfix-acceptor) on a fresh linked namespace, over --io xdp and --io socket, at 100,
 * 1000, 5000 and 20000 orders/s and at the highest rate where every order is acked; beside the floors
 * measured in the same run between the same namespaces: a UDP ping-pong (native/build/udp_pingpong) at the
 * same rate with both ends blocking, and with both ends spinning. Two phases per acceptor: both ends
 * sleeping (fix-tcp and the acceptor as they come), and both ends polling (fix-tcp --busy-poll, the
 * acceptor --busy-poll). Medians of --runs
 * runs of --seconds each; a table and the goal checks on stderr, JSON lines on stdout (`run`, `end`).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { repoRoot } from '@kbx/ffi'
import { JsonLines, median } from '@kbx/stats'
import { TestNet, followTool, nodeCommand, waitUntil } from '@kbx/testbed'
import type { ToolRun } from '@kbx/testbed'

const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '2' },
    rates: { type: 'string', default: '100,1000,5000,20000' },
    acceptors: { type: 'string', default: 'kbx,quickfix' },
    'max-rates': { type: 'string', default: '30000,45000,65000,90000' },
    phases: { type: 'string', default: 'sleeping,polling' },
    nice: { type: 'string', default: '0' },
    help: { type: 'boolean', default: false },
  },
})
const USAGE = 'usage: pnpm bench fix-rate [--runs 3] [--seconds 2] [--rates 100,1000,5000,20000] [--acceptors kbx,quickfix] [--max-rates 30000,45000,65000,90000] [--phases sleeping,polling] [--nice=N]\n'
if (opts.help) {
  process.stderr.write(USAGE)
  process.exit(0)
}
const intList = (s: string) => s.split(',').filter((x) => x !== '').map(Number)
const runs = Number(opts.runs)
const seconds = Number(opts.seconds)
const rates = intList(opts.rates)
const maxRates = intList(opts['max-rates'])
const acceptors = opts.acceptors.split(',') as Acceptor[]
const phases = opts.phases.split(',') as Phase[]
const nice = Number(opts.nice)
if (!(Number.isInteger(nice) && nice >= -20 && nice <= 19 && phases.every((p) => p === 'sleeping' || p === 'polling') && Number.isInteger(runs) && runs >= 1 && seconds > 0 && [...rates, ...maxRates].every((r) => Number.isInteger(r) && r >= 1) && rates.length > 0 && acceptors.every((a) => a === 'kbx' || a === 'quickfix'))) {
  process.stderr.write(`bench fix-rate: bad options\n${USAGE}`)
  process.exit(2)
}

type Acceptor = 'kbx' | 'quickfix'
type Io = 'xdp' | 'socket'
type Phase = 'sleeping' | 'polling'
interface Percentiles {
  p50: number
  p99: number
}
interface Breakdown {
  decidedToWire: number
  wireToRx: number
  rxToMatched: number
}
interface FixSample {
  acked: number
  sent: number
  ordersPerSec: number
  rtt: Percentiles
  /** p50 of each stage, µs. */
  breakdown: Breakdown
}

const fixTcpBin = join(repoRoot, 'packages/fix/src/bin-fix-tcp.ts')
const acceptorBin = join(repoRoot, 'packages/fix/src/bin-fix-acceptor.ts')
const quickfixBin = join(repoRoot, 'native/build/fix-quickfix-acceptor')
const pingPongBin = join(repoRoot, 'native/build/udp_pingpong')
const PORT = 9878
const UDP_PORT = 9900
const out = new JsonLines({ tool: 'bench-fix-rate' })
/** Every measured process under `nice -n N` (as root, N < 0 puts the bench ahead of the machine's other load). */
const niced = (cmd: string, argv: string[]): [string, string[]] => (nice === 0 ? [cmd, argv] : ['nice', ['-n', String(nice), cmd, ...argv]])
const ordersAt = (rate: number) => Math.max(200, Math.round(rate * seconds))

const dir = mkdtempSync(join(tmpdir(), 'kbx-bench-fix-rate-'))
const net = new TestNet()
const cleanup = () => {
  net.destroy()
  rmSync(dir, { recursive: true, force: true })
}
process.on('SIGINT', () => {
  cleanup()
  process.exit(130)
})

const medianOf = (ps: Percentiles[]): Percentiles => ({ p50: median(ps.map((p) => p.p50)), p99: median(ps.map((p) => p.p99)) })

try {
  const { netns, local, remote } = net.addLinkedNamespace()

  async function startAcceptor(kind: Acceptor, busy: boolean): Promise<ToolRun> {
    const [cmd, argv] =
      kind === 'kbx'
        ? nodeCommand(acceptorBin, ['--listen', `${remote.ip}:${PORT}`, '--interval', '0', '--log-level', 'warn', ...(busy ? ['--busy-poll'] : [])])
        : [quickfixBin, ['--port', String(PORT), '--store', join(dir, `qf-store-${Date.now()}`), ...(busy ? ['--busy-poll'] : [])]]
    const acceptor = followTool(net.spawn(netns, ...niced(cmd, argv), { stdio: ['ignore', 'pipe', 'pipe'] }))
    await waitUntil(`the ${kind} acceptor to listen`, () => acceptor.events.some((e) => e.event === 'start'))
    return acceptor
  }

  async function stop(run: ToolRun): Promise<Record<string, any> | undefined> {
    run.child.kill('SIGINT')
    await run.exited
    return run.events.find((e) => e.event === 'end')?.data as Record<string, any> | undefined
  }

  /** One fix-tcp run; rate undefined: one order at a time. */
  async function fixRun(io: Io, rate: number | undefined, busy: boolean, orders: number): Promise<FixSample> {
    const [cmd, argv] = nodeCommand(fixTcpBin, [
      '--iface', local.name, '--connect', `${remote.ip}:${PORT}`, '--io', io, ...(busy ? ['--busy-poll'] : []),
      '--orders', String(orders), ...(rate === undefined ? [] : ['--rate', String(rate)]), '--order-timeout', '10',
      '--reset', '--store', join(dir, 'seq.json'), '--interval', '60', '--log-level', 'warn', '--no-reconnect',
    ])
    const run = followTool(net.spawn(null, ...niced(cmd, argv), { stdio: ['ignore', 'pipe', 'pipe'] }))
    const exit = await run.exited
    const end = run.events.find((e) => e.event === 'end')?.data as Record<string, any> | undefined
    if (exit.code !== 0 || !end) throw new Error(`fix-tcp --io ${io} --rate ${rate} failed: ${run.stderr().slice(-500)}`)
    const b = end['breakdownUs']
    return {
      acked: end['orders'].acked,
      sent: end['orders'].sent,
      ordersPerSec: end['ordersPerSec'],
      rtt: { p50: end['latencyUs'].p50, p99: end['latencyUs'].p99 },
      breakdown: { decidedToWire: b.decidedToWire.p50, wireToRx: b.wireToRx.p50, rxToMatched: b.rxToMatched.p50 },
    }
  }

  async function pingPong(rate: number, spin: boolean): Promise<Percentiles> {
    const flag = spin ? ['--spin'] : []
    const echo = followTool(net.spawn(netns, ...niced(pingPongBin, ['echo', `${remote.ip}:${UDP_PORT}`, ...flag]), { stdio: ['ignore', 'pipe', 'pipe'] }))
    await waitUntil('the UDP echo to start', () => echo.events.some((e) => e.event === 'start'))
    const ping = followTool(net.spawn(null, ...niced(pingPongBin, ['ping', `${remote.ip}:${UDP_PORT}`, '--rate', String(rate), '--count', String(ordersAt(rate)), ...flag]), { stdio: ['ignore', 'pipe', 'pipe'] }))
    await ping.exited
    await stop(echo)
    const end = ping.events.find((e) => e.event === 'end')?.data as Record<string, any> | undefined
    if (!end) throw new Error(`udp_pingpong failed: ${ping.stderr()}`)
    return { p50: end['rttUs'].p50, p99: end['rttUs'].p99 }
  }

  // floors: the same rates, both ends blocking and both ends spinning
  const floors: Record<'blocking' | 'spinning', Record<number, Percentiles>> = { blocking: {}, spinning: {} }
  for (const mode of ['blocking', 'spinning'] as const) {
    for (const rate of rates) {
      const samples: Percentiles[] = []
      for (let r = 0; r < runs; r++) samples.push(await pingPong(rate, mode === 'spinning'))
      floors[mode][rate] = medianOf(samples)
      out.emit('run', { floor: mode, rate, ...floors[mode][rate] })
    }
  }

  type Cell = { rtt: Percentiles; ordersPerSec: number; allAcked: boolean; breakdown: Breakdown }
  const table: Record<string, Cell> = {}
  const key = (a: Acceptor, phase: Phase, io: Io, rate: number | 'one') => `${a}/${phase}/${io}/${rate}`
  const capacity: Record<string, number> = {}
  /** The acceptor's own time p50 per phase and rate (µs), inside wire → RX: fix-acceptor's read → write, QuickFIX's fromApp → ack written. */
  const acceptorReadToWrite: Record<string, number> = {}

  const cellOf = (samples: FixSample[], rate: number | undefined): Cell => ({
    rtt: medianOf(samples.map((s) => s.rtt)),
    ordersPerSec: median(samples.map((s) => s.ordersPerSec)),
    allAcked: samples.every((s) => s.acked === s.sent && (rate === undefined || s.ordersPerSec >= rate * 0.9)),
    breakdown: {
      decidedToWire: median(samples.map((s) => s.breakdown.decidedToWire)),
      wireToRx: median(samples.map((s) => s.breakdown.wireToRx)),
      rxToMatched: median(samples.map((s) => s.breakdown.rxToMatched)),
    },
  })

  for (const a of acceptors) {
    for (const phase of phases) {
      const busy = phase === 'polling'
      for (const rate of rates) {
        // a fresh acceptor per rate: its read → write covers this rate's orders only
        const acceptor = await startAcceptor(a, busy)
        for (const io of ['xdp', 'socket'] as const) {
          const samples: FixSample[] = []
          for (let r = 0; r < runs; r++) {
            const s = await fixRun(io, rate, busy, ordersAt(rate))
            samples.push(s)
            out.emit('run', { acceptor: a, phase, io, rate, run: r, ...s })
          }
          table[key(a, phase, io, rate)] = cellOf(samples, rate)
        }
        const end = await stop(acceptor)
        const own = end?.['readToWriteUs'] ?? end?.['appToAckWrittenUs']
        if (own !== undefined) acceptorReadToWrite[`${a}/${phase}/${rate}`] = own.p50
      }
      const acceptor = await startAcceptor(a, busy)
      if (busy) {
        const samples: FixSample[] = []
        for (let r = 0; r < runs; r++) samples.push(await fixRun('xdp', undefined, true, 2000))
        table[key(a, phase, 'xdp', 'one')] = cellOf(samples, undefined)
      } else {
        // the highest rate with every order acked (and at least 90% of it achieved), one run per step
        for (const io of ['xdp', 'socket'] as const) {
          let best = 0
          for (const rate of [...rates.filter((r) => table[key(a, phase, io, r)]!.allAcked)].concat(maxRates)) {
            if (rate <= best) continue
            const s = await fixRun(io, rate, false, ordersAt(rate)).catch(() => undefined)
            out.emit('run', { acceptor: a, phase, io, capacityTry: rate, ...(s ?? { failed: true }) })
            if (s === undefined || s.acked !== s.sent || s.ordersPerSec < rate * 0.9) break
            best = rate
          }
          capacity[`${a}/${io}`] = best
        }
      }
      await stop(acceptor)
    }
  }

  // goal checks
  const goals: { goal: string; ok: boolean; detail: string }[] = []
  for (const a of acceptors) {
    const cap = Math.min(capacity[`${a}/xdp`] ?? 0, capacity[`${a}/socket`] ?? 0)
    for (const phase of phases) {
      for (const rate of rates.filter((r) => r <= cap || !phases.includes('sleeping'))) {
        const x = table[key(a, phase, 'xdp', rate)]!
        const s = table[key(a, phase, 'socket', rate)]!
        goals.push({ goal: `${a} ${phase} ${rate}/s: xdp p50 and p99 below socket's`, ok: x.rtt.p50 < s.rtt.p50 && x.rtt.p99 < s.rtt.p99, detail: `p50 ${x.rtt.p50} vs ${s.rtt.p50}, p99 ${x.rtt.p99} vs ${s.rtt.p99}` })
      }
    }
    for (const rate of phases.includes('sleeping') ? rates : []) {
      const x = table[key(a, 'sleeping', 'xdp', rate)]!
      const floor = floors.blocking[rate]!
      goals.push({ goal: `${a} sleeping ${rate}/s: xdp p50 ≤ 1.5× blocking ping-pong p50`, ok: x.rtt.p50 <= 1.5 * floor.p50, detail: `${x.rtt.p50} vs 1.5 × ${floor.p50} = ${(1.5 * floor.p50).toFixed(1)}` })
    }
    const one = table[key(a, 'polling', 'xdp', 'one')]
    for (const rate of one === undefined ? [] : rates) {
      const x = table[key(a, 'polling', 'xdp', rate)]!
      goals.push({ goal: `${a} polling ${rate}/s: xdp p50 ≤ 1.5× its one-at-a-time p50`, ok: x.rtt.p50 <= 1.5 * one!.rtt.p50, detail: `${x.rtt.p50} vs 1.5 × ${one!.rtt.p50} = ${(1.5 * one!.rtt.p50).toFixed(1)}` })
    }
  }
  out.emit('end', { runs, seconds, rates, nice, loadAverage: loadavg(), floors, table, capacity, acceptorReadToWriteP50Us: acceptorReadToWrite, goals })

  const w = (s: string) => process.stderr.write(s)
  const f = (n: number | undefined) => (n === undefined ? '-' : n.toFixed(1)).padStart(8)
  w(`\n  load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}${nice === 0 ? '' : `, measured processes at nice ${nice}`}\n`)
  w(`  fix-tcp --rate, medians of ${runs} runs × ${seconds} s (µs; bd = p50 of decided→wire / wire→RX / RX→matched)\n`)
  w(`  ${'acceptor/phase/rate'.padEnd(26)} ${'xdp p50'.padStart(8)} ${'xdp p99'.padStart(8)} ${'sock p50'.padStart(8)} ${'sock p99'.padStart(8)} ${'floor p50'.padStart(9)}   xdp bd                 socket bd\n`)
  for (const a of acceptors) {
    for (const phase of phases) {
      for (const rate of rates) {
        const x = table[key(a, phase, 'xdp', rate)]!
        const s = table[key(a, phase, 'socket', rate)]!
        const floor = (phase === 'sleeping' ? floors.blocking : floors.spinning)[rate]!
        const bd = (c: Cell) => `${c.breakdown.decidedToWire.toFixed(0)}/${c.breakdown.wireToRx.toFixed(0)}/${c.breakdown.rxToMatched.toFixed(0)}${c.allAcked ? '' : ' (!acked)'}`.padEnd(22)
        w(`  ${`${a}/${phase}/${rate}`.padEnd(26)} ${f(x.rtt.p50)} ${f(x.rtt.p99)} ${f(s.rtt.p50)} ${f(s.rtt.p99)} ${f(floor.p50).padStart(9)}   ${bd(x)} ${bd(s)}\n`)
      }
    }
    const one = table[key(a, 'polling', 'xdp', 'one')]
    if (one !== undefined) w(`  ${`${a} xdp one at a time (polling)`.padEnd(26)} ${f(one.rtt.p50)} ${f(one.rtt.p99)}\n`)
    w(`  ${a} capacity (every order acked, ≥90% of the rate): xdp ${capacity[`${a}/xdp`]}/s, socket ${capacity[`${a}/socket`]}/s\n`)
  }
  w(`  acceptor's own time p50 µs (fix-acceptor read→write, QuickFIX fromApp→ack written): ${JSON.stringify(acceptorReadToWrite)}\n  goals:\n`)
  for (const g of goals) w(`    ${g.ok ? 'met    ' : 'NOT met'} ${g.goal} (${g.detail})\n`)
} finally {
  cleanup()
}
