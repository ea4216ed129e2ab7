import t from 'tap'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { createVethPair, testDir } from './testing/netns.js'

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
