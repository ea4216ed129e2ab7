/**
 * `pnpm bench ab`: the A/B arbitrator's costs.
 *
 * (1) xdp: per-packet cost of ab_arbitrate.bpf.c through BPF_PROG_TEST_RUN (repeat), for the unique
 *     (first-copy) path and the duplicate path, beside the seed's design built as a reference program
 *     (bpf/ab_lru_ref.bpf.c: LRU hash lookup + update by id). Goals: ≤ 100 ns unique, ≤ 60 ns duplicate.
 *     The unique path uses the program's bench_fresh_sequence knob: every repetition gets a new number.
 * (2) pps: delivered unique packets/s with both lines fed by ab-feed as fast as it can (two veth pairs
 *     from a fresh namespace), for ab-arbitrate, a bare C AF_XDP loop without arbitration on the same
 *     lines (native/build/ab_baseline xsk: it counts both copies), and a kernel-socket arbitrator in C
 *     (ab_baseline udp: two UDP sockets, recvmmsg, the same first-copy logic). Medians of --runs runs.
 *     ab-feed is TypeScript: when it is the bottleneck every receiver shows its rate (ratios ≈ 1).
 *
 * JSON lines on stdout (`run` per measurement, `end` with medians and ratios), a table on stderr.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { BpfObject, raiseMemlockLimit } from '@kbx/bpf'
import { bpfObjectPath, repoRoot } from '@kbx/ffi'
import { TestNet, nodeCommand } from '@kbx/testbed'
import { buildUdpFrame } from '@kbx/net'
import { JsonLines } from '@kbx/stats'
import { encodeFeedPayload, loadArbitratorProgram } from '@kbx/ab'

const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    repeat: { type: 'string', default: '1000000' },
    cpu: { type: 'string', default: '0' },
    only: { type: 'string' },
    count: { type: 'string', default: '300000' },
    help: { type: 'boolean', default: false },
  },
})
if (opts.help) {
  process.stderr.write('usage: pnpm bench ab [--runs 5] [--repeat 1000000] [--cpu 0] [--only xdp|pps] [--count 300000 (feed packets per line, part 2)]\n')
  process.exit(0)
}
const runs = Number(opts.runs)
const repeat = Number(opts.repeat)
const cpu = Number(opts.cpu)
const json = new JsonLines({ tool: 'bench-ab' })
raiseMemlockLimit()

const frameWith = (sequence: bigint) =>
  buildUdpFrame({
    srcMac: '02:00:00:00:00:01',
    dstMac: '02:00:00:00:00:02',
    srcIp: '10.0.1.1',
    dstIp: '10.0.1.2',
    srcPort: 40000,
    dstPort: 8080,
    payload: encodeFeedPayload('optiq', 0, sequence),
  })
// Skew is sampled on one number in 8 (both copies): 9 is not sampled, 8 is.
const unsampled = frameWith(9n)
const sampled = frameWith(8n)

function loadLru(fresh: boolean): BpfObject {
  const obj = BpfObject.open(bpfObjectPath('ab_lru_ref'))
  if (fresh) obj.setRodata('bench_fresh_sequence', 1)
  obj.load()
  return obj
}

type Variant = { name: string; open: () => BpfObject; prime: boolean; frame: Buffer }
const arbitrator = (fresh: boolean) => () => loadArbitratorProgram({ format: 'optiq', portMin: 8080, portMax: 8080, lineBIfindex: 0, benchFreshSequence: fresh })
const variants: Variant[] = [
  // Fresh numbers count up from 0: one in 8 of them is sampled, as on a real feed.
  { name: 'ab_arbitrate unique', open: arbitrator(true), prime: false, frame: unsampled },
  { name: 'ab_arbitrate duplicate', open: arbitrator(false), prime: true, frame: unsampled },
  { name: 'ab_arbitrate dup (sampled)', open: arbitrator(false), prime: true, frame: sampled },
  { name: 'lru reference unique', open: () => loadLru(true), prime: false, frame: unsampled },
  { name: 'lru reference duplicate', open: () => loadLru(false), prime: true, frame: unsampled },
]

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}

const results: Record<string, number> = {}
for (const v of opts.only === 'pps' ? [] : variants) {
  const samples: number[] = []
  for (let run = 0; run < runs; run++) {
    const obj = v.open()
    try {
      const prog = obj.program()
      if (v.prime) prog.testRun({ data: v.frame, cpu })
      const r = prog.testRun({ data: v.frame, repeat, cpu })
      samples.push(r.durationNs)
      json.emit('run', { variant: v.name, run, repeat, nsPerPacket: r.durationNs, verdict: r.verdict })
    } finally {
      obj.close()
    }
  }
  results[v.name] = median(samples)
}

const ratio = (a: string, b: string) =>
  results[a] && results[b] ? Math.round((results[a]! / results[b]!) * 100) / 100 : null

// (2) delivered pps.
async function readyOf(child: ChildProcess, marker: (line: string) => boolean, lines: string[]): Promise<void> {
  const deadline = Date.now() + 30000
  while (!lines.some(marker)) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`receiver did not start: ${lines.join('\n')}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

function capture(child: ChildProcess): { out: string[]; err: string[]; exited: Promise<void> } {
  const out: string[] = []
  const err: string[] = []
  child.stdout?.setEncoding('utf8').on('data', (c: string) => out.push(...c.split('\n').filter(Boolean)))
  child.stderr?.setEncoding('utf8').on('data', (c: string) => err.push(...c.split('\n').filter(Boolean)))
  return { out, err, exited: new Promise((r) => child.once('exit', () => r())) }
}

const pps: Record<string, number[]> = { 'ab-arbitrate': [], 'bare-xsk': [], 'kernel-udp': [] }
const baseline = join(repoRoot, 'native/build/ab_baseline')
if (opts.only !== 'xdp') {
  if (!existsSync(baseline)) {
    process.stderr.write(`bench ab: ${baseline} is missing: run \`make -C native\`\n`)
    process.exit(1)
  }
  const net = new TestNet()
  const cleanup = () => net.destroy()
  process.once('SIGINT', cleanup)
  try {
    const ns = net.addNamespace()
    const a = net.addVethPair({ b: { netns: ns } })
    const b = net.addVethPair({ b: { netns: ns } })
    const feedArgs = [a.b.name, b.b.name, '--dst-a', a.a.ip!, '--dst-b', b.a.ip!, '--count', String(Number(opts.count)), '--rate', '0', '--no-withheld-list', '--interval', '100']
    for (let run = 0; run < runs; run++) {
      for (const impl of Object.keys(pps)) {
        let child: ChildProcess
        if (impl === 'ab-arbitrate') {
          const [cmd, argv] = nodeCommand(join(repoRoot, 'packages/ab/src/bin-ab-arbitrate.ts'), [a.a.name, b.a.name, '--interval', '0.25'])
          child = net.spawn(null, cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] })
        } else if (impl === 'bare-xsk') {
          child = net.spawn(null, baseline, ['xsk', a.a.name, b.a.name, '30'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, KBX_BPF_DIR: join(repoRoot, 'bpf/build') } })
        } else {
          child = net.spawn(null, baseline, ['udp', a.a.ip!, b.a.ip!, '8080', '30'], { stdio: ['ignore', 'pipe', 'pipe'] })
        }
        const io = capture(child)
        await readyOf(child, (l) => l.includes('"event":"start"') || l.includes('ready'), impl === 'ab-arbitrate' ? io.out : io.err)
        const [fcmd, fargv] = nodeCommand(join(repoRoot, 'packages/ab/src/bin-ab-feed.ts'), feedArgs)
        const feeder = net.spawn(ns, fcmd, fargv, { stdio: ['ignore', 'ignore', 'pipe'] })
        await new Promise((r) => feeder.once('exit', r))
        if (impl === 'ab-arbitrate') {
          await new Promise((r) => setTimeout(r, 1000))
          child.kill('SIGINT')
        }
        await io.exited
        let value = 0
        if (impl === 'ab-arbitrate') {
          // Interior intervals of the busy stretch (the first and last are partial).
          const rates = io.out.map((l) => JSON.parse(l) as { event: string; data: { pps?: number } }).filter((e) => e.event === 'interval').map((e) => e.data.pps ?? 0)
          const busy = rates.filter((r) => r > 0).slice(1, -1)
          value = busy.length ? median(busy) : Math.max(0, ...rates)
        } else {
          value = (JSON.parse(io.out.at(-1) ?? '{}') as { pps?: number }).pps ?? 0
        }
        pps[impl]!.push(value)
        json.emit('run', { part: 'pps', impl, run, pps: value })
      }
    }
  } finally {
    cleanup()
  }
}
const ppsMedians = Object.fromEntries(Object.entries(pps).filter(([, v]) => v.length).map(([k, v]) => [k, median(v)]))
const ppsRatio = (k: string) => (ppsMedians['ab-arbitrate'] && ppsMedians[k] ? Math.round((ppsMedians['ab-arbitrate'] / ppsMedians[k]) * 100) / 100 : null)

const end = {
  nsPerPacket: results,
  goals: { uniqueNs: 100, duplicateNs: 60, vsBareXsk: 0.9, vsKernelUdp: 1.5 },
  uniqueVsLru: ratio('ab_arbitrate unique', 'lru reference unique'),
  duplicateVsLru: ratio('ab_arbitrate duplicate', 'lru reference duplicate'),
  duplicateMeanAt1in8Ns:
    results['ab_arbitrate duplicate'] && results['ab_arbitrate dup (sampled)']
      ? Math.round((results['ab_arbitrate duplicate'] * 7 + results['ab_arbitrate dup (sampled)']) / 8)
      : null,
  deliveredPps: ppsMedians,
  // bare-xsk receives both copies: half its packets/s is the unique rate the lines carried.
  ppsVsBareXsk: ppsRatio('bare-xsk'),
  ppsVsBareXskUnique: ppsMedians['ab-arbitrate'] && ppsMedians['bare-xsk'] ? Math.round((ppsMedians['ab-arbitrate'] / (ppsMedians['bare-xsk'] / 2)) * 100) / 100 : null,
  ppsVsKernelUdp: ppsRatio('kernel-udp'),
  note: 'shared 2-core VM: noisy; bpf_ktime_get_ns costs ~30 ns here (kvm-clock); bare-xsk counts both copies, the others unique packets; ab-feed (TypeScript) may be the bottleneck',
}
json.emit('end', end)
if (Object.keys(results).length) {
  process.stderr.write(`\nper-packet XDP cost (median of ${runs} runs × ${repeat}, CPU ${cpu}):\n`)
  for (const [name, ns] of Object.entries(results)) process.stderr.write(`  ${name.padEnd(26)} ${String(ns).padStart(5)} ns\n`)
  process.stderr.write(`  arbitrate / LRU: unique ${end.uniqueVsLru}×, duplicate ${end.duplicateVsLru}×\n`)
}
if (Object.keys(ppsMedians).length) {
  process.stderr.write(`\ndelivered packets/s (median of ${runs} runs, ${opts.count} packets per line):\n`)
  for (const [name, v] of Object.entries(ppsMedians)) process.stderr.write(`  ${name.padEnd(14)} ${String(v).padStart(9)}\n`)
  process.stderr.write(`  ab-arbitrate / bare AF_XDP: ${end.ppsVsBareXsk}× of its packets, ${end.ppsVsBareXskUnique}× of its unique rate (half: it gets both copies)\n`)
  process.stderr.write(`  ab-arbitrate / kernel-socket arbitrator: ${end.ppsVsKernelUdp}×\n`)
}
