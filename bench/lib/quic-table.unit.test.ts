import t from 'tap'
import { caseKey, caseLabel, formatTable, medianSample, summarize, verdict } from './quic-table.js'
import type { BenchCase, Sample } from './quic-table.js'
import { cpuSeconds, cpuSecondsFromStat } from './proc-cpu.js'

const sample = (ackedPerSec: number, p50 = 100, senderCores?: number): Sample => ({
  ackedPerSec, acked: ackedPerSec * 5, p50, p90: p50 * 2, p99: p50 * 4,
  ...(senderCores !== undefined && { senderCores, sinkCores: 1, ackedPerCpuSec: ackedPerSec / senderCores }),
})
const make = (c: Omit<BenchCase, 'key'>): BenchCase => ({ ...c, key: caseKey(c) })

t.test('case keys and labels', async (t) => {
  t.equal(caseKey({ sender: 'xdp', workers: 2, sinks: 4, rate: 0 }), 'xdp-w2-s4')
  t.equal(caseKey({ sender: 'socket', workers: 1, sinks: 1, rate: 1000 }), 'socket-w1-s1@1k')
  t.equal(caseKey({ sender: 'quinn', workers: 1, sinks: 1, rate: 0, txChecksum: false }), 'quinn-s1-csumoff')
  t.equal(caseKey({ sender: 'quinn', workers: 1, sinks: 1, rate: 0, txChecksum: true }), 'quinn-s1')
  t.equal(caseLabel(make({ sender: 'xdp', workers: 1, sinks: 2, rate: 0 })), 'xdp    1 worker, 2 sinks')
  t.equal(caseLabel(make({ sender: 'quinn', workers: 1, sinks: 1, rate: 0, txChecksum: false })), 'quinn (tx csum off), 1 sink')
})

t.test('medians per field, odd and even run counts', async (t) => {
  t.same(medianSample([sample(300, 30), sample(100, 10), sample(200, 20)]), { ackedPerSec: 200, acked: 1000, p50: 20, p90: 40, p99: 80 })
  t.equal(medianSample([sample(100), sample(201)]).ackedPerSec, 151) // mean of the middle two, rounded
  t.same(medianSample([sample(100, 10, 0.5), sample(300, 10), sample(200, 10, 1)]), {
    ackedPerSec: 200, acked: 1000, p50: 10, p90: 20, p99: 40, senderCores: 0.75, sinkCores: 1, ackedPerCpuSec: 200,
  }, 'CPU fields: median of the runs that have them')
})

t.test('summaries, the table and the goal', async (t) => {
  const cases = [
    make({ sender: 'xdp', workers: 1, sinks: 1, rate: 0 }),
    make({ sender: 'xdp', workers: 2, sinks: 1, rate: 0, unavailable: '--workers not in this tree' }),
    make({ sender: 'socket', workers: 1, sinks: 1, rate: 0 }),
    make({ sender: 'xdp', workers: 1, sinks: 2, rate: 0 }),
    make({ sender: 'quinn', workers: 1, sinks: 1, rate: 0, txChecksum: true }),
    make({ sender: 'quinn', workers: 1, sinks: 1, rate: 0, txChecksum: false }),
  ]
  const samples = new Map([
    ['xdp-w1-s1', [sample(1_500_000, 100, 1), sample(1_100_000, 100, 1), sample(1_300_000, 100, 1)]],
    ['socket-w1-s1', [sample(900_000)]],
    ['xdp-w1-s2', [sample(2_000_000)]], // fan-out is not compared with quinn
    ['quinn-s1', [sample(120_000, 100, 2)]],
    ['quinn-s1-csumoff', [sample(100_000)]],
  ])
  const summaries = summarize(cases, samples)
  t.equal(summaries[0]!.median!.ackedPerSec, 1_300_000)
  t.equal(summaries[1]!.unavailable, '--workers not in this tree')

  const goal = verdict(summaries, cases)
  t.same(goal.ratios, { 'xdp-w1-s1': 10.83, 'xdp-w2-s1': null, 'socket-w1-s1': 7.5 }, 'against the better quinn case')
  t.same(goal.best, { key: 'xdp-w1-s1', ratio: 10.83 })
  t.equal(goal.met, true)
  t.match(goal.line, /Goal ≥ 10× quinn: MET \(best xdp-w1-s1, 10.83×\)/)
  t.same(goal.perCpuRatios, { 'xdp-w1-s1': 21.67, 'xdp-w2-s1': null, 'socket-w1-s1': null }, '1.3 M per core over 60k per core')
  t.match(goal.line, /per CPU-second of the sender: xdp-w1-s1 21.67×$/)

  const table = formatTable(summaries)
  t.match(table, /xdp {4}1 worker, 1 sink +1,300,000 +100 +200 +400 +1\.00 +1\.00 +1,300,000 +3\n/)
  t.match(table, /socket 1 worker, 1 sink +900,000 +100 +200 +400 +- +- +- +1\n/, 'no CPU figures: dashes')
  t.match(table, /xdp {4}2 workers, 1 sink +not available: --workers not in this tree\n/)
  t.equal(table.split('\n')[0]!.trimEnd().endsWith('runs'), true)

  const slower = verdict(summarize(cases, new Map([...samples, ['xdp-w1-s1', [sample(600_000)]]])), cases)
  t.equal(slower.met, false)
  t.match(slower.line, /NOT MET \(best socket-w1-s1, 7.5×\)/)

  const noQuinn = verdict(summarize(cases, new Map([['xdp-w1-s1', [sample(1)]]])), cases)
  t.equal(noQuinn.met, null)
  t.match(noQuinn.line, /not judged \(no quinn result\)/)
  t.equal(summarize(cases, new Map())[0]!.unavailable, 'no successful run')
})

t.test('CPU seconds from /proc/PID/stat, a command name with spaces and parentheses', async (t) => {
  const stat = '4242 (node (a) b) R 1 4242 4242 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 3 0 12345'
  t.equal(cpuSecondsFromStat(stat, 100), 3)
  t.equal(cpuSeconds(2 ** 22 + 12345), undefined, 'a process that is gone')
  const own = cpuSeconds(process.pid)
  t.ok(own !== undefined && own > 0, 'this process has used some CPU')
})
