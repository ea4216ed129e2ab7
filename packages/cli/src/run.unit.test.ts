import t from 'tap'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const fixture = fileURLToPath(new URL('./testing/test-tool.ts', import.meta.url))

interface Run {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  events: Array<{ event: string; tool: string; ts: number; data: Record<string, unknown> }>
  notes: string[]
  logs: Array<Record<string, unknown>>
}

interface Started {
  /** Resolves when stdout has shown an event with this name. */
  waitForEvent(name: string): Promise<void>
  kill(sig: NodeJS.Signals): void
  done: Promise<Run>
}

function start(args: string[]): Started {
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=kbx-source', fixture, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  const waiters: Array<{ name: string; resolve: () => void }> = []
  const check = () => {
    for (const w of [...waiters]) {
      if (stdout.split('\n').some((l) => l.startsWith(`{"event":"${w.name}"`))) {
        waiters.splice(waiters.indexOf(w), 1)
        w.resolve()
      }
    }
  }
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString()
    check()
  })
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
  const done = new Promise<Run>((resolve) => {
    child.on('close', (code, signal) => {
      const lines = stdout.split('\n').filter((l) => l !== '')
      const errLines = stderr.split('\n').filter((l) => l !== '')
      resolve({
        code,
        signal,
        stdout,
        stderr,
        events: lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)),
        notes: errLines.filter((l) => l.startsWith('NOTE ')).map((l) => l.slice(5)),
        logs: errLines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)),
      })
    })
  })
  return {
    waitForEvent: (name) =>
      new Promise<void>((resolve, reject) => {
        waiters.push({ name, resolve })
        check()
        void done.then(() => reject(new Error(`exited before "${name}": ${stderr}`)))
      }),
    kill: (sig) => child.kill(sig),
    done,
  }
}

const run = (args: string[]) => start(args).done
const CLEANUPS_IN_REVERSE = ['cleanup second-registered', 'cleanup first-registered']

t.test('ok: JSON lines on stdout, exact bigint, logs on stderr, cleanups newest first, exit 0', async (t) => {
  const r = await run(['lbl', '--scenario', 'ok', '--queue', '5', '--mode', 'native', '-v'])
  t.equal(r.code, 0)
  t.same(r.events.map((e) => e.event), ['start', 'end'])
  t.same(r.events[0]?.data, { label: 'lbl', queue: 5, mode: 'native' })
  t.match(r.stdout, /"data":\{"packets":18446744073709551615\}/)
  t.ok(r.logs.some((l) => l.msg === 'debug line' && l.level === 20), '-v enables debug')
  t.notOk(r.logs.some((l) => l.msg === 'trace line'), 'but not trace')
  t.same(r.notes, CLEANUPS_IN_REVERSE)
})

t.test('-vv enables trace; --no-json leaves stdout empty', async (t) => {
  const r = await run(['lbl', '--scenario', 'ok', '-vv', '--no-json'])
  t.equal(r.code, 0)
  t.equal(r.stdout, '')
  t.ok(r.logs.some((l) => l.msg === 'trace line' && l.level === 10))
})

t.test('unknown option → 2, commander message on stderr, nothing on stdout', async (t) => {
  const r = await run(['lbl', '--scenario', 'ok', '--bogus'])
  t.equal(r.code, 2)
  t.equal(r.stdout, '')
  t.match(r.stderr, /error: unknown option '--bogus'/)
  t.same(r.notes, [], 'run never started')
})

t.test('missing argument → 2', async (t) => {
  const r = await run(['--scenario', 'ok'])
  t.equal(r.code, 2)
  t.match(r.stderr, /missing required argument 'label'/)
})

t.test('bad option value → 2 with the parser message', async (t) => {
  const r = await run(['lbl', '--scenario', 'ok', '--queue', 'two'])
  t.equal(r.code, 2)
  t.equal(r.stdout, '')
  t.match(r.stderr, /--queue: expected an integer from 0 to 1023, got "two"/)
  const m = await run(['lbl', '--scenario', 'ok', '--mode', 'drv'])
  t.equal(m.code, 2)
  t.match(m.stderr, /--mode: expected one of native, skb, auto/)
})

t.test('--help → 0', async (t) => {
  const r = await run(['--help'])
  t.equal(r.code, 0)
  t.match(r.stdout, /--mode <mode>/)
  t.match(r.stdout, /--no-json/)
  t.match(r.stdout, /-v, --verbose/)
})

t.test('UsageError thrown by the command → 2 with an error event', async (t) => {
  const r = await run(['lbl', '--scenario', 'usage'])
  t.equal(r.code, 2)
  t.same(r.events.map((e) => e.event), ['error'])
  t.match(r.events[0]?.data, { type: 'UsageError', hint: 'fix the arguments' })
  t.same(r.notes, CLEANUPS_IN_REVERSE)
})

t.test('runtime error → 1, only an error line on stdout, hint logged', async (t) => {
  const r = await run(['lbl', '--scenario', 'runtime'])
  t.equal(r.code, 1)
  t.equal(r.stdout.split('\n').filter(Boolean).length, 1, 'exactly one line on stdout')
  t.same(r.events[0], {
    event: 'error',
    tool: 'test-tool',
    ts: r.events[0]?.ts,
    data: {
      type: 'SystemError',
      message: 'bind AF_XDP socket to veth0:0 failed: EBUSY',
      op: 'bind AF_XDP socket to veth0:0',
      errno: 16,
      code: 'EBUSY',
      hint: r.events[0]?.data.hint,
    },
  })
  t.ok(r.logs.some((l) => l.level === 50 && l.code === 'EBUSY' && typeof l.hint === 'string'))
  t.same(r.notes, CLEANUPS_IN_REVERSE)
})

t.test('unknown error → 1, stack only at debug level', async (t) => {
  const quiet = await run(['lbl', '--scenario', 'unknown'])
  t.equal(quiet.code, 1)
  t.match(quiet.events[0]?.data, { type: 'TypeError', message: 'something unexpected' })
  t.notMatch(quiet.stderr, /"stack"/)
  const verbose = await run(['lbl', '--scenario', 'unknown', '-v'])
  t.match(verbose.stderr, /"stack":"TypeError: something unexpected/)
})

t.test('missing privileges → 1 with a plain message', async (t) => {
  const r = await run(['lbl', '--scenario', 'privileges'])
  t.equal(r.code, 1)
  t.same(r.events.map((e) => e.event), ['error'])
  t.match(r.events[0]?.data, { type: 'PermissionError', message: 'test-tool needs root: run it with sudo' })
})

t.test('a failing cleanup → 1, the other cleanups still run', async (t) => {
  const r = await run(['lbl', '--scenario', 'cleanup-fails'])
  t.equal(r.code, 1)
  t.ok(r.logs.some((l) => l.level === 50 && /cleanup failed: detach failed/.test(String(l.msg))))
  t.same(r.notes, CLEANUPS_IN_REVERSE)
})

t.test('unhandled rejection and uncaught exception → 1 with an error event, cleanups ran', async (t) => {
  for (const [scenario, message] of [
    ['reject', 'late rejection'],
    ['throw', 'thrown in a timer'],
  ] as const) {
    const r = await run(['lbl', '--scenario', scenario])
    t.equal(r.code, 1, scenario)
    t.same(r.events.map((e) => e.event), ['start', 'error'])
    t.equal(r.events[1]?.data.message, message)
    t.same(r.notes, CLEANUPS_IN_REVERSE)
  }
})

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  t.test(`${sig} during a busy runLoop: prompt stop, end event, cleanups, exit 0`, async (t) => {
    const tool = start(['lbl', '--scenario', 'busy', '--interval', '0.05'])
    await tool.waitForEvent('ready')
    await new Promise((r) => setTimeout(r, 200))
    const sentAt = Date.now()
    tool.kill(sig)
    const r = await tool.done
    const took = Date.now() - sentAt
    t.ok(took < 2000, `exited ${took} ms after ${sig}`)
    t.equal(r.code, 0)
    t.same(r.events.map((e) => e.event), ['start', 'ready', 'end'])
    t.match(r.events[2]?.data, { reason: 'signal', stepsPositive: true })
    t.ok((r.events[2]?.data.intervals as number) >= 1, 'onInterval ran')
    t.same(r.notes, CLEANUPS_IN_REVERSE)
  })
}

t.test('--duration stops the loop by itself', async (t) => {
  const r = await run(['lbl', '--scenario', 'busy', '--duration', '0.3'])
  t.equal(r.code, 0)
  t.match(r.events.at(-1), { event: 'end', data: { reason: 'duration' } })
})

t.test('a second SIGINT forces exit 130 after running the cleanups once', async (t) => {
  const tool = start(['lbl', '--scenario', 'hang'])
  await tool.waitForEvent('ready')
  tool.kill('SIGINT')
  await new Promise((r) => setTimeout(r, 300))
  tool.kill('SIGINT')
  const r = await tool.done
  t.equal(r.code, 130)
  t.same(r.notes, CLEANUPS_IN_REVERSE)
  t.ok(r.logs.some((l) => /second SIGINT/.test(String(l.msg))))
})

t.test('the human summary goes to stderr only on a terminal', async (t) => {
  const piped = await run(['lbl', '--scenario', 'ok'])
  t.notMatch(piped.stderr, /test-tool summary/, 'not when stderr is a pipe')
  // util-linux `script` gives the child a pseudo-terminal; stdout goes to /dev/null inside it.
  const { spawnSync } = await import('node:child_process')
  const inner = [process.execPath, '--import', 'tsx', '--conditions=kbx-source', fixture, 'lbl', '--scenario', 'ok']
    .map((a) => `'${a}'`)
    .join(' ')
  const r = spawnSync('script', ['-qec', `${inner} >/dev/null`, '/dev/null'], { encoding: 'utf8' })
  t.equal(r.status, 0)
  t.match(r.stdout, /test-tool summary\r?\n {2}packets {2}18,446,744,073,709,551,615/)
})
