// xdp-load load --dispatcher auto|kbx|libxdp on real veths. This kernel refuses freplace, so libxdp's
// dispatcher never works here: these tests cover its refusal, auto's fallback to kbx's dispatcher, and an
// interface that already carries a program named xdp_dispatcher. The attach through libxdp is untested.
import { execFileSync, spawnSync } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import type { Test } from 'tap'
import { BpfMap, xdpAttachmentOf } from '@kbx/bpf'
import { bpfObjectPath } from '@kbx/ffi'
import { withTestNet } from '@kbx/testbed'

const here = dirname(fileURLToPath(import.meta.url))
const entry = join(here, 'bin.ts')
const pinRoot = `/sys/fs/bpf/kbx-test-libxdp-${process.pid}`
const stateDir = `/tmp/kbx-test-libxdp-state-${process.pid}`
const UDP_DROPPED = 9001 // test_count_udp_drop's default udp_port
const UDP_OPEN = 9003
const DATAGRAMS = 20

interface Run {
  code: number | null
  events: { event: string; tool: string; data: Record<string, any> }[]
  logs: { level: number; msg: string }[]
  stderr: string
}

function xdpLoad(...args: string[]): Run {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--conditions=kbx-source', entry, ...args], {
    encoding: 'utf8',
    env: { ...process.env, KBX_PIN_ROOT: pinRoot, KBX_STATE_DIR: stateDir },
  })
  const json = (text: string) => text.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l))
  return { code: r.status, events: json(r.stdout), logs: json(r.stderr), stderr: r.stderr }
}

// libxdp's probe and `ip link set … xdpgeneric obj` may create these; remove the ones that were not there.
const bpffsDirs = ['/sys/fs/bpf/xdp', '/sys/fs/bpf/ip', '/sys/fs/bpf/tc'].filter((d) => !existsSync(d))
t.teardown(() => {
  rmSync(pinRoot, { recursive: true, force: true })
  rmSync(stateDir, { recursive: true, force: true })
  for (const dir of bpffsDirs) rmSync(dir, { recursive: true, force: true })
})

function nothingLeft(t: Test, iface: string, opts: { iproute2Ran?: boolean } = {}): void {
  t.same(xdpAttachmentOf(iface).programs, [], `no XDP program on ${iface}`)
  t.notOk(existsSync(join(pinRoot, 'xdp', iface)), 'no kbx pins')
  t.notOk(existsSync(stateDir) && readdirSync(stateDir).length > 0, 'no kbx state')
  if (bpffsDirs.includes('/sys/fs/bpf/xdp') && !opts.iproute2Ran) t.notOk(existsSync('/sys/fs/bpf/xdp'), "no libxdp pin directory left by the probe")
}

t.test('--dispatcher libxdp: a clear error with errno and libxdp\'s reason, exit 1, nothing attached', async (t) => {
  const net = withTestNet(t)
  const { a } = net.addVethPair({ addresses: false })
  const r = xdpLoad('load', a.name, bpfObjectPath('test_foreign_pass'), bpfObjectPath('test_count_udp_drop'), '--mode', 'skb', '--dispatcher', 'libxdp')
  t.equal(r.code, 1, r.stderr)
  const error = r.events.find((e) => e.event === 'error')?.data
  t.match(error?.message, new RegExp(`libxdp's dispatcher does not work on ${a.name}`))
  t.ok(error !== undefined && Number.isInteger(error.errno) && Number(error.errno) > 0, `an errno (${error?.errno} ${error?.code})`)
  t.match(error?.message, /libxdp: .+/, "libxdp's own reason")
  t.match(error?.message, /xdp_program__attach_multi/, 'the libxdp call that failed')
  t.equal(error?.hint, '--dispatcher kbx (or auto) works without freplace')
  nothingLeft(t, a.name)

  const bad = xdpLoad('load', a.name, bpfObjectPath('test_foreign_pass'), '--dispatcher', 'both')
  t.equal(bad.code, 2, 'an unknown kind is a usage error')
  t.same(xdpAttachmentOf(a.name).programs, [])

  const bare = xdpLoad('load', a.name, '--dispatcher', bpfObjectPath('test_foreign_pass'), '--mode', 'skb')
  t.equal(bare.code, 0, `a bare --dispatcher (auto) before an object: ${bare.stderr}`)
  t.same(bare.events[0]?.data.chain.map((c: { name: string }) => c.name), ['foreign_pass'])
  t.ok(bare.logs.some((l) => /libxdp's dispatcher not used/.test(l.msg)), 'auto probed libxdp for the one program')
  t.equal(xdpLoad('unload', a.name).code, 0)
  nothingLeft(t, a.name)
})

t.test('auto: logs why libxdp\'s dispatcher was not used and runs the programs through kbx\'s', async (t) => {
  const net = withTestNet(t)
  const { netns, local } = net.addLinkedNamespace()
  const iface = local.name
  const received = new Map([[UDP_DROPPED, 0], [UDP_OPEN, 0]])
  for (const port of received.keys()) {
    const s = createSocket('udp4')
    s.on('message', () => received.set(port, received.get(port)! + 1))
    await new Promise<void>((resolve) => s.bind(port, local.ip!, resolve))
    t.teardown(() => s.close())
  }

  const r = xdpLoad('load', iface, bpfObjectPath('test_foreign_pass'), bpfObjectPath('test_count_udp_drop'), '--mode', 'skb')
  t.equal(r.code, 0, r.stderr)
  const why = r.logs.filter((l) => l.level === 30 && /libxdp's dispatcher not used/.test(l.msg))
  t.equal(why.length, 1, 'one info line says why')
  t.match(why[0]?.msg, /\(errno \d+\)/, 'with the errno')
  t.match(why[0]?.msg, /libxdp: .+/, "and libxdp's reason")
  const loaded = r.events.find((e) => e.event === 'load')?.data
  t.equal(loaded?.program.name, 'kbx_dispatcher', "kbx's dispatcher runs the chain")
  t.same(loaded?.chain.map((c: { name: string }) => c.name), ['foreign_pass', 'count_udp_drop'])
  t.same(xdpAttachmentOf(iface).programs.map((p) => p.progId), [loaded?.program.id])

  const sender = `const s = require('node:dgram').createSocket('udp4'); let i = 0
    const tick = () => { for (const p of [${UDP_DROPPED}, ${UDP_OPEN}]) s.send('x', p, '${local.ip}'); if (++i < ${DATAGRAMS}) setTimeout(tick, 10); else setTimeout(() => s.close(), 50) }
    tick()`
  const sent = await net.exec(netns, process.execPath, ['-e', sender])
  t.equal(sent.code, 0, sent.stderr)
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.equal(received.get(UDP_DROPPED), 0, 'count_udp_drop drops its port')
  t.ok(received.get(UDP_OPEN)! >= DATAGRAMS - 2, `other UDP passes both programs (${received.get(UDP_OPEN)})`)
  const drops = BpfMap.fromPin(join(pinRoot, 'xdp', iface, 'maps', 'udp_drops'))
  t.teardown(() => drops.close())
  t.ok(drops.lookup(Buffer.alloc(4))!.readBigUInt64LE(0) >= BigInt(DATAGRAMS - 2), 'and counts the drops')

  const kbxOnly = xdpLoad('load', iface, '--dispatcher', 'kbx', bpfObjectPath('test_count_tcp_drop'))
  t.equal(kbxOnly.code, 0, kbxOnly.stderr)
  t.notOk(kbxOnly.logs.some((l) => /libxdp/.test(l.msg)), '--dispatcher kbx: libxdp not probed')
  const libxdpOnKbx = xdpLoad('load', iface, bpfObjectPath('test_count_tcp_drop'), '--dispatcher', 'libxdp')
  t.equal(libxdpOnKbx.code, 1)
  t.match(libxdpOnKbx.events[0]?.data.message, /carries kbx's dispatcher/)

  t.equal(xdpLoad('unload', iface).code, 0)
  nothingLeft(t, iface)
})

t.test("an interface carrying a program named xdp_dispatcher: status says libxdp, kbx's dispatcher refuses to go on top", async (t) => {
  const net = withTestNet(t)
  const { a } = net.addVethPair({ addresses: false })
  const dir = mkdtempSync(join(tmpdir(), 'kbx-libxdp-fake-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(
    join(dir, 'd.c'),
    '#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\nSEC("xdp") int xdp_dispatcher(struct xdp_md *ctx) { return XDP_PASS; }\nchar LICENSE[] SEC("license") = "GPL";\n',
  )
  execFileSync('clang', ['-O2', '-g', '-target', 'bpf', '-I/usr/include/x86_64-linux-gnu', '-c', join(dir, 'd.c'), '-o', join(dir, 'd.o')])
  execFileSync('ip', ['link', 'set', 'dev', a.name, 'xdpgeneric', 'obj', join(dir, 'd.o'), 'sec', 'xdp'])

  const status = xdpLoad('status', a.name, '-j')
  t.equal(status.code, 0, status.stderr)
  const prog = status.events[0]?.data.interfaces[0].programs[0]
  t.equal(prog?.owner, 'libxdp')
  t.equal(prog?.libxdp?.loadedByKbx, false)
  t.equal(prog?.libxdp?.legacy, true, 'libxdp itself finds no dispatcher configuration in it')

  const kbxOnTop = xdpLoad('load', a.name, bpfObjectPath('test_foreign_pass'), bpfObjectPath('test_count_udp_drop'), '--dispatcher', 'kbx')
  t.equal(kbxOnTop.code, 1, kbxOnTop.stderr)
  t.match(kbxOnTop.events[0]?.data.message, /carries libxdp's dispatcher/)
  t.match(kbxOnTop.events[0]?.data.hint, /xdp-loader unload/)
  t.equal(xdpAttachmentOf(a.name).programs[0]?.name, 'xdp_dispatcher', 'left as it was')

  const unloadRefused = xdpLoad('unload', a.name)
  t.equal(unloadRefused.code, 1, 'not loaded by kbx: unload wants --force')
  t.match(unloadRefused.events[0]?.data.hint, /--force/)
  const forced = xdpLoad('unload', a.name, '--force')
  t.equal(forced.code, 0, forced.stderr)
  t.equal(forced.events[0]?.data.dispatcher, 'libxdp', 'detached through libxdp')
  nothingLeft(t, a.name, { iproute2Ran: true })
})
