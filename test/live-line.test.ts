// The live line as a person at a terminal sees it: a tool run on a pseudo-terminal (script(1)) redraws one
// status line in place on stderr; piped, or with --no-live, it draws none.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { repoRoot } from '@kbx/ffi'

const SINK = join(repoRoot, 'packages/quic/src/bin-quic-sink.ts')
const CLEAR_LINE = '\r\x1b[2K'

function sinkArgs(extra: string[]): string[] {
  const port = 20_000 + (process.pid % 20_000)
  return ['--import', 'tsx', '--conditions=kbx-source', SINK, '--listen', `127.0.0.1:${port}`, '--duration', '2.5', '--interval', '0.5', '--no-json', ...extra]
}

/** The command's terminal output when run on a pty (script -q: no banner; stdin closed). */
function onTerminal(extra: string[]): string {
  const command = [process.execPath, ...sinkArgs(extra)].map((a) => `'${a}'`).join(' ')
  const r = spawnSync('script', ['-qfec', command, '/dev/null'], { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] })
  t.equal(r.status, 0, r.stderr)
  return r.stdout
}

t.test('on a terminal: one line redrawn in place with the rate and the totals, then the summary', async (t) => {
  const out = onTerminal([])
  const draws = out.split(CLEAR_LINE).slice(1).map((d) => d.split('\r\n')[0]!)
  const lines = draws.filter((d) => /^quic-sink \d/.test(d))
  t.ok(lines.length >= 3, `redrawn every interval (${lines.length} draws)`)
  for (const line of lines) t.match(line, /^quic-sink \d+s │ [\d,]+ tx\/s │ transactions [\d,]+ {2}connections \d+$/, 'rate, totals, one line')
  t.notMatch(lines.join(''), /\n/, 'never a new line between draws')
  t.match(out, /quic-sink summary/, 'the summary once the run ends')
})

t.test('--no-live on a terminal, and a piped stderr: no live line', async (t) => {
  const off = onTerminal(['--no-live'])
  t.notOk(off.includes(CLEAR_LINE), '--no-live draws nothing')
  t.match(off, /quic-sink summary/, 'the summary is still printed on a terminal')
  const piped = spawnSync(process.execPath, sinkArgs([]), { encoding: 'utf8', timeout: 60_000 })
  t.equal(piped.status, 0, piped.stderr)
  t.notOk(piped.stderr.includes(CLEAR_LINE), 'piped stderr: no live line')
  t.notMatch(piped.stderr, /summary/, 'and no summary')
})
