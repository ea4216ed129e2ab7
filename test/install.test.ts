// The one documented install step (`npm install -g .` from a built clone) puts every command on PATH,
// and each runs from anywhere: --help with examples and defaults as a user types them, and a real probe.
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const root = fileURLToPath(new URL('..', import.meta.url))
const commands = Object.keys((JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin: Record<string, string> }).bin)
const prefix = mkdtempSync(join(tmpdir(), 'kbx-global-'))
t.teardown(() => rmSync(prefix, { recursive: true, force: true }))

execFileSync('npm', ['install', '--global', '--prefix', prefix, root], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 120_000 })
const env = { ...process.env, PATH: `${join(prefix, 'bin')}:${process.env.PATH ?? ''}` }
const run = (argv: string[]): ReturnType<typeof spawnSync> => spawnSync(argv[0]!, argv.slice(1), { cwd: tmpdir(), env, encoding: 'utf8', timeout: 60_000 })

t.test('every command of package.json is on PATH', async (t) => {
  t.ok(commands.length >= 6, `${commands.join(', ')}`)
  t.same(readdirSync(join(prefix, 'bin')).sort(), [...commands].sort())
  for (const command of commands) t.match(execFileSync('sh', ['-c', `command -v ${command}`], { env, encoding: 'utf8' }), join(prefix, 'bin', command))
})

t.test('--help shows examples and readable defaults', async (t) => {
  for (const command of commands) {
    const help = run([command, '--help'])
    t.equal(help.status, 0, `${command} --help exits 0`)
    const text = String(help.stdout)
    t.match(text, /^usage: /im, `${command}: usage line`)
    t.match(text, /^examples:\n {2}\S/im, `${command}: examples`)
    t.notMatch(text, /default: [{[]|\[object /, `${command}: no default printed as JSON or [object]`)
  }
})

t.test('the installed xdp-load probes the kernel from any directory', async (t) => {
  const probe = run(['xdp-load', 'features', '-j'])
  t.equal(probe.status, 0, String(probe.stderr))
  const event = JSON.parse(String(probe.stdout).trim().split('\n')[0]!) as { event: string; data: Record<string, unknown> }
  t.equal(event.event, 'features')
  t.ok(Object.keys(event.data).length > 0)
})

t.test('a missing test-bed interface names the command that creates it', async (t) => {
  // A fresh network namespace (only lo), so a bed left up on the host does not hide the message.
  const fix = run(['unshare', '--net', 'fix-tcp', '--iface', 'fix0', '--duration', '1'])
  t.equal(fix.status, 1, String(fix.stderr))
  t.match(String(fix.stderr), /unknown interface \\"fix0\\"/)
  t.match(String(fix.stderr), new RegExp(`create it with \`bash ${root}scripts/setup_net\\.sh up fix\``))
  const ab = run(['unshare', '--net', 'ab-arbitrate', '--duration', '1'])
  t.equal(ab.status, 1, String(ab.stderr))
  t.match(String(ab.stderr), /vethA_dst belongs to kbx's ab test bed/)
})
