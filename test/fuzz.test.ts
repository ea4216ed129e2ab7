// `pnpm fuzz` in the suite: every target from its committed corpus for a short budget (6 s, fixed seed),
// failing when a target reports a finding; and every saved reproducer under fuzz/findings/ replayed as a
// regression test (it must run clean once its bug is fixed).
import { execFileSync, spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { repoRoot } from '@kbx/ffi'

// ten targets × (6 s + start-up) and the replays: beyond tap's default two minutes per file (each target
// stays well under the 20 s)
t.setTimeout(300_000)

const runner = join(repoRoot, 'fuzz/run.ts')
const node = (args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', '--conditions=kbx-source', runner, ...args], { cwd: repoRoot, encoding: 'utf8', timeout: 90_000 })

interface EndEvent {
  event: string
  tool: string
  data: { target: string; executions: number; findings: number; coverage: Record<string, number>; reports?: string[]; failures?: string[]; artifacts: string[] }
}

function endEvents(stdout: string): EndEvent[] {
  return stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as EndEvent)
}

const targets = endEvents(execFileSync(process.execPath, ['--import', 'tsx', runner, '--list'], { cwd: repoRoot, encoding: 'utf8' })).map(
  (e) => e.data.target,
)

t.test('the runner lists every target and refuses an unknown one with exit 2', async (t) => {
  t.same(targets, ['fix-framer', 'tcp-input', 'ab-rx', 'ab-recover', 'frame-parse', 'fix-codec', 'capture', 'xdp-ab_arbitrate', 'xdp-fix_steer', 'xdp-xdp_xsk_redirect', 'xdp-xdp_pass', 'xdp-ab_lru_ref'])
  const r = node(['no-such-target'])
  t.equal(r.status, 2)
  t.match(r.stderr, /unknown target: no-such-target/)
  t.equal(r.stdout, '', 'nothing on stdout for a usage error')
})

for (const target of targets) {
  t.test(`${target}: 6 s from the committed corpus, no finding`, async (t) => {
    const r = node([target, '--seconds', '6', '--seed', '1'])
    const [end] = endEvents(r.stdout)
    t.ok(end, `an end event (stderr: ${r.stderr.slice(-2000)})`)
    if (!end) return
    t.equal(end.event, 'end')
    t.equal(end.data.target, target)
    t.ok(end.data.executions > 100, `it executed inputs (${end.data.executions})`)
    t.ok(Object.values(end.data.coverage).some((v) => v > 0), `coverage reported (${JSON.stringify(end.data.coverage)})`)
    t.equal(end.data.findings, 0, `no finding: ${JSON.stringify(end.data.reports ?? end.data.artifacts)}`)
    t.equal(r.status, 0)
  })
}

const withFindings = readdirSync(join(repoRoot, 'fuzz/findings')).filter((d) => targets.includes(d))
for (const target of withFindings) {
  t.test(`${target}: the saved reproducers run clean (regression)`, async (t) => {
    const r = node([target, '--regress'])
    const [end] = endEvents(r.stdout)
    t.ok(end, `an end event (stderr: ${r.stderr.slice(-2000)})`)
    const reproducers = readdirSync(join(repoRoot, 'fuzz/findings', target)).filter((f) => !f.startsWith('.') && !f.endsWith('.txt') && !f.endsWith('.md'))
    t.ok(reproducers.length > 0)
    t.equal(end?.data.executions, reproducers.length, 'every reproducer was run')
    t.equal(end?.data.findings, 0, `every reproducer in fuzz/findings/${target} passes: ${r.stderr.slice(-1500)}`)
    t.equal(r.status, 0)
  })
}
