// ab_arbitrate.bpf.c through BPF_PROG_TEST_RUN: the verdict of every kind of frame, the counters it
// moves, and concurrent claims from two CPUs. Without an AF_XDP socket a winner is XDP_PASS.
import { Worker } from 'node:worker_threads'
import t from 'tap'
import { numPossibleCpus } from '@kbx/bpf'
import { runFixtures } from '@kbx/bpf/testing'
import type { XdpFixture } from '@kbx/bpf/testing'
import { buildArpFrame, buildUdp6Frame, buildUdpFrame } from '@kbx/net'
import { withTestNet } from '@kbx/testbed'
import { encodeFeedPayload, encodeMold } from './format.js'
import type { FeedFormat } from './format.js'
import { loadArbitratorProgram, readArbitratorCounters, readSkewHistogram, readSkewMax, summarizeSkew } from './program.js'

const hosts = { srcMac: '02:00:00:00:00:01', dstMac: '02:00:00:00:00:02', srcIp: '10.0.1.1', dstIp: '10.0.1.2' }

function feedFrame(format: FeedFormat, sequence: bigint, opts: { stream?: number; port?: number } = {}): Buffer {
  return buildUdpFrame({ ...hosts, srcPort: 40000, dstPort: opts.port ?? 8080, payload: encodeFeedPayload(format, opts.stream ?? 0, sequence) })
}

const lo = { ingressIfindex: 1 }

t.test('optiq: first copy wins, later copies drop, stale drops, wrap and reset', async (t) => {
  const net = withTestNet(t)
  const { a } = net.addVethPair()
  const lineB = { ingressIfindex: a.ifindex }
  const obj = loadArbitratorProgram({ format: 'optiq', portMin: 8080, portMax: 8080, lineBIfindex: a.ifindex, window: 64, skewSample: 1 })
  t.teardown(() => obj.close())
  const prog = obj.program()
  const f = (s: bigint, stream = 0) => feedFrame('optiq', s, { stream })
  const fixtures: XdpFixture[] = [
    { name: 'first copy of 100 on A', data: f(100n), ctx: lo, verdict: 'pass', counters: { new_streams: 1n, won_a: 1n, won_nosocket: 1n } },
    { name: 'second copy of 100 on B', data: f(100n), ctx: lineB, verdict: 'drop', counters: { dup_b_after_a: 1n, skew_samples: 1n } },
    { name: 'third copy of 100 on A', data: f(100n), ctx: lo, verdict: 'drop', counters: { dup_a_after_a: 1n, skew_samples: 1n } },
    { name: '101 first on B', data: f(101n), ctx: lineB, verdict: 'pass', counters: { won_b: 1n, won_nosocket: 1n } },
    { name: '101 then on A', data: f(101n), ctx: lo, verdict: 'drop', counters: { dup_a_after_b: 1n, skew_samples: 1n } },
    { name: '99 (late, inside the window) on A', data: f(99n), ctx: lo, verdict: 'pass', counters: { won_a: 1n, won_nosocket: 1n } },
    { name: '99 again on B', data: f(99n), ctx: lineB, verdict: 'drop', counters: { dup_b_after_a: 1n, skew_samples: 1n } },
    { name: '200 jumps the window', data: f(200n), ctx: lo, verdict: 'pass', counters: { won_a: 1n, won_nosocket: 1n } },
    { name: '136 is exactly one window behind: stale', data: f(136n), ctx: lineB, verdict: 'drop', counters: { stale_b: 1n } },
    { name: '137 is inside the window', data: f(137n), ctx: lineB, verdict: 'pass', counters: { won_b: 1n, won_nosocket: 1n } },
    { name: 'another stream has its own window', data: f(100n, 1), ctx: lo, verdict: 'pass', counters: { new_streams: 1n, won_a: 1n, won_nosocket: 1n } },
    { name: 'stream 2 near wrap: 0xfffffffe', data: f(0xfffffffen, 2), ctx: lo, verdict: 'pass', counters: { new_streams: 1n, won_a: 1n, won_nosocket: 1n } },
    { name: 'stream 2 wraps to 1', data: f(1n, 2), ctx: lo, verdict: 'pass', counters: { won_a: 1n, won_nosocket: 1n } },
    { name: 'stream 2 0xffffffff after the wrap is still arbitrated', data: f(0xffffffffn, 2), ctx: lineB, verdict: 'pass', counters: { won_b: 1n, won_nosocket: 1n } },
    { name: 'stream 2 duplicate of 1 across the wrap', data: f(1n, 2), ctx: lineB, verdict: 'drop', counters: { dup_b_after_a: 1n, skew_samples: 1n } },
    { name: 'stream 0 reset: 200 → 5 restarts', data: f(5n - (1n << 21n) + 200n + (1n << 21n) - 200n), ctx: lo, verdict: 'pass', counters: { resets: 1n, won_a: 1n, won_nosocket: 1n } },
  ]
  // 5 is only 195 behind 200: not a reset with the default distance. Use a large jump first.
  fixtures.splice(fixtures.length - 1, 1,
    { name: 'stream 0 jumps to 3000000', data: f(3000000n), ctx: lo, verdict: 'pass', counters: { won_a: 1n, won_nosocket: 1n } },
    { name: 'stream 0 restarts at 5 (3M behind ≥ reset distance)', data: f(5n), ctx: lo, verdict: 'pass', counters: { resets: 1n, won_a: 1n, won_nosocket: 1n } },
    { name: 'the restarted 5 on B is a duplicate', data: f(5n), ctx: lineB, verdict: 'drop', counters: { dup_b_after_a: 1n, skew_samples: 1n } },
    { name: '6 after the restart wins', data: f(6n), ctx: lineB, verdict: 'pass', counters: { won_b: 1n, won_nosocket: 1n } },
  )
  runFixtures(t, prog, fixtures, { stats: obj.map('stats'), everyRun: () => ({ rx: 1n }) })
  const skew = summarizeSkew(readSkewHistogram(obj))
  t.equal(skew.samples, 6, 'one skew sample per later copy')
  t.ok(readSkewMax(obj).bLateNs > 0n, 'the largest B-late skew is kept')
})

t.test('not feed traffic passes untouched; truncated frames at every length pass', async (t) => {
  const obj = loadArbitratorProgram({ format: 'optiq', portMin: 8080, portMax: 8081, lineBIfindex: 0 })
  t.teardown(() => obj.close())
  const payload = encodeFeedPayload('optiq', 0, 7n)
  const fixtures: XdpFixture[] = [
    { name: 'other port', data: feedFrame('optiq', 7n, { port: 9000 }), verdict: 'pass', counters: { passed: 1n } },
    { name: 'ARP', data: buildArpFrame({ op: 'request', senderMac: hosts.srcMac, senderIp: hosts.srcIp, targetMac: '00:00:00:00:00:00', targetIp: hosts.dstIp }), verdict: 'pass', counters: { passed: 1n } },
    { name: 'IPv6 UDP to the feed port', data: buildUdp6Frame({ srcMac: hosts.srcMac, dstMac: hosts.dstMac, srcIp: 'fd00::1', dstIp: 'fd00::2', srcPort: 1, dstPort: 8080, payload }), verdict: 'pass', counters: { passed: 1n } },
    { name: 'payload shorter than the optiq struct', data: buildUdpFrame({ ...hosts, srcPort: 1, dstPort: 8080, payload: payload.subarray(0, 35) }), verdict: 'pass', counters: { short_payload: 1n } },
    { name: 'second port of the range is a feed port', data: feedFrame('optiq', 7n, { port: 8081 }), verdict: 'pass', counters: { new_streams: 1n, won_a: 1n, won_nosocket: 1n } },
  ]
  const full = feedFrame('optiq', 8n)
  for (let len = 14; len < full.length; len++) {
    // Below 14 bytes the kernel refuses the test run itself; every shorter frame has a length field
    // (IPv4 total length, UDP length) claiming more than is there.
    fixtures.push({ name: `truncated to ${len} bytes`, data: full.subarray(0, len), verdict: 'pass', counters: { malformed: 1n } })
  }
  runFixtures(t, obj.program(), fixtures, { stats: obj.map('stats'), everyRun: () => ({ rx: 1n }) })
})

t.test('moldudp64: big-endian u64 sequences, heartbeats and end of session are not data', async (t) => {
  const obj = loadArbitratorProgram({ format: 'moldudp64', portMin: 8080, portMax: 8080, lineBIfindex: 0, skewSample: 1 })
  t.teardown(() => obj.close())
  const mold = (p: Parameters<typeof encodeMold>[0]) => buildUdpFrame({ ...hosts, srcPort: 1, dstPort: 8080, payload: encodeMold(p) })
  const big = (1n << 63n) + 5n
  runFixtures(t, obj.program(), [
    { name: 'first', data: mold({ session: 'SESS1', sequence: big, messages: [Buffer.from('x')] }), verdict: 'pass', counters: { new_streams: 1n, won_a: 1n, won_nosocket: 1n } },
    { name: 'copy', data: mold({ session: 'SESS1', sequence: big, messages: [Buffer.from('x')] }), verdict: 'drop', counters: { dup_a_after_a: 1n, skew_samples: 1n } },
    { name: 'another session, same number', data: mold({ session: 'SESS2', sequence: big, messages: [Buffer.from('x')] }), verdict: 'pass', counters: { new_streams: 1n, won_a: 1n, won_nosocket: 1n } },
    { name: 'next', data: mold({ session: 'SESS1', sequence: big + 1n, messages: [Buffer.from('y')] }), verdict: 'pass', counters: { won_a: 1n, won_nosocket: 1n } },
    { name: 'heartbeat', data: mold({ session: 'SESS1', sequence: big + 2n, messages: [] }), verdict: 'drop', counters: { heartbeat: 1n } },
    { name: 'end of session', data: mold({ session: 'SESS1', sequence: big + 2n, messages: [], endOfSession: true }), verdict: 'drop', counters: { end_of_session: 1n } },
    { name: 'header shorter than 20 bytes', data: buildUdpFrame({ ...hosts, srcPort: 1, dstPort: 8080, payload: Buffer.alloc(19) }), verdict: 'pass', counters: { short_payload: 1n } },
  ], { stats: obj.map('stats'), everyRun: () => ({ rx: 1n }) })
})

t.test('two CPUs claiming the same sequence numbers at the same moment: exactly one wins each', async (t) => {
  t.ok(numPossibleCpus() >= 2, 'the machine has two CPUs')
  const obj = loadArbitratorProgram({ format: 'optiq', portMin: 8080, portMax: 8080, lineBIfindex: 0 })
  t.teardown(() => obj.close())
  const count = 3000
  const barrier = new Int32Array(new SharedArrayBuffer(4))
  const frames = Array.from({ length: count }, (_, i) => feedFrame('optiq', BigInt(i)))
  const run = (cpu: number) =>
    new Promise<number[]>((resolve, reject) => {
      // tsx's loader does not follow into workers: register it there before importing the TS worker.
      const script = `const { register } = await import('tsx/esm/api'); register(); await import(${JSON.stringify(new URL('./testing/claim-worker.ts', import.meta.url).href)})`
      const w = new Worker(script, { eval: true, workerData: { fd: obj.program().fd, cpu, frames, barrier } })
      w.once('message', resolve)
      w.once('error', reject)
    })
  const [first, second] = await Promise.all([run(0), run(1)])
  let bothWon = 0
  let noneWon = 0
  for (let i = 0; i < count; i++) {
    const wins = (first![i] === 2 ? 1 : 0) + (second![i] === 2 ? 1 : 0)
    if (wins === 2) bothWon++
    if (wins === 0) noneWon++
  }
  t.equal(bothWon, 0, 'no sequence number won on both CPUs')
  t.equal(noneWon, 0, 'every sequence number won once')
  const c = readArbitratorCounters(obj)
  t.equal(c['won_a'], BigInt(count))
  t.equal(c['dup_a_after_a'], BigInt(count))
  t.comment(`claim retries (CAS lost to the other CPU): ${c['claim_retries']}`)
})
