import { EventEmitter } from 'node:events'
import t from 'tap'
import { runBatchLoop, runLoop, settledOrAborted } from './loop.js'

t.test('stops when the step returns false', async (t) => {
  let n = 0
  const reason = await runLoop({ signal: new AbortController().signal }, () => ++n < 1000, { intervalSec: 0 })
  t.equal(reason, 'done')
  t.equal(n, 1000)
})

t.test('stops at the duration and calls onInterval on the way', async (t) => {
  const ticks: number[] = []
  const started = Date.now()
  const reason = await runLoop({ signal: new AbortController().signal, opts: { duration: 0.35, interval: 0.1 } }, () => {}, {
    onInterval: (tick) => void ticks.push(tick.index),
  })
  const elapsed = Date.now() - started
  t.equal(reason, 'duration')
  t.ok(elapsed >= 340, `ran ${elapsed} ms`)
  t.same(ticks, [1, 2, 3])
})

t.test('stops on abort from a timer while the step keeps the CPU busy', async (t) => {
  const controller = new AbortController()
  setTimeout(() => controller.abort(), 50)
  let steps = 0
  const reason = await runLoop({ signal: controller.signal }, () => {
    const until = process.hrtime.bigint() + 1_000_000n
    while (process.hrtime.bigint() < until) {}
    steps++
  })
  t.equal(reason, 'signal')
  t.ok(steps > 0)
})

t.test('an already-aborted signal runs no step', async (t) => {
  const controller = new AbortController()
  controller.abort()
  let steps = 0
  t.equal(await runLoop({ signal: controller.signal }, () => void steps++), 'signal')
  t.equal(steps, 0)
})

t.test('async onInterval is awaited; errors from the step propagate', async (t) => {
  let inside = false
  let overlapped = false
  const controller = new AbortController()
  await runLoop(
    { signal: controller.signal },
    () => {
      if (inside) overlapped = true
    },
    {
      intervalSec: 0.02,
      durationSec: 0.2,
      onInterval: async () => {
        inside = true
        await new Promise((r) => setTimeout(r, 5))
        inside = false
      },
    },
  )
  t.notOk(overlapped, 'no step ran while onInterval was pending')
  await t.rejects(runLoop({ signal: controller.signal, opts: {} }, () => {
    throw new Error('native call failed')
  }), { message: 'native call failed' })
})

t.test('wait: a promise pauses the steps until it settles, ticks still come, a signal cuts it short', async (t) => {
  let steps = 0
  const ticks: number[] = []
  const reason = await runLoop(
    { signal: new AbortController().signal },
    () => ++steps < 4,
    {
      intervalSec: 0.01,
      onInterval: (tick) => void ticks.push(tick.index),
      wait: () => new Promise<void>((resolve) => setTimeout(resolve, 30)),
    },
  )
  t.equal(reason, 'done')
  t.equal(steps, 4, 'one step per settled wait')
  t.ok(ticks.length >= 1, `ticks between waits (${ticks.length})`)
  const controller = new AbortController()
  setTimeout(() => controller.abort(), 20)
  const started = Date.now()
  let waited = 0
  t.equal(await runLoop({ signal: controller.signal }, () => {}, { intervalSec: 0, wait: () => (waited++, new Promise<void>((resolve) => setTimeout(resolve, 5000).unref())) }), 'signal')
  t.ok(Date.now() - started < 2000, `the signal ended the wait (${Date.now() - started} ms)`)
  t.equal(waited, 1)
  let straight = 0
  t.equal(await runLoop({ signal: new AbortController().signal }, () => ++straight < 100, { intervalSec: 0, wait: () => undefined }), 'done')
  t.equal(straight, 100, 'undefined goes straight on')
})

t.test('runBatchLoop stops when the step says so, and lets timers run between slices', async (t) => {
  let steps = 0
  let timerFired = false
  setTimeout(() => (timerFired = true), 1)
  await runBatchLoop(() => {
    steps++
    return !timerFired
  }, { sliceMs: 2 })
  t.ok(timerFired, 'a timer ran while the loop was going')
  t.ok(steps > 1)
})

t.test('with checkEvery the loop still yields to timers', async (t) => {
  let timerFired = false
  setTimeout(() => (timerFired = true), 2)
  let steps = 0
  await runBatchLoop(() => {
    steps++
    const until = performance.now() + 0.2
    while (performance.now() < until) {
      // a step of 0.2 ms
    }
    return !timerFired
  }, { sliceMs: 1, checkEvery: 16 })
  t.ok(timerFired)
  // The step that sees the timer is the first after a yield, and yields come after multiples of 16 steps.
  t.ok(steps > 16 && (steps - 1) % 16 === 0, `the loop yields only after multiples of 16 steps (${steps})`)
})

t.test('an aborted signal stops the loop before the next step', async (t) => {
  const stop = new AbortController()
  let steps = 0
  await runBatchLoop(() => {
    if (++steps === 10) stop.abort()
  }, { signal: stop.signal })
  t.equal(steps, 10)
})

t.test('settledOrAborted: the waited promise or the abort, and nothing left attached to the signal', async (t) => {
  const stop = new AbortController()
  for (let i = 0; i < 1000; i++) await settledOrAborted(Promise.resolve(), stop.signal)
  t.equal(EventEmitter.getEventListeners(stop.signal, 'abort').length, 0, 'a thousand waits leave no listener behind')
  await t.rejects(settledOrAborted(Promise.reject(new Error('step failed')), stop.signal), /step failed/, 'a failed wait fails')
  t.equal(EventEmitter.getEventListeners(stop.signal, 'abort').length, 0)
  const pending = settledOrAborted(new Promise<void>(() => {}), stop.signal)
  stop.abort()
  await pending
  t.pass('the abort ends a wait that never settles')
})
