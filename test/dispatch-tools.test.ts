// kbx tools beside a foreign program on one interface through kbx's dispatcher: xdp-load puts a dispatcher
// (with a foreign-style UDP dropper) on the interface; the tool joins the chain as it starts (its maps,
// XSKMAP redirect included, are its own), gets all of its traffic while the foreign program keeps dropping
// and counting its own, and leaves the chain on exit. (Two AF_XDP tools on one single-queue interface cannot
// run at once whatever the XDP side does: a queue takes one AF_XDP socket per UMEM — README, xdp-load.)
import { spawnSync } from 'node:child_process'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import { BpfMap, xdpAttachmentOf } from '@kbx/bpf'
import { bpfObjectPath, repoRoot } from '@kbx/ffi'
import { waitUntil, withTestNet } from '@kbx/testbed'
import type { ToolRun } from '@kbx/testbed'
import { abBed, runFeedOnBed, startArbitrator } from './testing/ab-bed.js'
import { readChain } from '@kbx/xdp-load'
import { fixBed, named, runFixTcp, startFixTcp } from './testing/fix-bed.js'

t.setTimeout(240_000)

// Every tool this test starts inherits these: the dispatcher's pins and chain, apart from anyone else's.
const env = { KBX_PIN_ROOT: `/sys/fs/bpf/kbx-test-tools-${process.pid}`, KBX_STATE_DIR: `/tmp/kbx-test-tools-state-${process.pid}` }
Object.assign(process.env, env)
t.teardown(() => {
  rmSync(env.KBX_PIN_ROOT, { recursive: true, force: true })
  rmSync(env.KBX_STATE_DIR, { recursive: true, force: true })
})

function xdpLoad(...args: string[]): { code: number | null; data: Record<string, any> | undefined; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--conditions=kbx-source', join(repoRoot, 'packages/xdp-load/src/bin.ts'), ...args], {
    encoding: 'utf8',
    env: process.env,
  })
  const line = r.stdout.split('\n').find((l) => l.startsWith('{'))
  return { code: r.status, data: line ? JSON.parse(line).data : undefined, stderr: r.stderr }
}

/** The chain as `xdp-load status` shows it. */
function chainOn(iface: string): string[] {
  const status = xdpLoad('status', iface, '--json')
  return (status.data?.interfaces[0]?.programs[0]?.chain ?? []).map((c: { name: string }) => c.name)
}

/** The chain's state file, read directly: cheap enough to poll. */
const chainNow = (iface: string): string[] => (readChain(iface)?.components ?? []).map((c) => c.name)

function udpDrops(iface: string): bigint {
  const map = BpfMap.fromPin(join(env.KBX_PIN_ROOT, 'xdp', iface, 'maps', 'udp_drops'))
  try {
    return map.lookup(Buffer.alloc(4))!.readBigUInt64LE(0)
  } finally {
    map.close()
  }
}

/** Sends `count` UDP datagrams to port 9001 (test_count_udp_drop's) from netns to ip. */
const SEND_9001 = `
const s = require('node:dgram').createSocket('udp4')
const [ip, count] = process.argv.slice(1)
let sent = 0
const tick = setInterval(() => { s.send('drop me', 9001, ip); if (++sent === Number(count)) { clearInterval(tick); setTimeout(() => s.close(), 50) } }, 5)
`

/** Stops ab-arbitrate once it delivered the union ab-feed reports, and checks it delivered exactly that, once each. */
async function unionDelivered(t: Test, arb: ToolRun, feed: ToolRun, what: string): Promise<void> {
  const truth = feed.events.find((e) => e.event === 'end')?.data
  t.ok(truth, feed.stderr())
  await waitUntil('every packet of the union delivered', () => arb.events.some((e) => e.event === 'interval' && e.data['delivered'] >= truth!['union']), 30_000).catch(() => {})
  arb.child.kill('SIGINT')
  t.same(await arb.exited, { code: 0, signal: null }, arb.stderr())
  const end = arb.events.find((e) => e.event === 'end')!.data
  t.equal(end['delivered'], truth!['union'], what)
  t.equal(end['duplicatesDelivered'], 0)
}

t.test('fix-tcp joins the dispatcher beside a foreign program, gets its connection, and leaves on exit', async (t) => {
  const b = await fixBed(t)
  const load = xdpLoad('load', b.iface, bpfObjectPath('test_count_udp_drop'), '--dispatcher', '--mode', 'skb')
  t.equal(load.code, 0, load.stderr)
  const dispatcherLink = load.data?.link.id

  // 8 s of orders: time for `xdp-load status` (a node start under tsx) to see the chain while it runs.
  const fix = startFixTcp(b, ['--orders', '16000', '--rate', '2000', '--reset', '--mode', 'skb'], 'xdp')
  await waitUntil('fix-tcp to join the chain', () => chainNow(b.iface).length === 2 || fix.child.exitCode !== null, 30_000)
  const together = chainOn(b.iface)
  t.equal(together[0], 'count_udp_drop', 'the foreign program first')
  t.match(together[1], /^kbx_fix_steer_k\d+$/, 'fix-tcp joined as a component named for its process')
  t.equal(xdpAttachmentOf(b.iface).programs.length, 1, 'one program on the interface: the dispatcher')
  const udp = b.net.exec(b.netns, process.execPath, ['-e', SEND_9001, b.localIp, '200'])

  const run = await runFixTcp(b, [], 'xdp', fix)
  t.equal(run.end.orders.acked, 16000, 'every order acked: its steering (XSKMAP redirect) ran inside the dispatcher')
  t.equal(run.end.closed, 'logout')
  t.equal(named(run, 'start')[0]?.data.xdp?.linkId, dispatcherLink, "it reports the dispatcher's bpf_link")
  t.equal((await udp).code, 0)
  t.ok(udpDrops(b.iface) >= 190n, `the foreign program dropped its UDP meanwhile (${udpDrops(b.iface)})`)
  t.same(chainOn(b.iface), ['count_udp_drop'], 'fix-tcp left the chain; the foreign program runs on')

  t.equal(xdpLoad('unload', b.iface).code, 0)
  t.same(xdpAttachmentOf(b.iface).programs, [], 'nothing left on the interface')
})

t.test('ab-arbitrate: line A through the dispatcher beside a foreign program, line B on its own link', async (t) => {
  const net = withTestNet(t)
  const bed = abBed(net)
  const load = xdpLoad('load', bed.dstA.name, bpfObjectPath('test_count_udp_drop'), '--dispatcher', '--mode', 'skb')
  t.equal(load.code, 0, load.stderr)

  const arb = await startArbitrator(net, bed, ['--mode', 'skb'])
  t.match(chainOn(bed.dstA.name)[1], /^kbx_ab_arbitrate_k\d+$/, 'ab-arbitrate joined line A\'s chain')
  t.equal(xdpAttachmentOf(bed.dstB.name).programs[0]?.name, 'kbx_ab_arbitrat', 'line B: its own program, directly (the kernel keeps 15 characters of a name)')
  const feed = await runFeedOnBed(net, bed, ['--dst-a', bed.dstA.ip!, '--dst-b', bed.dstB.ip!, '--count', '3000', '--rate', '3000', '--seed', '7', '--gap', '0.01', '--loss-a', '0.05', '--loss-b', '0.05'])
  await unionDelivered(t, arb, feed, 'the union of both lines delivered: what line A lost, B filled, and the reverse')
  t.same(chainOn(bed.dstA.name), ['count_udp_drop'], 'ab-arbitrate left the chain on exit')
  t.same(xdpAttachmentOf(bed.dstB.name).programs, [], "line B's link went with it")
  t.equal(xdpLoad('unload', bed.dstA.name).code, 0)
  t.same(xdpAttachmentOf(bed.dstA.name).programs, [])
})

t.test('a tool killed with SIGKILL leaves its component behind: status says its owner is gone, unload --prog removes it', async (t) => {
  const net = withTestNet(t)
  const bed = abBed(net)
  t.equal(xdpLoad('load', bed.dstA.name, bpfObjectPath('test_foreign_pass'), '--dispatcher', '--mode', 'skb').code, 0)
  const arb = await startArbitrator(net, bed, ['--mode', 'skb'])
  const name = chainNow(bed.dstA.name)[1]
  t.match(name, /^kbx_ab_arbitrate_k\d+$/)
  arb.child.kill('SIGKILL')
  await arb.exited
  t.same(chainNow(bed.dstA.name), ['foreign_pass', name], 'the component stays: nobody removed it')
  const status = xdpLoad('status', bed.dstA.name, '--json')
  const killed = status.data?.interfaces[0]?.programs[0]?.chain[1]
  t.same(killed?.owner, { tool: 'ab-arbitrate', pid: arb.child.pid, alive: false }, 'status names its owner, gone')
  t.same(xdpAttachmentOf(bed.dstB.name).programs, [], "line B's own link died with the process")
  const removed = xdpLoad('unload', bed.dstA.name, '--prog', name!)
  t.equal(removed.code, 0, removed.stderr)
  t.same(chainNow(bed.dstA.name), ['foreign_pass'])
  t.equal(xdpLoad('unload', bed.dstA.name).code, 0)
  t.same(xdpAttachmentOf(bed.dstA.name).programs, [])
})

t.test('fix-tcp and ab-arbitrate on ONE interface at the same time, each on its own queue, beside a foreign program', async (t) => {
  // Two queues on fix-tcp's interface (ab's line A): the namespace's kernel sends everything (the FIX
  // session) out of tx queue 1, so it arrives on rx queue 1 (veth: the sender's queue), where fix-tcp binds;
  // ab-feed sends line A over AF_XDP on queue 0, where ab-arbitrate binds (--queue 0).
  const b = await fixBed(t, { queues: 2 })
  const cpus = Number(b.net.run(null, 'nproc', []).trim())
  const allCpus = ((1n << BigInt(cpus)) - 1n).toString(16)
  b.net.run(b.netns, 'sh', ['-c', `echo 0 > /sys/class/net/${b.remoteIface}/queues/tx-0/xps_cpus && echo ${allCpus} > /sys/class/net/${b.remoteIface}/queues/tx-1/xps_cpus`])
  const lineB = b.net.addVethPair({ b: { netns: b.netns } })
  const bed = { ns: b.netns, dstA: { ...lineB.a, name: b.iface, ip: b.localIp }, srcA: { ...lineB.b, name: b.remoteIface }, dstB: lineB.a, srcB: lineB.b }

  t.equal(xdpLoad('load', b.iface, bpfObjectPath('test_count_udp_drop'), '--dispatcher').code, 0)
  const arb = await startArbitrator(b.net, bed, ['--queue', '0'])
  await waitUntil('ab-arbitrate to join', () => chainNow(b.iface).length === 2)
  const fix = startFixTcp(b, ['--orders', '16000', '--rate', '2000', '--reset', '--queue', '1'], 'xdp')
  await waitUntil('fix-tcp to join', () => chainNow(b.iface).length === 3 || fix.child.exitCode !== null, 30_000)
  const together = chainOn(b.iface)
  t.same(together.map((n) => n.replace(/_k\d+$/, '')), ['count_udp_drop', 'kbx_ab_arbitrate', 'kbx_fix_steer'], 'three programs on one interface: a foreign one and two kbx tools')

  const [feed, fixRun] = await Promise.all([
    runFeedOnBed(b.net, bed, ['--dst-a', b.localIp, '--dst-b', lineB.a.ip!, '--count', '3000', '--rate', '3000', '--seed', '7', '--gap', '0.01', '--loss-a', '0.05', '--loss-b', '0.05']),
    runFixTcp(b, [], 'xdp', fix),
  ])
  t.equal(fixRun.end.orders.acked, 16000, 'fix-tcp: every order acked')
  await unionDelivered(t, arb, feed, 'ab-arbitrate: the union of both lines delivered at the same time')
  t.same(chainNow(b.iface), ['count_udp_drop'], 'both left; the foreign program runs on')
  t.equal(xdpLoad('unload', b.iface).code, 0)
  t.same(xdpAttachmentOf(b.iface).programs, [])
})
