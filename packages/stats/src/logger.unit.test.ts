import t from 'tap'
import { closeSync, mkdtempSync, openSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { createLogger, isLogLevel } from './logger.js'
import { TtyStatus } from './tty.js'

function tempFd(t: { teardown(fn: () => void): void }) {
  const path = join(mkdtempSync(join(tmpdir(), 'kbx-log-')), 'err')
  const fd = openSync(path, 'w+')
  t.teardown(() => closeSync(fd))
  return { fd, read: () => readFileSync(path, 'utf8') }
}

t.test('NDJSON with name, filtered by level', async (t) => {
  const out = tempFd(t)
  const log = createLogger({ name: 'xdp-load', level: 'debug', fd: out.fd })
  log.trace('hidden')
  log.debug({ iface: 'veth0' }, 'attaching')
  log.error('failed')
  const lines = out.read().trimEnd().split('\n').map((l) => JSON.parse(l))
  t.equal(lines.length, 2)
  t.match(lines[0], { level: 20, name: 'xdp-load', iface: 'veth0', msg: 'attaching' })
  t.match(lines[1], { level: 50, msg: 'failed' })
  log.level = 'trace'
  log.trace('now visible')
  t.match(out.read(), /now visible/)
})

t.test('log lines go above a live status line', async (t) => {
  const out = tempFd(t)
  const status = new TtyStatus({ fd: out.fd, enabled: true })
  const log = createLogger({ name: 'x', fd: out.fd, status })
  status.update('1000 pps')
  log.info('hello')
  const text = out.read()
  t.match(text, /^\r\x1b\[2K1000 pps\r\x1b\[2K\{.*"msg":"hello"\}\n1000 pps$/)
  status.stop()
})

t.test('defaults to stderr and loses nothing at process.exit', async (t) => {
  const script = `
    import { createLogger } from '@kbx/stats'
    const log = createLogger({ name: 'exit-test' })
    for (let i = 0; i < 2000; i++) log.info({ i }, 'line')
    log.warn('last')
    process.exit(3)
  `
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--conditions=kbx-source', '--input-type=module', '-e', script], {
    cwd: new URL('.', import.meta.url),
    encoding: 'utf8',
  })
  t.equal(r.status, 3)
  t.equal(r.stdout, '', 'nothing on stdout')
  const lines = r.stderr.trimEnd().split('\n').map((l) => JSON.parse(l))
  t.equal(lines.length, 2001)
  t.match(lines.at(-1), { level: 40, name: 'exit-test', msg: 'last' })
})

t.test('isLogLevel', async (t) => {
  t.ok(isLogLevel('trace'))
  t.ok(isLogLevel('silent'))
  t.notOk(isLogLevel('verbose'))
})
