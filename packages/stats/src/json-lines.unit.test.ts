import t from 'tap'
import { closeSync, mkdtempSync, openSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { PermissionError, UsageError } from '@kbx/errors'
import { JsonLines } from './json-lines.js'

function tempFd(t: { teardown(fn: () => void): void }): { fd: number; read(): string } {
  const dir = mkdtempSync(join(tmpdir(), 'kbx-stats-'))
  const path = join(dir, 'out.jsonl')
  const fd = openSync(path, 'w+')
  t.teardown(() => closeSync(fd))
  return { fd, read: () => readFileSync(path, 'utf8') }
}

t.test('emit writes exactly one line with event, tool, ts and data in that order', async (t) => {
  const out = tempFd(t)
  const json = new JsonLines({ tool: 'quic-flood', out: out.fd, now: () => 1_700_000_000_123 })
  json.emit('interval', { packets: 2n ** 64n - 1n, rate: 12.5 })
  const text = out.read()
  t.equal(text, '{"event":"interval","tool":"quic-flood","ts":1700000000.123,"data":{"packets":18446744073709551615,"rate":12.5}}\n')
  t.equal(text.split('\n').length, 2)
})

t.test('ts is unix seconds with milliseconds', async (t) => {
  const out = tempFd(t)
  const before = Date.now() / 1000
  new JsonLines({ tool: 'x', out: out.fd }).start({})
  const after = Date.now() / 1000
  const line = JSON.parse(out.read())
  t.type(line.ts, 'number')
  t.ok(line.ts >= Math.floor(before * 1000) / 1000 && line.ts <= after, `${line.ts} within [${before}, ${after}]`)
  t.equal(Math.round(line.ts * 1000) / 1000, line.ts, 'at most 3 decimals')
})

t.test('start/interval/end/error helpers', async (t) => {
  const out = tempFd(t)
  const json = new JsonLines({ tool: 'ab-arbitrate', out: out.fd, now: () => 1000 })
  json.start({ iface: 'veth0' })
  json.interval({ a: 1 })
  json.end({ total: 3n })
  json.error(new UsageError('bad --queue', { hint: 'use 0..63' }))
  json.error(new Error('boom'))
  json.error(new PermissionError('xdp-load needs root: run it with sudo'))
  const lines = out.read().trimEnd().split('\n').map((l) => JSON.parse(l))
  t.same(lines.map((l) => l.event), ['start', 'interval', 'end', 'error', 'error', 'error'])
  t.same(lines[0].data, { iface: 'veth0' })
  t.same(lines[2].data, { total: 3 })
  t.match(lines[3].data, { type: 'UsageError', message: 'bad --queue', op: 'parse arguments', hint: 'use 0..63' })
  t.same(lines[4].data, { type: 'Error', message: 'boom' })
  t.match(lines[5].data, { type: 'PermissionError', hint: /root/ })
  for (const l of lines) t.equal(l.tool, 'ab-arbitrate')
})

t.test('disabled writes nothing', async (t) => {
  const out = tempFd(t)
  const json = new JsonLines({ tool: 'x', out: out.fd, enabled: false })
  json.start({ a: 1 })
  json.end({})
  json.error(new Error('e'))
  t.equal(out.read(), '')
})

t.test('a writer object receives whole lines', async (t) => {
  const chunks: string[] = []
  const json = new JsonLines({ tool: 'x', out: { write: (c: string) => chunks.push(c) }, now: () => 0 })
  json.emit('custom', { ok: true })
  t.same(chunks, ['{"event":"custom","tool":"x","ts":0,"data":{"ok":true}}\n'])
})

// A child writes many lines to a pipe that node made non-blocking, then exits immediately: every
// line, including `end`, must arrive whole even though the reader is slower than the writer.
t.test('no line is lost or cut at exit through a full non-blocking pipe', async (t) => {
  const lines = 20000
  const script = `
    import { JsonLines } from '@kbx/stats'
    process.stdout // makes node put fd 1 into non-blocking mode
    const json = new JsonLines({ tool: 'burst' })
    const pad = 'x'.repeat(300)
    json.start({})
    for (let i = 0; i < ${lines}; i++) json.interval({ i, pad })
    json.end({ total: ${lines}n })
    process.exit(0)
  `
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=kbx-source', '--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
    cwd: new URL('.', import.meta.url),
  })
  const chunks: Buffer[] = []
  child.stdout.pause()
  // Read slowly at first so the pipe fills up and the writer sees EAGAIN.
  await new Promise((r) => setTimeout(r, 500))
  child.stdout.on('data', (c: Buffer) => chunks.push(c))
  child.stdout.resume()
  const code = await new Promise<number | null>((r) => child.on('close', r))
  t.equal(code, 0)
  const text = Buffer.concat(chunks).toString('utf8')
  const parsed = text.trimEnd().split('\n').map((l) => JSON.parse(l))
  t.equal(parsed.length, lines + 2)
  t.equal(parsed[0].event, 'start')
  t.same(parsed.at(-1), { event: 'end', tool: 'burst', ts: parsed.at(-1).ts, data: { total: lines } })
  let ordered = true
  for (let i = 0; i < lines; i++) if (parsed[i + 1].data.i !== i) ordered = false
  t.ok(ordered, 'interval lines arrive in order')
})
