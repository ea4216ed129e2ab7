import { spawnSync } from 'node:child_process'
import { createSocket, type Socket } from 'node:dgram'
import { existsSync, readdirSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { BpfMap, xdpAttachmentOf } from '@kbx/bpf'
import { bpfObjectPath } from '@kbx/ffi'
import { withTestNet } from '@kbx/testbed'
import type { TestNet } from '@kbx/testbed'

const here = dirname(fileURLToPath(import.meta.url))
const entry = join(here, 'bin.ts')
const pinRoot = `/sys/fs/bpf/kbx-test-dispatch-${process.pid}`
const stateDir = `/tmp/kbx-test-dispatch-state-${process.pid}`

const UDP_DROPPED = 9001 // test_count_udp_drop's default udp_port
const TCP_DROPPED = 9002 // test_count_tcp_drop's default tcp_port
const UDP_OPEN = 9003
const TCP_OPEN = 9004
const DATAGRAMS = 20

interface Run {
  code: number | null
  events: { event: string; tool: string; data: Record<string, any> }[]
  stderr: string
}

function xdpLoad(...args: string[]): Run {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--conditions=kbx-source', entry, ...args], {
    encoding: 'utf8',
    env: { ...process.env, KBX_PIN_ROOT: pinRoot, KBX_STATE_DIR: stateDir },
  })
  const events = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l))
  return { code: r.status, events, stderr: r.stderr }
}

t.teardown(() => {
  rmSync(pinRoot, { recursive: true, force: true })
  rmSync(stateDir, { recursive: true, force: true })
})

/** Sum of a u64 counter at key 0 of a pinned map (over every CPU for a per-CPU map). */
function counter(iface: string, map: string): bigint {
  const m = BpfMap.fromPin(join(pinRoot, 'xdp', iface, 'maps', map))
  try {
    const key = Buffer.alloc(4)
    const values = m.type.startsWith('percpu') ? m.lookupPerCpu(key)! : [m.lookup(key)!]
    return values.reduce((sum, v) => sum + v.readBigUInt64LE(0), 0n)
  } finally {
    m.close()
  }
}

/** Sends DATAGRAMS datagrams to each UDP port and tries one TCP connection to each TCP port, from inside netns. */
const SENDER = `
const dgram = require('node:dgram'), net = require('node:net')
const [ip, udpPorts, tcpPorts, count] = process.argv.slice(1)
const s = dgram.createSocket('udp4')
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const connect = (port) => new Promise((resolve) => {
  const c = net.connect({ host: ip, port: Number(port) })
  const done = (ok) => { c.destroy(); resolve(ok) }
  c.setTimeout(2500, () => done(false))
  c.on('connect', () => done(true))
  c.on('error', () => done(false))
})
;(async () => {
  for (let i = 0; i < Number(count); i++) {
    for (const port of udpPorts.split(',')) s.send('kbx-dispatch-' + i, Number(port), ip)
    await sleep(10)
  }
  const tcp = {}
  for (const port of tcpPorts.split(',')) tcp[port] = await connect(port)
  s.close()
  process.stdout.write(JSON.stringify({ tcp }) + '\\n')
})()
`

interface Listeners {
  udp: Map<number, number>
  tcpAccepted: Map<number, number>
  close: () => void
}

async function listen(ip: string): Promise<Listeners> {
  const udp = new Map<number, number>()
  const tcpAccepted = new Map<number, number>()
  const sockets: Socket[] = []
  const servers: Server[] = []
  for (const port of [UDP_DROPPED, UDP_OPEN]) {
    udp.set(port, 0)
    const s = createSocket('udp4')
    s.on('message', () => udp.set(port, (udp.get(port) ?? 0) + 1))
    await new Promise<void>((resolve) => s.bind(port, ip, resolve))
    sockets.push(s)
  }
  for (const port of [TCP_DROPPED, TCP_OPEN]) {
    tcpAccepted.set(port, 0)
    const server = createServer((c) => {
      tcpAccepted.set(port, (tcpAccepted.get(port) ?? 0) + 1)
      c.destroy()
    })
    await new Promise<void>((resolve) => server.listen(port, ip, resolve))
    servers.push(server)
  }
  return {
    udp,
    tcpAccepted,
    close: () => {
      for (const s of sockets) s.close()
      for (const s of servers) s.close()
    },
  }
}

async function sendBoth(net: TestNet, netns: string, ip: string): Promise<{ tcp: Record<string, boolean> }> {
  const r = await net.exec(netns, process.execPath, ['-e', SENDER, ip, `${UDP_DROPPED},${UDP_OPEN}`, `${TCP_DROPPED},${TCP_OPEN}`, String(DATAGRAMS)])
  if (r.code !== 0) throw new Error(`sender failed: ${r.stderr}`)
  await new Promise((resolve) => setTimeout(resolve, 300)) // the last datagrams reach the sockets
  return JSON.parse(r.stdout.trim()) as { tcp: Record<string, boolean> }
}

t.test('three programs chained on one veth each decide their own traffic; removing one leaves the others', async (t) => {
  const net = withTestNet(t)
  const { netns, local, remote } = net.addLinkedNamespace()
  const iface = local.name
  const listeners = await listen(local.ip!)
  t.teardown(listeners.close)

  const load = xdpLoad('load', iface, bpfObjectPath('test_foreign_pass'), bpfObjectPath('test_count_udp_drop'), bpfObjectPath('test_count_tcp_drop'), '--mode', 'skb')
  t.equal(load.code, 0, load.stderr)
  const loaded = load.events.find((e) => e.event === 'load')?.data
  t.equal(loaded?.program.name, 'kbx_dispatcher')
  t.same(loaded?.chain.map((c: { name: string }) => c.name), ['foreign_pass', 'count_udp_drop', 'count_tcp_drop'])
  t.same(loaded?.chain.map((c: { priority: number }) => c.priority), [10, 20, 30])
  t.same(loaded?.maps.map((m: { name: string }) => m.name).sort(), ['seen', 'tcp_drops', 'udp_drops'])
  t.same(xdpAttachmentOf(iface).programs.map((p) => p.progId), [loaded?.program.id], 'one program on the interface: the dispatcher')

  const status = xdpLoad('status', iface, '--json')
  t.equal(status.code, 0, status.stderr)
  const prog = status.events[0]?.data.interfaces[0].programs[0]
  t.equal(prog.owner, 'xdp-load')
  t.same(prog.chain.map((c: { name: string; priority: number }) => `${c.name}@${c.priority}`), ['foreign_pass@10', 'count_udp_drop@20', 'count_tcp_drop@30'])
  t.match(prog.chain[1].object, /test_count_udp_drop\.o$/)
  const table = xdpLoad('status', iface, '--no-json')
  t.equal(table.code, 0)

  const first = await sendBoth(net, netns, local.ip!)
  t.equal(listeners.udp.get(UDP_DROPPED), 0, 'UDP to the dropped port never arrives')
  t.ok(listeners.udp.get(UDP_OPEN)! >= DATAGRAMS - 2, `UDP to another port arrives (${listeners.udp.get(UDP_OPEN)})`)
  t.equal(first.tcp[String(TCP_DROPPED)], false, 'TCP to the dropped port does not connect')
  t.equal(first.tcp[String(TCP_OPEN)], true, 'TCP to another port connects')
  t.equal(listeners.tcpAccepted.get(TCP_DROPPED), 0)
  t.ok(counter(iface, 'udp_drops') >= BigInt(DATAGRAMS - 2), 'count_udp_drop counted its drops')
  t.equal(counter(iface, 'udp_drops') <= BigInt(DATAGRAMS), true, 'and only its own port')
  t.ok(counter(iface, 'tcp_drops') >= 1n, 'count_tcp_drop counted the SYNs it dropped')
  const seenBefore = counter(iface, 'seen')
  t.ok(seenBefore >= BigInt(2 * DATAGRAMS), 'the foreign program first in line saw every frame and passed it on')

  const removed = xdpLoad('unload', iface, '--prog', 'count_udp_drop')
  t.equal(removed.code, 0, removed.stderr)
  t.same(removed.events[0]?.data.chain.map((c: { name: string }) => c.name), ['foreign_pass', 'count_tcp_drop'])
  t.same(removed.events[0]?.data.unpinnedMaps, ['udp_drops'])
  t.notOk(existsSync(join(pinRoot, 'xdp', iface, 'maps', 'udp_drops')), 'its map unpinned')
  const tcpDropsBefore = counter(iface, 'tcp_drops')
  t.ok(tcpDropsBefore >= 1n, 'the others kept their maps (and counts) across the rebuild')

  const udpOpenBefore = listeners.udp.get(UDP_OPEN)!
  const second = await sendBoth(net, netns, local.ip!)
  t.ok(listeners.udp.get(UDP_DROPPED)! >= DATAGRAMS - 2, 'UDP to 9001 arrives now that its dropper is gone')
  t.ok(listeners.udp.get(UDP_OPEN)! - udpOpenBefore >= DATAGRAMS - 2, 'other UDP still arrives')
  t.equal(second.tcp[String(TCP_DROPPED)], false, 'the TCP dropper still drops')
  t.equal(second.tcp[String(TCP_OPEN)], true)
  t.ok(counter(iface, 'tcp_drops') > tcpDropsBefore, 'and still counts')
  t.ok(counter(iface, 'seen') >= seenBefore + BigInt(2 * DATAGRAMS), 'the foreign program still sees everything')

  const unknown = xdpLoad('unload', iface, '--prog', 'nosuch')
  t.equal(unknown.code, 2, 'unknown component: usage error')
  t.match(unknown.events[0]?.data.hint, /foreign_pass, count_tcp_drop/)

  for (const name of ['count_tcp_drop', 'foreign_pass']) t.equal(xdpLoad('unload', iface, '--prog', name).code, 0)
  t.same(xdpAttachmentOf(iface).programs, [], 'the last component took the dispatcher with it')
  t.notOk(existsSync(join(pinRoot, 'xdp', iface)), 'no pins left')
  t.notOk(existsSync(stateDir) && readdirSync(stateDir).length > 0, 'no chain state left')
})

t.test('adding to a running chain, priorities, and the refusals', async (t) => {
  const net = withTestNet(t)
  const { a } = net.addVethPair({ addresses: false })

  const badPriority = xdpLoad('load', a.name, bpfObjectPath('test_foreign_pass'), bpfObjectPath('test_count_udp_drop'), '--priority', '5')
  t.equal(badPriority.code, 2, 'one priority for two objects')
  const notXdp = xdpLoad('load', a.name, bpfObjectPath('test_foreign_pass'), bpfObjectPath('test_reorder'))
  t.equal(notXdp.code, 2, 'an object without an XDP program')
  t.match(notXdp.events[0]?.data.message, /no XDP program/)
  t.same(xdpAttachmentOf(a.name).programs, [], 'nothing attached after refusals')

  t.equal(xdpLoad('load', a.name, bpfObjectPath('test_foreign_pass'), '--dispatcher', '--mode', 'skb').code, 0, 'one program through the dispatcher')
  const added = xdpLoad('load', a.name, bpfObjectPath('test_count_tcp_drop'), '--priority', '5')
  t.equal(added.code, 0, added.stderr)
  const data = added.events[0]?.data
  t.same(data?.added, ['count_tcp_drop'])
  t.same(data?.chain.map((c: { name: string }) => c.name), ['count_tcp_drop', 'foreign_pass'], 'priority 5 runs before 10')
  t.same(xdpAttachmentOf(a.name).programs.map((p) => p.progId), [data?.program.id], 'the link now runs the rebuilt dispatcher')

  const twice = xdpLoad('load', a.name, bpfObjectPath('test_count_tcp_drop'))
  t.equal(twice.code, 2, 'a name already in the chain')
  t.match(twice.events[0]?.data.hint, /--prog count_tcp_drop/)

  const kbxOwn = xdpLoad('load', a.name, `${bpfObjectPath('xdp_xsk_redirect')}:kbx_xsk_redirect`)
  t.equal(kbxOwn.code, 0, `a kbx program with an XSKMAP joins the chain: ${kbxOwn.stderr}`)
  t.same(kbxOwn.events[0]?.data.chain.map((c: { name: string }) => c.name), ['count_tcp_drop', 'foreign_pass', 'kbx_xsk_redirect'])

  const all = xdpLoad('unload', a.name)
  t.equal(all.code, 0, all.stderr)
  t.same(xdpAttachmentOf(a.name).programs, [], 'unload without --prog removes the whole chain')
  t.notOk(existsSync(join(stateDir, 'xdp', a.name)), 'and its state')
})
