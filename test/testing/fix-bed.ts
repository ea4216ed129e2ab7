// The fix test bed of test/fix-*.test.ts: a linked namespace holding a FIX acceptor on the kernel's TCP
// (ours, packages/fix/src/bin-fix-acceptor.ts, or QuickFIX, native/build/fix-quickfix-acceptor), and
// fix-tcp runs from the root namespace against it.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { repoRoot } from '@kbx/ffi'
import { followTool, nodeCommand, waitUntil, withTestNet } from '@kbx/testbed'
import type { TestNet, ToolRun } from '@kbx/testbed'

export const FIX_PORT = 9878
const fixTcp = join(repoRoot, 'packages/fix/src/bin-fix-tcp.ts')
const kbxAcceptor = join(repoRoot, 'packages/fix/src/bin-fix-acceptor.ts')
const quickfixAcceptor = join(repoRoot, 'native/build/fix-quickfix-acceptor')

export type AcceptorKind = 'kbx' | 'quickfix'

export interface FixBed {
  net: TestNet
  netns: string
  /** fix-tcp's interface (root namespace) and address. */
  iface: string
  localIp: string
  /** The acceptor's interface (in netns) and address. */
  remoteIface: string
  exchIp: string
  /** A temporary directory removed with the test. */
  dir: string
  /** fix-tcp's sequence store. */
  store: string
  acceptor: ToolRun
}

export interface FixBedOptions {
  acceptor?: AcceptorKind
  acceptorArgs?: string[]
  /** Permanent neighbour entries on both ends (TestNet's default: yes). */
  neighbours?: boolean
  /** rx/tx queues of the veth pair (default 1). */
  queues?: number
}

/** Starts an acceptor in the bed's namespace (also to restart one); resolves once it listens. */
export async function startAcceptor(b: Pick<FixBed, 'net' | 'netns' | 'exchIp' | 'dir'>, kind: AcceptorKind, args: string[] = []): Promise<ToolRun> {
  const [cmd, argv] =
    kind === 'kbx'
      ? nodeCommand(kbxAcceptor, ['--listen', `${b.exchIp}:${FIX_PORT}`, ...args])
      : [quickfixAcceptor, ['--port', String(FIX_PORT), '--store', join(b.dir, 'quickfix-store'), '--log', join(b.dir, 'quickfix-log'), ...args]]
  const acceptor = followTool(b.net.spawn(b.netns, cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] }))
  await waitUntil(`the ${kind} acceptor to listen`, () => acceptor.events.some((e) => e.event === 'start'))
  return acceptor
}

export async function fixBed(t: Test, options: FixBedOptions = {}): Promise<FixBed> {
  const net = withTestNet(t)
  const { netns, local, remote } = net.addLinkedNamespace({
    ...(options.neighbours === undefined ? {} : { neighbours: options.neighbours }),
    ...(options.queues === undefined ? {} : { queues: options.queues }),
  })
  const dir = mkdtempSync(join(tmpdir(), 'kbx-fix-test-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const place = { net, netns, exchIp: remote.ip!, dir }
  const acceptor = await startAcceptor(place, options.acceptor ?? 'kbx', options.acceptorArgs)
  return { ...place, iface: local.name, localIp: local.ip!, remoteIface: remote.name, store: join(dir, 'seq.json'), acceptor }
}

/** Starts fix-tcp against the bed's acceptor; io null: fix-tcp's default transport; env: added to the environment. */
export function startFixTcp(b: FixBed, args: string[], io: 'xdp' | 'socket' | null, env: Record<string, string> = {}): ToolRun {
  const [cmd, argv] = nodeCommand(fixTcp, ['--iface', b.iface, '--connect', `${b.exchIp}:${FIX_PORT}`, ...(io === null ? [] : ['--io', io]), '--store', b.store, '--json', ...args])
  return followTool(b.net.spawn(null, cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } }))
}

/** Runs fix-tcp (or waits for one `started`) to a clean exit; its `end` event's data as `end`. */
export async function runFixTcp(b: FixBed, args: string[], io: 'xdp' | 'socket' | null, started?: ToolRun, env: Record<string, string> = {}): Promise<ToolRun & { end: Record<string, any> }> {
  const run = started ?? startFixTcp(b, args, io, env)
  const exit = await run.exited
  if (exit.code !== 0) throw new Error(`fix-tcp exited ${JSON.stringify(exit)}: ${run.stderr()}`)
  const end = run.events.find((e) => e.event === 'end')?.data
  if (end === undefined) throw new Error(`no end event: ${run.stderr()}`)
  return { ...run, end }
}

export const named = (r: ToolRun, event: string) => r.events.filter((e) => e.event === event)

/** `bpftool -j KIND show`: tried again when an object vanished while bpftool walked the ids (other tests run at once). */
function bpftoolShow(b: FixBed, kind: 'link' | 'prog'): string {
  for (let attempt = 1; ; attempt++) {
    try {
      return b.net.run(null, 'bpftool', ['-j', kind, 'show'])
    } catch (err) {
      if (attempt === 3) throw err
    }
  }
}

/**
 * No XDP program on fix-tcp's interface, and (for runs over --io xdp) neither the bpf_link nor the steering
 * program a run reported in its start event is still in the kernel.
 */
export function nothingAttached(t: Test, b: FixBed, runs: ToolRun[] = []): void {
  const link = JSON.parse(b.net.run(null, 'ip', ['-j', '-d', 'link', 'show', 'dev', b.iface])) as { xdp?: unknown }[]
  t.equal(link[0]?.xdp, undefined, 'no XDP program left on the interface')
  const ids = (kind: 'link' | 'prog') => new Set((JSON.parse(bpftoolShow(b, kind)) as { id: number }[]).map((x) => x.id))
  const links = ids('link')
  const programs = ids('prog')
  for (const run of runs) {
    const xdp = run.events.find((e) => e.event === 'start')?.data.xdp as { linkId: number; progId: number } | undefined
    if (xdp === undefined) continue
    t.notOk(links.has(xdp.linkId), `bpf_link ${xdp.linkId} is gone`)
    t.notOk(programs.has(xdp.progId), `steering program ${xdp.progId} is gone`)
  }
}

const APP_MSG_TYPES = new Set(['D', 'F', 'G', 'H'])

/** Application messages fix-tcp (CLIENT1) sent, from QuickFIX's message log (--log): count per SendingTime second. */
export function appMessagesPerSecond(b: FixBed): Map<string, number> {
  const dir = join(b.dir, 'quickfix-log')
  const perSecond = new Map<string, number>()
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.messages.current.log'))) {
    for (const line of readFileSync(join(dir, file), 'latin1').split('\n')) {
      const fields = new Map(line.split('\x01').map((f) => [f.slice(0, f.indexOf('=')).replace(/^.* : /, ''), f.slice(f.indexOf('=') + 1)]))
      if (fields.get('49') !== 'CLIENT1' || !APP_MSG_TYPES.has(fields.get('35') ?? '')) continue
      const second = (fields.get('52') ?? '').slice(0, 17)
      perSecond.set(second, (perSecond.get(second) ?? 0) + 1)
    }
  }
  return perSecond
}
