import t from 'tap'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { runBatchLoop } from './index.js'
import { createVethPair, testDir } from '../test/netns.js'

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

t.test('SIGINT stops a receive loop within 100 ms', async (t) => {
  const pair = createVethPair(t)
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=kbx-source', join(testDir, 'sigint-loop.ts'), pair.a], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL')
  })
  const events: { event: string; stopMs?: number; iterations?: number }[] = []
  const lines = createInterface({ input: child.stdout })
  const ready = new Promise<void>((resolve) =>
    lines.on('line', (line) => {
      const event = JSON.parse(line) as { event: string }
      events.push(event)
      if (event.event === 'ready') resolve()
    }),
  )
  await ready
  await new Promise((resolve) => setTimeout(resolve, 200))
  child.kill('SIGINT')
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)))
  t.equal(code, 0, 'the loop ended and the process exited normally')
  const stopped = events.find((e) => e.event === 'stopped')
  t.ok(stopped, 'the loop reported its stop')
  t.ok(stopped!.iterations! > 0, 'it was looping')
  t.ok(stopped!.stopMs! < 100, `stopped ${stopped!.stopMs!.toFixed(1)} ms after SIGINT`)
})
