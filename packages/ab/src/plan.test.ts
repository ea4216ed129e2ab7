import t from 'tap'
import { NO_IMPAIRMENTS, makePlan, withheldRanges } from './plan.js'
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
