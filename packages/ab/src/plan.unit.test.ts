import t from 'tap'
import { END_OF_SESSION, NO_IMPAIRMENTS, PlanWorkspace, RunTruth, globalItem, itemSequence, makePlan, partialTruth, planChunks, withheldRanges } from './plan.js'
import { decodePayload, encodeFeedPayload, streamName } from './format.js'

const base = { format: 'optiq' as const, seed: 7, count: 1000, streams: 2, startSeq: 0xfffffff0n, gapProb: 0.01, delayB: 0 }

t.test('the plan is deterministic and its truth adds up', async (t) => {
  const opts = { ...base, a: { ...NO_IMPAIRMENTS, loss: 0.05, dup: 0.02 }, b: { ...NO_IMPAIRMENTS, burstProb: 0.01, burstLength: 5, reorder: 0.05, reorderDistance: 8 } }
  const p1 = makePlan(opts)
  const p2 = makePlan(opts)
  t.same([...p1.lineA], [...p2.lineA])
  t.same(p1.withheld, p2.withheld)
  t.ok(p1.withheld.length > 0, 'some gaps')
  const inA = new Set(p1.lineA)
  const inB = new Set(p1.lineB)
  for (const k of p1.withheld) t.ok(!inA.has(k) && !inB.has(k), `item ${k} is on neither line`)
  t.equal(inA.size + p1.truthA.dropped, 2000, 'A: every item sent or dropped')
  t.equal(p1.lineA.length, inA.size + p1.truthA.duplicated)
  t.equal(new Set([...inA, ...inB]).size + p1.withheld.length, 2000, 'union + withheld = everything')
  const ranges = withheldRanges(opts, p1.withheld)
  t.equal(ranges.reduce((n, r) => n + r.count, 0), p1.withheld.length)
})

t.test('payloads decode to what was encoded, across the wrap', async (t) => {
  t.same(decodePayload('optiq', encodeFeedPayload('optiq', 3, 0x1_0000_0002n)), { kind: 'data', stream: '1003', sequence: 2n, count: 1 })
  t.same(decodePayload('moldudp64', encodeFeedPayload('moldudp64', 1, 1n << 60n)), { kind: 'data', stream: 'S000000001', sequence: 1n << 60n, count: 1 })
  t.same(decodePayload('optiq', Buffer.alloc(10)), { kind: 'short' })
})

t.test('alternating outages: every number on exactly one line, the lines taking turns in blocks', async (t) => {
  const p = makePlan({ ...base, gapProb: 0, streams: 1, count: 100, alternate: 10, a: NO_IMPAIRMENTS, b: NO_IMPAIRMENTS })
  t.same([...p.lineA], Array.from({ length: 100 }, (_, k) => k).filter((k) => Math.floor(k / 10) % 2 === 1))
  t.same([...p.lineB], Array.from({ length: 100 }, (_, k) => k).filter((k) => Math.floor(k / 10) % 2 === 0))
  t.same(p.withheld, [])
  t.equal(p.truthA.dropped, 50)
  t.equal(p.truthB.dropped, 50)
})

t.test('partial truth: only what was sent, withheld only below the highest number sent per stream', async (t) => {
  // Items 0..19 of one stream; A sends 0 2 4 …, B sends 0 1 2 3 6 7 8 … minus 4, 5 (and 5 never on A).
  const plan = { lineA: Uint32Array.from([0, 2, 4, 6, 8, 10, 12]), lineB: Uint32Array.from([0, 1, 3, 6, 7, 9, 11, 13]), streams: 1, items: 20, truthA: {} as never, truthB: {} as never, withheld: [], restarts: 0, first: 0 }
  const truth = partialTruth(plan, 4, 5) // A: 0 2 4 6; B: 0 1 3 6 7 — highest sent 7
  t.same(truth.withheld, [5], 'only 5 is below 7 and on neither line')
  t.equal(truth.union, 7, '0 1 2 3 4 6 7')
  t.same(truth.A, { planned: 7, endOfSession: 0, dropped: 3, duplicated: 0, reordered: 0 }, 'A skipped 1 3 5 below its highest (6)')
  t.same(truth.B, { planned: 8, endOfSession: 0, dropped: 3, duplicated: 0, reordered: 0 }, 'B skipped 2 4 5 below its highest (7)')
  const whole = makePlan({ ...base, streams: 2, a: { ...NO_IMPAIRMENTS, loss: 0.1 }, b: { ...NO_IMPAIRMENTS, loss: 0.1 } })
  const all = partialTruth(whole, whole.lineA.length, whole.lineB.length)
  t.equal(all.union, whole.items - whole.withheld.length, 'everything sent: the union is the plan\'s')
  const sent = new Set([...whole.lineA, ...whole.lineB])
  const lastSent = (stream: number) => Math.max(...[...sent].filter((k) => k % 2 === stream))
  t.same(all.withheld, whole.withheld.filter((k) => k < lastSent(k % 2)), 'and its withheld set the plan\'s, but for numbers past the last one sent')
})

t.test('restarts: numbering per session, end-of-session entries, anchors, ranges split at the restart', async (t) => {
  const o = { format: 'moldudp64' as const, seed: 3, count: 30, streams: 2, startSeq: (1n << 64n) - 12n, restartEvery: 10, restartSeq: 1n, gapProb: 0.3, delayB: 0, a: { ...NO_IMPAIRMENTS, loss: 0.3 }, b: { ...NO_IMPAIRMENTS, loss: 0.3 } }
  t.same(itemSequence(o, 0), { stream: 0, session: 0, sequence: (1n << 64n) - 12n })
  t.same(itemSequence(o, 19), { stream: 1, session: 0, sequence: (1n << 64n) - 3n }, 'the first session ends 3 below 2^64')
  t.same(itemSequence(o, 21), { stream: 1, session: 1, sequence: 1n }, 'the second starts at --restart-seq')
  t.equal(streamName('moldudp64', 1, 1), 'R000100001', 'a new session name')
  const p = makePlan(o)
  t.equal(p.restarts, 4, 'two restarts per stream')
  const ends = (list: Uint32Array) => [...list].filter((k) => k & END_OF_SESSION).map((k) => k & ~END_OF_SESSION)
  t.same(ends(p.lineA), [18, 19, 38, 39], 'A: an end of session after each stream\'s last number of sessions 0 and 1')
  t.same(ends(p.lineB), [18, 19, 38, 39], 'B too')
  for (const k of [18, 19, 38, 39, 58, 59]) t.ok(p.lineA.includes(k) && !p.withheld.includes(k), `the last number ${k} of a session is on line A`)
  const ranges = withheldRanges(o, p.withheld)
  t.ok(ranges.every((r) => itemSequenceSession(r.stream) >= 0), 'names are sessions')
  t.equal(ranges.reduce((n, r) => n + r.count, 0), p.withheld.length)
  const all = partialTruth(p, p.lineA.length, p.lineB.length, o)
  t.same([all.union, all.restarts, all.A.endOfSession], [p.items - p.withheld.length, 4, 4], 'the partial truth of everything is the plan\'s')
})

function itemSequenceSession(name: string): number {
  return name.startsWith('S') ? 0 : parseInt(name.slice(1, 5), 36)
}

t.test('reordering never moves a number across an end of session', async (t) => {
  const o = { format: 'moldudp64' as const, seed: 9, count: 200, streams: 3, startSeq: 1n, restartEvery: 50, gapProb: 0, delayB: 0, a: { ...NO_IMPAIRMENTS, reorder: 0.5, reorderDistance: 16 }, b: { ...NO_IMPAIRMENTS, reorder: 0.5, reorderDistance: 16 } }
  const p = makePlan(o)
  t.ok(p.truthA.reordered > 50, `reordered: ${p.truthA.reordered}`)
  for (const list of [p.lineA, p.lineB]) {
    const ended = new Map<number, number>() // stream → sessions ended so far on this line
    let crossed = 0
    for (const entry of list) {
      const k = entry & ~END_OF_SESSION
      const { stream, session } = itemSequence(o, k)
      if (entry & END_OF_SESSION) ended.set(stream, session + 1)
      else if (session !== (ended.get(stream) ?? 0)) crossed++
    }
    t.equal(crossed, 0, 'every number sits between its session\'s start and its end of session')
  }
})

t.test('a run planned in chunks: every number planned once, chunk ends anchored, truth adds up', async (t) => {
  const o = { ...base, streams: 3, count: 1000, a: { ...NO_IMPAIRMENTS, loss: 0.2 }, b: { ...NO_IMPAIRMENTS, loss: 0.2 }, gapProb: 0.05 }
  const chunks = planChunks(o.count, o.streams, 700) // 233 numbers per stream a chunk
  t.equal(chunks.length, 5)
  t.same(chunks.at(4), { first: 932, count: 68 })
  const truth = new RunTruth(true)
  const planned = new Set<number>()
  const onA = new Set<number>()
  for (let i = 0; i < chunks.length; i++) {
    const plan = makePlan(o, chunks.at(i))
    for (const k of [...plan.lineA, ...plan.lineB]) planned.add(globalItem(plan, k))
    for (const k of plan.lineA) onA.add(globalItem(plan, k))
    truth.add(plan, { A: plan.truthA, B: plan.truthB, withheld: plan.withheld, union: plan.items - plan.withheld.length, restarts: plan.restarts })
    const lastOfChunk = (chunks.at(i).first + chunks.at(i).count - 1) * o.streams
    for (let s = 0; s < o.streams; s++) t.ok(!truth.withheld.includes(lastOfChunk + s), `chunk ${i}: its last number of stream ${s} is not withheld`)
  }
  t.equal(truth.union + truth.withheldCount, 3000, 'union + withheld = every number')
  t.equal(planned.size, truth.union, 'the union is what the lines carry')
  t.ok(truth.withheld.every((k) => !planned.has(k)), 'withheld numbers are on neither line')
  t.equal(onA.size + truth.A.dropped, 3000, 'line A: every number sent or dropped, across chunks')
  t.same(withheldRanges(o, truth.withheld).reduce((n, r) => n + r.count, 0), truth.withheldCount, 'the ranges hold every withheld number')
})

t.test('chunked planning gives the truth of the whole run read as one piece', async (t) => {
  const o = {
    ...base,
    streams: 3,
    count: 2000,
    startSeq: 1n,
    restartEvery: 700,
    gapProb: 0.02,
    a: { ...NO_IMPAIRMENTS, loss: 0.05, burstProb: 0.01, burstLength: 6, dup: 0.02, reorder: 0.05, reorderDistance: 8 },
    b: { ...NO_IMPAIRMENTS, loss: 0.05, dup: 0.03, reorder: 0.1, reorderDistance: 16 },
  }
  const chunks = planChunks(o.count, o.streams, 900)
  const truth = new RunTruth(true)
  // Every chunk's lists in global item numbers, one after the other: the run as the lines carry it.
  const wholeA: number[] = []
  const wholeB: number[] = []
  const global = (plan: ReturnType<typeof makePlan>, entry: number) => (entry & END_OF_SESSION ? (globalItem(plan, entry & ~END_OF_SESSION) | END_OF_SESSION) >>> 0 : globalItem(plan, entry))
  for (let i = 0; i < chunks.length; i++) {
    const plan = makePlan(o, chunks.at(i))
    for (const e of plan.lineA) wholeA.push(global(plan, e))
    for (const e of plan.lineB) wholeB.push(global(plan, e))
    truth.add(plan, { A: plan.truthA, B: plan.truthB, withheld: plan.withheld, union: plan.items - plan.withheld.length, restarts: plan.restarts })
  }
  const items = o.count * o.streams
  const whole = { lineA: Uint32Array.from(wholeA), lineB: Uint32Array.from(wholeB), streams: o.streams, items, truthA: {} as never, truthB: {} as never, withheld: [], restarts: 0, first: 0 }
  const onePiece = partialTruth(whole, wholeA.length, wholeB.length, o)
  t.equal(truth.union, onePiece.union, 'union')
  t.same(truth.withheld, onePiece.withheld, 'withheld numbers, every one')
  t.same(withheldRanges(o, truth.withheld), withheldRanges(o, onePiece.withheld), 'and their ranges')
  t.equal(truth.restarts, onePiece.restarts, 'restarts')
  for (const line of ['A', 'B'] as const) {
    const { planned, endOfSession, dropped, duplicated } = onePiece[line]
    t.same(
      { planned: truth[line].planned, endOfSession: truth[line].endOfSession, dropped: truth[line].dropped, duplicated: truth[line].duplicated },
      { planned, endOfSession, dropped, duplicated },
      `line ${line}: planned, end of session, dropped, duplicated`,
    )
  }
  t.ok(truth.withheldCount > 50 && truth.A.duplicated > 50 && truth.B.dropped > 100, 'every impairment happened')
})

t.test('--count 0: chunks without end, each a full chunk, planned on demand', async (t) => {
  const chunks = planChunks(0, 4, 1000)
  t.equal(chunks.length, Infinity)
  t.same(chunks.at(0), { first: 0, count: 250 })
  t.same(chunks.at(10 ** 9), { first: 250 * 10 ** 9, count: 250 })
  const o = { ...base, count: 0, streams: 4, a: { ...NO_IMPAIRMENTS, loss: 0.1 }, b: NO_IMPAIRMENTS }
  const far = makePlan(o, chunks.at(2 ** 33))
  t.equal(far.items, 1000)
  t.equal(far.first, 250 * 2 ** 33)
  t.notSame([...far.lineA], [...makePlan(o, chunks.at(2 ** 33 + 2 ** 32)).lineA], 'chunks whose first numbers differ by a multiple of 2^32 have their own randomness')
  const last = 249 * 4
  for (let s = 0; s < 4; s++) t.ok(far.lineA.includes(last + s), `the chunk's last number of stream ${s} is on line A (anchor)`)
})

t.test('plans made in one reused workspace are those made fresh', async (t) => {
  const o = { ...base, streams: 2, count: 3000, restartEvery: 1000, a: { ...NO_IMPAIRMENTS, loss: 0.1, dup: 0.3, reorder: 0.1, reorderDistance: 8 }, b: { ...NO_IMPAIRMENTS, burstProb: 0.01, burstLength: 9, dup: 0.5 } }
  const chunks = planChunks(o.count, o.streams, 1000)
  const workspace = new PlanWorkspace()
  for (const i of [2, 0, 5, 1, 5]) {
    const reused = makePlan(o, chunks.at(i), workspace)
    const fresh = makePlan(o, chunks.at(i))
    t.same([[...reused.lineA], [...reused.lineB], reused.withheld, reused.truthA, reused.truthB], [[...fresh.lineA], [...fresh.lineB], fresh.withheld, fresh.truthA, fresh.truthB], `chunk ${i}`)
  }
})

t.test('the withheld list keeps its first numbers only, and says so; the count goes on', async (t) => {
  const o = { ...base, streams: 2, count: 1000, gapProb: 0.1, a: NO_IMPAIRMENTS, b: NO_IMPAIRMENTS }
  const plan = makePlan(o, planChunks(o.count, o.streams, 4000).at(0))
  const capped = new RunTruth(true, 10)
  const whole = new RunTruth(true)
  for (const truth of [capped, whole]) truth.add(plan, { A: plan.truthA, B: plan.truthB, withheld: plan.withheld, union: plan.items - plan.withheld.length, restarts: plan.restarts })
  t.ok(plan.withheld.length > 10, `${plan.withheld.length} withheld`)
  t.same(capped.withheld, whole.withheld.slice(0, 10), 'the first ten kept')
  t.equal(capped.withheldComplete, false)
  t.equal(whole.withheldComplete, true)
  t.equal(capped.withheldCount, whole.withheldCount, 'counted in full')
})
