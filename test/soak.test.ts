// `pnpm soak <tool> --seconds 30` for each tool on its own test bed: every verdict passes (memory flat
// after warm-up, accounting exact), samples carry RSS and CPU of every process, nothing is left behind.
// 30 s cannot tell a Node process's heap settling (fix-tcp's RSS rises ~60 MB/min for its first minute
// at 2000 orders/s, then levels off) from a slow leak: the suite judges the second half of the run and
// fails growth above 40 MB in it (160 MB/min), which catches gross leaks like quic-sink's (~5 GB/min);
// the 1 MB/min is judged by the ten-minute soak (soak/README.md).
// quic's memory check fails until quic-sink stops leaking (ngtcp2 0.12.1 never frees a finished remote
// unidirectional stream: issue 9, item 1); its accounting is asserted on its own.
import { spawn, spawnSync } from 'node:child_process'
import { join } from 'node:path'
import t from 'tap'
import { repoRoot } from '@kbx/ffi'
import { followTool, nodeCommand } from '@kbx/testbed'

const SOAK = join(repoRoot, 'soak/soak.ts')
const SECONDS = 30
const PROCESSES: Record<string, string[]> = {
  xsk: ['xsk-demo-rx', 'xsk-demo-tx'],
  ab: ['ab-arbitrate', 'ab-feed'],
  quic: ['quic-flood', 'quic-sink'],
  fix: ['fix-tcp', 'fix-acceptor'],
}

// Four soaks of 30 s, their test beds and tools' start-up on a loaded machine.
t.setTimeout(15 * 60_000)

t.test('usage errors exit 2 before anything runs', async (t) => {
  for (const args of [[], ['nosuch'], ['ab', '--seconds', '0'], ['ab', '--minutes', '1', '--seconds', '30'], ['ab', '--seconds', '10', '--sample-interval', '5'], ['ab', 'fix']]) {
    const [cmd, argv] = nodeCommand(SOAK, args)
    const r = spawnSync(cmd, argv, { encoding: 'utf8' })
    t.equal(r.status, 2, `soak ${args.join(' ')}: ${r.stderr.split('\n')[0]}`)
    t.equal(r.stdout, '', 'nothing on stdout')
  }
})

for (const target of Object.keys(PROCESSES)) {
  t.test(`soak ${target} --seconds ${SECONDS}`, async (t) => {
    const [cmd, argv] = nodeCommand(SOAK, [target, '--seconds', String(SECONDS), '--sample-interval', '2', '--warmup-fraction', '0.5', '--noise-floor-mb', '40'])
    const run = followTool(spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] }))
    const exit = await run.exited
    const pid = run.child.pid!
    const samples = run.events.filter((e) => e.event === 'sample')
    const verdicts = run.events.filter((e) => e.event === 'verdict')
    t.equal(verdicts.length, 1, 'one verdict')
    const v = verdicts[0]?.data
    if (!v) return t.fail(`no verdict: ${run.stderr().slice(-2000)}`)
    t.ok(run.events.every((e) => e.tool === 'soak'), 'every line is the soak\'s')
    // quic stops early while quic-sink leaks (its RSS passes the soak's ceiling after ~20 s)
    t.ok(samples.length >= (target === 'quic' ? 5 : SECONDS / 2 - 2), `a sample every 2 s: ${samples.length}`)
    const steady = samples.slice(2, -1)
    for (const name of PROCESSES[target]!) {
      t.ok(steady.every((s) => s.data['processes'][name]?.rssMB > 10), `${name}: RSS in every sample`)
      t.ok(steady.some((s) => s.data['processes'][name]?.cpuPct > 0), `${name}: CPU time measured`)
      t.type(v['memoryMBPerMin'][name], 'number', `${name}: a memory slope`)
    }
    t.ok(steady.some((s) => Object.values(s.data['counters']).some((c) => c !== undefined && c !== null)), 'the tools\' own counters in the samples')
    if (target === 'xsk' || target === 'ab') t.ok(steady.some((s) => s.data['umem'] !== undefined), 'UMEM accounting in the samples')
    t.equal(v['accounting'].exact, true, `accounting exact: ${JSON.stringify(v['accounting'].checks.filter((c: { ok: boolean }) => !c.ok))}`)
    t.ok(v['accounting'].checks.length >= 1, 'accounting checked')
    for (const reason of v['reasons'] as string[]) t.comment(reason)
    if (target === 'quic') {
      const other = (v['reasons'] as string[]).filter((r) => !r.startsWith('quic-sink: RSS'))
      t.same(other, [], 'no failure but quic-sink\'s memory')
      t.equal(v['memory']['quic-sink'].pass, true, `quic-sink memory flat after warm-up: ${v['memoryMBPerMin']['quic-sink']} MB/min (fails until the sink stops leaking)`)
    } else {
      t.equal(v['pass'], true, `verdict passes: ${JSON.stringify(v['reasons'])}`)
      t.same(exit, { code: 0, signal: null }, 'exit 0')
    }
    const left = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.startsWith(`kbxt-${pid}-`))
    t.same(left, [], 'no namespace left')
    const links = spawnSync('ip', ['-o', 'link'], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.includes(`kbt${pid.toString(36)}_`))
    t.same(links, [], 'no veth left')
  })
}
