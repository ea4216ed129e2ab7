import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { probeFeatures, xdpAttachmentOf } from '@kbx/bpf'
import { bpfObjectPath } from '@kbx/ffi'
import { PcapWriter, buildArpFrame, buildUdp6Frame, buildUdpFrame, readPcap } from '@kbx/net'
import { withTestNet } from '@kbx/testbed'

const here = dirname(fileURLToPath(import.meta.url))
const entry = join(here, 'bin.ts')
const pinRoot = `/sys/fs/bpf/kbx-test-${process.pid}`

interface Run {
  code: number | null
  events: { event: string; tool: string; data: Record<string, any> }[]
  stdout: string
  stderr: string
}

function xdpLoad(...args: string[]): Run {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--conditions=kbx-source', entry, ...args], {
    encoding: 'utf8',
    env: { ...process.env, KBX_PIN_ROOT: pinRoot },
  })
  const events = r.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l))
  return { code: r.status, events, stdout: r.stdout, stderr: r.stderr }
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'kbx-xdp-load-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Drops UDP to port 9, answers everything else UDP by swapping MACs (XDP_TX), passes the rest. */
const SWAP_OR_DROP = `
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
SEC("xdp") int kbx_swap_or_drop(struct xdp_md *ctx) {
  void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
  struct ethhdr *eth = data;
  if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP)) return XDP_PASS;
  struct iphdr *ip = (void *)(eth + 1);
  if ((void *)(ip + 1) > end || ip->ihl != 5 || ip->protocol != IPPROTO_UDP) return XDP_PASS;
  struct udphdr *udp = (void *)(ip + 1);
  if ((void *)(udp + 1) > end) return XDP_PASS;
  if (udp->dest == bpf_htons(9)) return XDP_DROP;
  unsigned char tmp[ETH_ALEN];
  __builtin_memcpy(tmp, eth->h_dest, ETH_ALEN);
  __builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
  __builtin_memcpy(eth->h_source, tmp, ETH_ALEN);
  return XDP_TX;
}
char LICENSE[] SEC("license") = "GPL";
`

const REJECTED = `
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
SEC("xdp") int kbx_unchecked(struct xdp_md *ctx) {
  unsigned char *data = (unsigned char *)(long)ctx->data;
  return data[40] == 1 ? XDP_DROP : XDP_PASS;
}
char LICENSE[] SEC("license") = "GPL";
`

function compile(source: string, name: string): string {
  const dir = tempDir()
  writeFileSync(join(dir, `${name}.c`), source)
  const out = join(dir, `${name}.o`)
  execFileSync('clang', ['-O2', '-g', '-target', 'bpf', '-I/usr/include/x86_64-linux-gnu', '-c', join(dir, `${name}.c`), '-o', out])
  return out
}

t.teardown(() => rmSync(pinRoot, { recursive: true, force: true }))

// `ip link set … xdpgeneric obj` (the foreign program below) creates iproute2's own bpffs dirs.
const iproute2Dirs = ['/sys/fs/bpf/ip', '/sys/fs/bpf/xdp', '/sys/fs/bpf/tc'].filter((d) => !existsSync(d))
t.teardown(() => {
  for (const dir of iproute2Dirs) rmSync(dir, { recursive: true, force: true })
})

t.test('usage errors exit 2 with a clear message', async (t) => {
  const none = xdpLoad()
  t.equal(none.code, 2, 'no command')
  t.match(none.stderr, /usage: xdp-load <command>/)
  const unknown = xdpLoad('frobnicate')
  t.equal(unknown.code, 2)
  t.match(unknown.stderr, /unknown command "frobnicate"/)
  const badOption = xdpLoad('load', 'lo', bpfObjectPath('xdp_pass'), '--mode', 'turbo')
  t.equal(badOption.code, 2, 'bad --mode')
  t.match(badOption.stderr, /turbo/)
  const noIface = xdpLoad('load', 'kbxnosuch0', bpfObjectPath('xdp_pass'))
  t.equal(noIface.code, 2, 'unknown interface')
  t.equal(noIface.events[0]?.event, 'error')
  t.match(noIface.events[0]?.data.message, /unknown interface "kbxnosuch0"/)
  t.match(noIface.events[0]?.data.hint, /ip link/)
  t.equal(noIface.events.length, 1, 'stdout carries only the error event')
  const help = xdpLoad('load', '--help')
  t.equal(help.code, 0)
  t.match(help.stdout, /--mode/)
})

t.test('load, status, reload refused, unload — the attachment outlives the command', async (t) => {
  const net = withTestNet(t)
  const { a } = net.addVethPair({ addresses: false })
  const obj = bpfObjectPath('xdp_xsk_redirect')

  const missing = xdpLoad('load', a.name, '/nonexistent/prog.o')
  t.equal(missing.code, 2, 'missing object file')
  t.match(missing.events[0]?.data.message, /no such object file/)

  const wrongProg = xdpLoad('load', a.name, obj, '--prog', 'nope')
  t.equal(wrongProg.code, 2, 'program not in the object')
  t.match(wrongProg.events[0]?.data.hint, /kbx_xsk_redirect/, 'lists the programs that are there')
  t.same(xdpAttachmentOf(a.name).programs, [], 'nothing attached after failures')

  const load = xdpLoad('load', a.name, obj, '--mode', 'skb')
  t.equal(load.code, 0, load.stderr)
  const loaded = load.events.find((e) => e.event === 'load')?.data
  t.ok(loaded, 'a load event')
  t.equal(loaded?.program.name, 'kbx_xsk_redirect')
  t.equal(loaded?.mode, 'skb')
  t.match(loaded?.program.tag, /^[0-9a-f]{16}$/)
  t.same(loaded?.maps.map((m: { name: string }) => m.name).sort(), ['stats', 'xsk_slots', 'xsks'])
  t.ok(existsSync(loaded?.link.pin), 'link pinned')

  const attached = xdpAttachmentOf(a.name)
  t.equal(attached.programs[0]?.progId, loaded?.program.id, 'still attached after xdp-load exited')
  t.equal(attached.mode, 'skb')

  const status = xdpLoad('status', a.name, '--json')
  t.equal(status.code, 0)
  const prog = status.events[0]?.data.interfaces[0].programs[0]
  t.equal(prog.owner, 'xdp-load')
  t.equal(prog.id, loaded?.program.id)
  t.ok(prog.maps.some((m: { name: string }) => m.name === 'xsks'))

  const table = xdpLoad('status', '--no-json')
  t.match(table.stdout, new RegExp(`${a.name}\\s+skb\\s+${loaded?.program.id}\\s+kbx_xsk_redirec`))

  const again = xdpLoad('load', a.name, obj)
  t.equal(again.code, 1, 'second load refused')
  t.equal(again.events[0]?.data.code, 'EEXIST')
  t.match(again.events[0]?.data.hint, /unload/)

  const unload = xdpLoad('unload', a.name)
  t.equal(unload.code, 0, unload.stderr)
  t.same(unload.events[0]?.data.progIds, [loaded?.program.id])
  t.same(xdpAttachmentOf(a.name).programs, [], 'detached')
  t.notOk(existsSync(join(pinRoot, 'xdp', a.name)), 'pins removed')

  const nothing = xdpLoad('unload', a.name)
  t.equal(nothing.code, 0)
  t.equal(nothing.events[0]?.data.note, 'no XDP program attached')
})

t.test('a program kbx did not attach is left alone unless --force', async (t) => {
  const net = withTestNet(t)
  const { a } = net.addVethPair({ addresses: false })
  execFileSync('ip', ['link', 'set', 'dev', a.name, 'xdpgeneric', 'obj', bpfObjectPath('xdp_pass'), 'sec', 'xdp'])
  const foreignId = xdpAttachmentOf(a.name).programs[0]?.progId
  t.ok(foreignId, 'foreign program attached with ip link')

  const status = xdpLoad('status', a.name, '--json')
  t.equal(status.events[0]?.data.interfaces[0].programs[0].owner, 'kbx', 'a kbx_* program nobody pinned')

  const refused = xdpLoad('unload', a.name)
  t.equal(refused.code, 1)
  t.match(refused.events[0]?.data.message, /did not attach/)
  t.match(refused.events[0]?.data.hint, /--force/)
  t.equal(xdpAttachmentOf(a.name).programs[0]?.progId, foreignId, 'still attached')

  const load = xdpLoad('load', a.name, bpfObjectPath('xdp_pass'))
  t.equal(load.code, 1, 'load onto an occupied interface refused')
  t.match(load.events[0]?.data.message, /kbx did not attach/)

  const forced = xdpLoad('unload', a.name, '--force')
  t.equal(forced.code, 0, forced.stderr)
  t.equal(forced.events[0]?.data.forced, true)
  t.same(xdpAttachmentOf(a.name).programs, [], 'removed with --force')
})

t.test('unload --all removes every kbx attachment', async (t) => {
  const net = withTestNet(t)
  const one = net.addVethPair({ addresses: false })
  const two = net.addVethPair({ addresses: false })
  for (const iface of [one.a.name, two.b.name]) t.equal(xdpLoad('load', iface, bpfObjectPath('xdp_pass')).code, 0)
  const all = xdpLoad('unload', '--all')
  t.equal(all.code, 0, all.stderr)
  t.same(all.events.map((e) => e.data.iface).sort(), [one.a.name, two.b.name].sort())
  t.same(xdpAttachmentOf(one.a.name).programs, [])
  t.same(xdpAttachmentOf(two.b.name).programs, [])
  t.notOk(existsSync(join(pinRoot, 'xdp')), 'no pins left')
  t.equal(xdpLoad('unload').code, 2, 'neither an interface nor --all')
})

t.test('a program the verifier rejects: exit 1 with the log tail', async (t) => {
  const net = withTestNet(t)
  const { a } = net.addVethPair({ addresses: false })
  const r = xdpLoad('load', a.name, compile(REJECTED, 'rejected'))
  t.equal(r.code, 1)
  t.equal(r.events[0]?.event, 'error')
  t.match(r.events[0]?.data.verifierLog, /invalid access to packet/)
  t.same(xdpAttachmentOf(a.name).programs, [], 'nothing attached')
})

t.test('test: verdicts for every packet of a pcap, modified frames written out', async (t) => {
  const dir = tempDir()
  const input = join(dir, 'in.pcap')
  const base = { srcMac: '02:00:00:00:00:01', dstMac: '02:00:00:00:00:02', srcIp: '10.9.0.1', dstIp: '10.9.0.2', srcPort: 4000 }
  const frames = [
    buildUdpFrame({ ...base, dstPort: 8080, payload: Buffer.from('swap me') }),
    buildUdpFrame({ ...base, dstPort: 9, payload: Buffer.from('discard') }),
    buildArpFrame({ op: 'request', senderMac: base.srcMac, senderIp: base.srcIp, targetMac: '00:00:00:00:00:00', targetIp: base.dstIp }),
    buildUdp6Frame({ srcMac: base.srcMac, dstMac: base.dstMac, srcIp: 'fd00::1', dstIp: 'fd00::2', srcPort: 1, dstPort: 2, payload: Buffer.alloc(8) }),
    Buffer.alloc(10),
  ]
  const writer = PcapWriter.open(input)
  frames.forEach((f, i) => writer.write(f, BigInt(i) * 1000n))
  writer.close()

  const out = join(dir, 'out.pcap')
  const r = xdpLoad('test', compile(SWAP_OR_DROP, 'swap'), '--pcap', input, '--out', out)
  t.equal(r.code, 0, r.stderr)
  const packets = r.events.filter((e) => e.event === 'packet').map((e) => e.data)
  t.same(
    packets.map((p) => p.verdict),
    ['tx', 'drop', 'pass', 'pass', 'error'],
  )
  t.equal(packets[0]?.modified, true, 'MACs swapped')
  t.equal(packets[2]?.modified, false)
  t.match(packets[4]?.error, /EINVAL/, 'a runt frame is reported, not fatal')
  const end = r.events.at(-1)
  t.equal(end?.event, 'end')
  t.same(end?.data.verdicts, { tx: 1, drop: 1, pass: 2, error: 1 })
  t.equal(end?.data.written, 3)

  const written = readPcap(out).packets
  t.equal(written.length, 3, 'tx and pass frames written')
  t.same(written[0]?.data.subarray(0, 12), Buffer.concat([frames[0]!.subarray(6, 12), frames[0]!.subarray(0, 6)]), 'as the program left it')
  t.same(written[1]?.data, frames[2])
})

t.test('features: probed on a veth', async (t) => {
  const net = withTestNet(t)
  const { a } = net.addVethPair({ addresses: false })
  const r = xdpLoad('features', a.name, '--json')
  t.equal(r.code, 0, r.stderr)
  const f = r.events[0]?.data
  t.equal(f?.xdpNative, true)
  t.equal(f?.xdpSkb, true)
  t.equal(f?.bpfLink, true)
  t.equal(f?.afXdp, true)
  t.equal(f?.zeroCopy, false, 'veth has no zero-copy AF_XDP')
  t.equal(f?.failures.zeroCopy.code, 'EOPNOTSUPP')
  t.equal(f?.freplace, probeFeatures(a.name).freplace, 'freplace as the library probe finds it on this kernel')
  t.equal(f?.libxdpDispatcher, f?.freplace, "libxdp's dispatcher attaches exactly when freplace works")
  if (!f?.libxdpDispatcher) {
    t.match(f?.failures.libxdpDispatcher.op, /xdp_program__attach_multi/, 'the libxdp step that failed')
    t.ok(f?.failures.libxdpDispatcher.errno > 0, `with its errno (${f?.failures.libxdpDispatcher.code}: ${f?.failures.libxdpDispatcher.message})`)
  }
  t.equal(f?.atomics, true)
  t.same(xdpAttachmentOf(a.name).programs, [], 'probes leave nothing attached')
  t.notOk(existsSync('/sys/fs/bpf/xdp/dispatch-' + xdpAttachmentOf(a.name).ifindex + '-0'), 'nor libxdp state')
  const human = xdpLoad('features', a.name, '--no-json')
  t.match(human.stdout, /yes\s+XDP native/)
  t.match(human.stdout, /no\s+AF_XDP zero-copy/)
})
