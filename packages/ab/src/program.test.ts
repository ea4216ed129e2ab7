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
import { RANDOM_RANGE, Random } from './plan.js'
import type { FeedFormat } from './format.js'
import { loadArbitratorProgram, readArbitratorCounters, readSkew, summarizeSkew } from './program.js'

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
  // Restarts: a jump of the reset distance (2^20) or more, either way, starts a new epoch; the new numbers
  // continue above a reserve of window / 4 (16), and late copies of the old numbering are placed in it.
  fixtures.splice(fixtures.length - 1, 1,
    { name: 'stream 0 jumps 3M ahead: a restart too (a stream cannot go round its numbers without one)', data: f(3000000n), ctx: lo, verdict: 'pass', counters: { resets: 1n, won_a: 1n, won_nosocket: 1n } },
    { name: 'stream 0: 5 is nearer the old numbering (newest 200): a late old copy, > window behind', data: f(5n), ctx: lo, verdict: 'drop', counters: { late_old_epoch: 1n, stale_a: 1n } },
    { name: 'stream 3 starts at 3000000', data: f(3000000n, 3), ctx: lo, verdict: 'pass', counters: { new_streams: 1n, won_a: 1n, won_nosocket: 1n } },
    { name: 'stream 3 restarts at 5 (3M behind)', data: f(5n, 3), ctx: lo, verdict: 'pass', counters: { resets: 1n, won_a: 1n, won_nosocket: 1n } },
    { name: 'the restarted 5 on B is a duplicate', data: f(5n, 3), ctx: lineB, verdict: 'drop', counters: { dup_b_after_a: 1n, skew_samples: 1n } },
    { name: '6 after the restart wins', data: f(6n, 3), ctx: lineB, verdict: 'pass', counters: { won_b: 1n, won_nosocket: 1n } },
    { name: 'a late old copy (2999990, B restarts later) wins in the old epoch: no second restart', data: f(2999990n, 3), ctx: lineB, verdict: 'pass', counters: { late_old_epoch: 1n, won_b: 1n, won_nosocket: 1n } },
    { name: 'its copy on A is a duplicate', data: f(2999990n, 3), ctx: lo, verdict: 'drop', counters: { late_old_epoch: 1n, dup_a_after_b: 1n, skew_samples: 1n } },
    { name: 'the old 3000000 again is a duplicate', data: f(3000000n, 3), ctx: lineB, verdict: 'drop', counters: { late_old_epoch: 1n, dup_b_after_a: 1n, skew_samples: 1n } },
    { name: 'an old number above the old newest, inside the reserve (3000016), wins', data: f(3000016n, 3), ctx: lineB, verdict: 'pass', counters: { late_old_epoch: 1n, won_b: 1n, won_nosocket: 1n } },
    { name: 'an old number beyond the reserve (3000017) cannot be placed: stale', data: f(3000017n, 3), ctx: lineB, verdict: 'drop', counters: { late_old_epoch: 1n, stale_b: 1n } },
    { name: 'the new numbering goes on: 7 wins', data: f(7n, 3), ctx: lo, verdict: 'pass', counters: { won_a: 1n, won_nosocket: 1n } },
    { name: 'a window past the reserve (100)', data: f(100n, 3), ctx: lo, verdict: 'pass', counters: { won_a: 1n, won_nosocket: 1n } },
    { name: 'a straggler of the old numbering now is stale, never a restart back', data: f(2999999n, 3), ctx: lineB, verdict: 'drop', counters: { late_old_epoch: 1n, stale_b: 1n } },
    { name: 'and the new numbering goes on: 101 wins', data: f(101n, 3), ctx: lo, verdict: 'pass', counters: { won_a: 1n, won_nosocket: 1n } },
  )
  runFixtures(t, prog, fixtures, { stats: obj.map('stats'), everyRun: () => ({ rx: 1n }) })
  const skew = readSkew(obj)
  t.equal(summarizeSkew(skew).samples, 8, 'one skew sample per later copy')
  t.equal(skew.bLate.count + skew.aLate.count, 8, 'in the B-late and A-late buckets')
  t.ok(skew.aLate.count > 0, 'copies after a win on B are A-late')
  t.ok(skew.bLate.maxValueNs > 0, 'the largest B-late skew is kept')
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
    { name: 'end of session: every copy to the receive loop (no socket here: passed), not arbitrated', data: mold({ session: 'SESS1', sequence: big + 2n, messages: [], endOfSession: true }), verdict: 'pass', counters: { end_of_session: 1n } },
    { name: 'its second copy too', data: mold({ session: 'SESS1', sequence: big + 2n, messages: [], endOfSession: true }), verdict: 'pass', counters: { end_of_session: 1n } },
    { name: 'header shorter than 20 bytes', data: buildUdpFrame({ ...hosts, srcPort: 1, dstPort: 8080, payload: Buffer.alloc(19) }), verdict: 'pass', counters: { short_payload: 1n } },
  ], { stats: obj.map('stats'), everyRun: () => ({ rx: 1n }) })
})

t.test('finding 2: the first copy of MoldUDP64 sequence 2^64 − 1 wins (its slot tag no longer wraps to the unused mark)', async (t) => {
  const obj = loadArbitratorProgram({ format: 'moldudp64', portMin: 8080, portMax: 8080, lineBIfindex: 0, skewSample: 1 })
  t.teardown(() => obj.close())
  // The fuzzer's reproducer, byte for byte: session "WRAPSESS00", sequence 0xffffffffffffffff, count 1.
  const frame = Buffer.from('02000000000102000000000208004500003000004000401150b10a090002e00000011f901f90001c000057524150534553533030ffffffffffffffff0001', 'hex')
  const mold = (sequence: bigint) => buildUdpFrame({ ...hosts, srcPort: 1, dstPort: 8080, payload: encodeMold({ session: 'WRAPSESS00', sequence, messages: [Buffer.from('x')] }) })
  runFixtures(t, obj.program(), [
    { name: 'first copy of 2^64 − 1: won (no socket here: passed)', data: frame, verdict: 'pass', counters: { new_streams: 1n, won_a: 1n, won_nosocket: 1n } },
    { name: 'second copy: dropped as a duplicate', data: frame, verdict: 'drop', counters: { dup_a_after_a: 1n, skew_samples: 1n } },
    { name: '2^64 − 2, late inside the window: won', data: mold((1n << 64n) - 2n), verdict: 'pass', counters: { won_a: 1n, won_nosocket: 1n } },
    { name: 'past the end: 0 follows 2^64 − 1 (serial arithmetic, like optiq\'s u32): won, no restart', data: mold(0n), verdict: 'pass', counters: { won_a: 1n, won_nosocket: 1n } },
    { name: 'and its copy is a duplicate', data: mold(0n), verdict: 'drop', counters: { dup_a_after_a: 1n, skew_samples: 1n } },
    { name: '2^64 − 1 once more, after the wrap: a duplicate still', data: frame, verdict: 'drop', counters: { dup_a_after_a: 1n, skew_samples: 1n } },
  ], { stats: obj.map('stats'), everyRun: () => ({ rx: 1n }) })
})

/** Whether the (stream, raw number) wins of a run of frames ever repeat without a restart between. */
function winsWithoutRestart(obj: ReturnType<typeof loadArbitratorProgram>, session: string, sequences: bigint[]): string[] {
  const won = new Map<bigint, bigint>() // number → resets counter at its win
  const repeats: string[] = []
  for (const sequence of sequences) {
    const frame = buildUdpFrame({ ...hosts, srcPort: 1, dstPort: 8080, payload: encodeMold({ session, sequence, messages: [Buffer.from('x')] }) })
    const verdict = obj.program().testRun({ data: frame }).verdict
    const resets = readArbitratorCounters(obj)['resets'] ?? 0n
    if (verdict !== 'pass') continue
    if (won.get(sequence) === resets) repeats.push(`${session}: ${sequence.toString(16)} won twice with no restart between (${sequences.map((s) => s.toString(16)).join(' ')})`)
    won.set(sequence, resets)
  }
  return repeats
}

t.test('lead 5: a MoldUDP64 number wins twice only across a restart', async (t) => {
  const obj = loadArbitratorProgram({ format: 'moldudp64', portMin: 8080, portMax: 8080, lineBIfindex: 0 })
  t.teardown(() => obj.close())
  // It was a bug, two of them: numbers were compared by 64-bit serial arithmetic with no limit on a jump
  // ahead, so a stream went round the circle of its numbers in four jumps of nearly 2^63 and 0x100000 won
  // again (found by a search over edge values, as the fuzzer's run did); and a stream whose newest number
  // was 0 was taken for a new one, so the next frame re-set its newest without a restart.
  const half = 1n << 63n
  t.same(winsWithoutRestart(obj, 'SESSION001', [0x100000n, half - 1n, half + 0x100000n, 0xfffffn, 0x100000n]), [], 'round the circle in four jumps: each jump is a restart')
  t.same(winsWithoutRestart(obj, 'SESSION002', [half, (1n << 64n) - 1n, 0n, 0x2000n, 0n, half]), [], 'a newest number of 0 is not a new stream')
  const before = readArbitratorCounters(obj)['resets'] ?? 0n
  winsWithoutRestart(obj, 'SESSION003', [0x100000n, half - 1n])
  t.equal((readArbitratorCounters(obj)['resets'] ?? 0n) - before, 1n, 'a jump of 2^63 − 0x100001 ahead restarts the stream')
  // And a search like the fuzzer's: random runs over the edges, one session each.
  const edges = [0n, 1n, 2n, 0xfffn, 0x1000n, 0x2000n, 0xfffffn, 0x100000n, 0x100001n, 0x200000n, half - 1n, half, half + 0xfffffn, half + 0x100000n, (1n << 64n) - 0x100000n, (1n << 64n) - 1n]
  const random = new Random(5)
  const repeats: string[] = []
  for (let run = 0; run < 300; run++) {
    const sequences = Array.from({ length: 12 }, () => edges[Math.floor((random.next() * edges.length) / RANDOM_RANGE)]!)
    repeats.push(...winsWithoutRestart(obj, `R${run}`, sequences))
  }
  t.same(repeats.slice(0, 5), [], '300 random runs of 12 edge numbers: no number won twice without a restart')
})

t.test('two CPUs claiming the same sequence numbers at the same moment: exactly one wins each, and the race happens', async (t) => {
  t.ok(numPossibleCpus() >= 2, 'the machine has two CPUs')
  const obj = loadArbitratorProgram({ format: 'optiq', portMin: 8080, portMax: 8080, lineBIfindex: 0 })
  t.teardown(() => obj.close())
  const count = 3000
  const run = (cpu: number, frames: Buffer[], barrier: Int32Array) =>
    new Promise<number[]>((resolve, reject) => {
      // tsx's loader does not follow into workers: register it there before importing the TS worker.
      const script = `const { register } = await import('tsx/esm/api'); register(); await import(${JSON.stringify(new URL('./testing/claim-worker.ts', import.meta.url).href)})`
      const w = new Worker(script, { eval: true, workerData: { fd: obj.program().fd, cpu, frames, barrier } })
      w.once('message', resolve)
      w.once('error', reject)
    })
  // Both workers meet at a barrier before every frame, pinned to CPU 0 and CPU 1; a round is 3000 numbers
  // of a fresh stream. Rounds go on until the compare-and-swap has been lost to the other CPU (the race
  // happened) at least 20 times: on this loaded VM one round usually gives a few dozen.
  let rounds = 0
  let retries = 0n
  let bothWon = 0
  let noneWon = 0
  for (; rounds < 10 && retries < 20n; rounds++) {
    const frames = Array.from({ length: count }, (_, i) => feedFrame('optiq', BigInt(i), { stream: 100 + rounds }))
    const barrier = new Int32Array(new SharedArrayBuffer(4))
    const [first, second] = await Promise.all([run(0, frames, barrier), run(1, frames, barrier)])
    for (let i = 0; i < count; i++) {
      const wins = (first![i] === 2 ? 1 : 0) + (second![i] === 2 ? 1 : 0)
      if (wins === 2) bothWon++
      if (wins === 0) noneWon++
    }
    retries = readArbitratorCounters(obj)['claim_retries'] ?? 0n
  }
  t.equal(bothWon, 0, 'no sequence number won on both CPUs')
  t.equal(noneWon, 0, 'every sequence number won once')
  const c = readArbitratorCounters(obj)
  t.equal(c['won_a'], BigInt(count * rounds), 'one winner per number')
  t.equal(c['dup_a_after_a'], BigInt(count * rounds), 'one duplicate per number')
  t.ok(retries >= 20n, `the race happened: the compare-and-swap was lost to the other CPU ${retries} times in ${rounds} round(s) of ${count} numbers`)
})
