import t from 'tap'
import { closeSync, mkdtempSync, openSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { TtyStatus, formatSummary, formatNumber } from './tty.js'

function tempFd(t: { teardown(fn: () => void): void }) {
  const path = join(mkdtempSync(join(tmpdir(), 'kbx-tty-')), 'err')
  const fd = openSync(path, 'w+')
  t.teardown(() => closeSync(fd))
  return { fd, read: () => readFileSync(path, 'utf8') }
}

const CLEAR = '\r\x1b[2K'

t.test('disabled when the fd is not a TTY by default', async (t) => {
  const out = tempFd(t)
  const status = new TtyStatus({ fd: out.fd })
  t.equal(status.enabled, false)
  status.update('hello')
  status.stop()
  t.equal(out.read(), '')
})

t.test('throttles to one draw per window and draws the newest text after it', async (t) => {
  const out = tempFd(t)
  const status = new TtyStatus({ fd: out.fd, enabled: true, minIntervalMs: 100 })
  status.update('one')
  status.update('two')
  status.update('three')
  t.equal(out.read(), CLEAR + 'one', 'only the first update drew at once')
  await new Promise((r) => setTimeout(r, 200))
  t.equal(out.read(), CLEAR + 'one' + CLEAR + 'three', 'the newest text drew when the window ended')
  status.writeAbove('{"level":30}\n')
  t.equal(out.read(), CLEAR + 'one' + CLEAR + 'three' + CLEAR + '{"level":30}\n' + 'three')
  status.stop()
  t.ok(out.read().endsWith(CLEAR), 'stop clears the line')
  status.update('after stop')
  await new Promise((r) => setTimeout(r, 150))
  t.ok(out.read().endsWith(CLEAR), 'nothing drawn after stop')
})

t.test('newlines are flattened and long text is cut to the width', async (t) => {
  const out = tempFd(t)
  const status = new TtyStatus({ fd: out.fd, enabled: true, columns: 20 })
  status.update('a\nb ' + 'x'.repeat(50))
  const drawn = out.read().slice(CLEAR.length)
  t.equal(drawn.length, 19)
  t.ok(drawn.startsWith('a b '))
  t.ok(drawn.endsWith('…'))
  status.stop()
})

t.test('formatSummary aligns keys and flattens nested summaries', async (t) => {
  const text = formatSummary('quic-flood', {
    packets: 1234567n,
    rate_pps: 98765.4321,
    iface: 'veth0',
    latency_us: { p50: 12.3456, p99: 45 },
    skipped: undefined,
  })
  t.equal(
    text,
    ['quic-flood summary', '  packets     1,234,567', '  rate_pps    98,765.4', '  iface       veth0', '  latency_us  p50 12.346  p99 45', ''].join('\n'),
  )
  t.equal(formatNumber(0.5), '0.5')
  t.equal(formatNumber(-3), '-3')
})
