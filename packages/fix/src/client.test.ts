// fix-tcp's command line: the common options (--mode, --queue, --duration, --interval) with their bounds, the
// deprecated --xdp-mode alias, and the privileges check made before anything is opened.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { runTool } from '@kbx/cli'
import type { ToolContext } from '@kbx/cli'
import { PermissionError, UsageError } from '@kbx/errors'
import { TOOL, checkOrderOptions, fixTcpOptions, requireFixTcpPrivileges, resolveXdpMode } from './client.js'
import type { FixTcpOptions } from './client.js'

/** Parses argv as fix-tcp does; the options (or the exit code when parsing failed). */
async function parse(argv: string[]): Promise<{ code: number; opts: FixTcpOptions | undefined }> {
  let opts: FixTcpOptions | undefined
  const code = await runTool({
    tool: TOOL,
    argv: [...argv, '--log-level', 'silent'],
    options: fixTcpOptions,
    run: (ctx: ToolContext<FixTcpOptions>) => void (opts = ctx.opts),
    exit: false,
    jsonOut: { write: () => true },
  })
  return { code, opts }
}

t.test('the common options, with their defaults', async (t) => {
  const { code, opts } = await parse([])
  t.equal(code, 0)
  t.match(opts, { mode: 'auto', queue: 0, duration: 0, interval: 1, io: 'xdp' })
  t.equal(opts?.xdpMode, undefined, 'no --xdp-mode unless given')
  const given = await parse(['--mode', 'skb', '--queue', '3', '--duration', '2.5', '--interval', '500ms'])
  t.match(given.opts, { mode: 'skb', queue: 3, duration: 2.5, interval: 0.5 })
})

t.test('out-of-range and unknown values are usage errors (exit 2)', async (t) => {
  for (const argv of [['--interval', '0'], ['--queue', '1024'], ['--queue', '-1'], ['--mode', 'fast'], ['--xdp-mode', 'fast'], ['--duration', 'soon']]) {
    t.equal((await parse(argv)).code, 2, argv.join(' '))
  }
  t.equal((await parse(['--queue', '1023'])).code, 0, 'the highest queue')
})

t.test('order lifecycle and throttle options: defaults keep today\'s behaviour; bad values and combinations are usage errors', async (t) => {
  const { opts } = await parse([])
  t.match(opts, { cancelRatio: 0, replaceRatio: 0, statusRatio: 0 })
  t.equal(opts?.maxMsgRate, undefined, 'no throttle unless asked')
  t.equal(opts?.throttleMode, undefined)
  for (const argv of [['--cancel-ratio', '1.5'], ['--replace-ratio', '-0.1'], ['--status-ratio', 'half'], ['--cancel-ratio', ''], ['--max-msg-rate', '0'], ['--throttle-mode', 'drop']]) {
    t.equal((await parse(argv)).code, 2, argv.join(' '))
  }
  const given = await parse(['--cancel-ratio', '0.25', '--replace-ratio', '0.75', '--max-msg-rate', '1k', '--throttle-mode', 'reject', '--throttle-admin'])
  t.match(given.opts, { cancelRatio: 0.25, replaceRatio: 0.75, maxMsgRate: 1000, throttleMode: 'reject', throttleAdmin: true })
  t.doesNotThrow(() => checkOrderOptions(given.opts!))
  t.throws(() => checkOrderOptions({ ...given.opts!, statusRatio: 0.5 }), UsageError, 'the three ratios add up to more than 1')
  t.throws(() => checkOrderOptions({ ...opts!, throttleMode: 'queue' }), UsageError, '--throttle-mode without --max-msg-rate')
  t.throws(() => checkOrderOptions({ ...opts!, throttleAdmin: true }), UsageError, '--throttle-admin without --max-msg-rate')
})

t.test('--xdp-mode: a deprecated alias of --mode, with a warning; both and different: a usage error', async (t) => {
  const warnings: string[] = []
  const warn = (msg: string) => void warnings.push(msg)
  t.equal(resolveXdpMode({ mode: 'native' }, warn), 'native')
  t.same(warnings, [])
  const alias = await parse(['--xdp-mode', 'skb'])
  t.equal(alias.opts?.xdpMode, 'skb')
  t.equal(resolveXdpMode(alias.opts!, warn), 'skb')
  t.same(warnings, ['--xdp-mode is deprecated: use --mode'])
  t.equal(resolveXdpMode({ mode: 'skb', xdpMode: 'skb' }, warn), 'skb', 'the same mode twice is fine')
  t.throws(() => resolveXdpMode({ mode: 'native', xdpMode: 'skb' }, warn), UsageError)
})

t.test('privileges: --io xdp needs root or the capabilities, --io socket none', async (t) => {
  const unprivileged = { euid: () => 1000, readStatus: () => 'CapEff:\t0000000000000000\n' }
  t.throws(() => requireFixTcpPrivileges('xdp', unprivileged), PermissionError)
  t.doesNotThrow(() => requireFixTcpPrivileges('socket', unprivileged))
  t.doesNotThrow(() => requireFixTcpPrivileges('xdp', { euid: () => 0 }))
})

t.test('a non-root run over --io xdp fails at once: exit 1, a PermissionError event, nothing opened', async (t) => {
  const bin = fileURLToPath(new URL('./bin-fix-tcp.ts', import.meta.url))
  const root = fileURLToPath(new URL('../../..', import.meta.url))
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--import', 'tsx', '--conditions=kbx-source', bin, '--iface', 'lo', '--log-level', 'silent'], { cwd: root, encoding: 'utf8', env: { ...process.env, HOME: '/tmp' }, timeout: 60_000 })
  t.equal(r.status, 1, r.stderr)
  const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string; data: Record<string, unknown> })
  t.same(events.map((e) => e.event), ['error'], 'no start: the check comes before anything is opened')
  t.match(events[0]?.data, { type: 'PermissionError', message: 'fix-tcp needs root: run it with sudo', hint: /CAP_NET_RAW/ })
})
