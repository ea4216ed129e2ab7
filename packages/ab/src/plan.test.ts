import t from 'tap'
import { NO_IMPAIRMENTS, makePlan, partialTruth, withheldRanges } from './plan.js'
import { decodePayload, encodeFeedPayload } from './format.js'

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
  const plan = { lineA: Uint32Array.from([0, 2, 4, 6, 8, 10, 12]), lineB: Uint32Array.from([0, 1, 3, 6, 7, 9, 11, 13]), streams: 1, items: 20, truthA: {} as never, truthB: {} as never, withheld: [] }
  const truth = partialTruth(plan, 4, 5) // A: 0 2 4 6; B: 0 1 3 6 7 — highest sent 7
  t.same(truth.withheld, [5], 'only 5 is below 7 and on neither line')
  t.equal(truth.union, 7, '0 1 2 3 4 6 7')
  t.same(truth.A, { planned: 7, dropped: 3, duplicated: 0, reordered: 0 }, 'A skipped 1 3 5 below its highest (6)')
  t.same(truth.B, { planned: 8, dropped: 3, duplicated: 0, reordered: 0 }, 'B skipped 2 4 5 below its highest (7)')
  const whole = makePlan({ ...base, streams: 2, a: { ...NO_IMPAIRMENTS, loss: 0.1 }, b: { ...NO_IMPAIRMENTS, loss: 0.1 } })
  const all = partialTruth(whole, whole.lineA.length, whole.lineB.length)
  t.equal(all.union, whole.items - whole.withheld.length, 'everything sent: the union is the plan\'s')
  const sent = new Set([...whole.lineA, ...whole.lineB])
  const lastSent = (stream: number) => Math.max(...[...sent].filter((k) => k % 2 === stream))
  t.same(all.withheld, whole.withheld.filter((k) => k < lastSent(k % 2)), 'and its withheld set the plan\'s, but for numbers past the last one sent')
})
