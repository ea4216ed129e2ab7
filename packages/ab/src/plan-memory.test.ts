// ab-feed's plan memory does not grow with the numbers planned: 1M and 50M numbers, chunk by chunk as
// ab-feed plans them, peak at about the same heap + array buffers (a plan made up front would take
// about 20 bytes a number: ~1 GB for 50M).
import t from 'tap'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { NO_IMPAIRMENTS, PlanWorkspace, RunTruth, makePlan, planChunks } from './plan.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

const options = (numbers: number) => ({
  format: 'optiq' as const,
  seed: 7,
  count: numbers / 4,
  streams: 4,
  startSeq: 1n,
  gapProb: 0.0002,
  delayB: 32,
  a: { ...NO_IMPAIRMENTS, loss: 0.01, burstProb: 0.0002, burstLength: 20, reorder: 0.001, reorderDistance: 8 },
  b: { ...NO_IMPAIRMENTS, loss: 0.01, dup: 0.001, reorder: 0.01, reorderDistance: 16 },
})

/** Plans `numbers` numbers chunk by chunk in one workspace (as ab-feed does), keeping the run's truth; the peak of heap + array buffers, after a GC, every few chunks. */
function planPeakMB(numbers: number): { peakMB: number; union: number; withheld: number } {
  const o = options(numbers)
  const chunks = planChunks(o.count, o.streams)
  const truth = new RunTruth(true)
  const workspace = new PlanWorkspace()
  let peak = 0
  for (let i = 0; i < chunks.length; i++) {
    const plan = makePlan(o, chunks.at(i), workspace)
    truth.add(plan, { A: plan.truthA, B: plan.truthB, withheld: plan.withheld, union: plan.items - plan.withheld.length, restarts: plan.restarts })
    if (i % 8 === 0 || i === chunks.length - 1) {
      gc()
      const m = process.memoryUsage()
      // The chunk just planned is still referenced here: its lists count.
      peak = Math.max(peak, m.heapUsed + m.arrayBuffers)
      void plan.lineA.length
    }
  }
  return { peakMB: peak / 2 ** 20, union: truth.union, withheld: truth.withheldCount }
}

t.test('plan memory for 50M numbers stays that of 1M', async (t) => {
  const small = planPeakMB(1_000_000)
  const large = planPeakMB(50_000_000)
  t.comment(`peak heap + array buffers: 1M numbers ${small.peakMB.toFixed(1)} MB, 50M numbers ${large.peakMB.toFixed(1)} MB`)
  t.equal(large.union + large.withheld, 50_000_000, 'every one of the 50M numbers planned')
  t.ok(large.peakMB < small.peakMB + 48, `50M numbers: ${large.peakMB.toFixed(1)} MB, within 48 MB of 1M numbers' ${small.peakMB.toFixed(1)} MB (up front: ~1000 MB)`)
})
