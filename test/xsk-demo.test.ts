// End to end through the built-in demo: AF_XDP TX in one namespace, AF_XDP RX (steered by
// xdp_xsk_redirect through a bpf_link) in the other, and what a killed command leaves behind.
import { join } from 'node:path'
import t from 'tap'
import { xdpAttachmentOf } from '@kbx/bpf'
import { repoRoot } from '@kbx/ffi'
import { followTool, nodeCommand, waitUntil, withTestNet } from '@kbx/testbed'
import type { TestNet } from '@kbx/testbed'

const demo = join(repoRoot, 'examples/xsk-demo.ts')

function startReceiver(net: TestNet, iface: string, args: string[]) {
  const [cmd, argv] = nodeCommand(demo, ['rx', '--iface', iface, ...args])
  const child = net.spawn(null, cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] })
  return followTool(child)
}

t.test('AF_XDP TX in one namespace, AF_XDP RX in the other: every frame arrives once', async (t) => {
  const net = withTestNet(t)
  const { netns, local, remote } = net.addLinkedNamespace()
  const count = 20000
  const rx = startReceiver(net, local.name, ['--count', String(count), '--duration', '30'])
  await waitUntil('the receiver to start', () => rx.events.some((e) => e.event === 'start'))

  const [cmd, argv] = nodeCommand(demo, ['tx', '--iface', remote.name, '--dst', local.ip!, '--count', String(count), '--rate', '50k'])
  const txChild = net.spawn(netns, cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] })
  const tx = followTool(txChild)
  t.same(await tx.exited, { code: 0, signal: null }, tx.stderr())
  t.same(await rx.exited, { code: 0, signal: null }, rx.stderr())

  const txEnd = tx.events.find((e) => e.event === 'end')?.data
  const rxEnd = rx.events.find((e) => e.event === 'end')?.data
  t.equal(txEnd?.sent, count, 'every frame completed on TX')
  t.equal(rxEnd?.packets, count, 'every frame received over AF_XDP')
  t.equal(rxEnd?.rxDropped, 0)
  t.equal(rxEnd?.umem.total, rxEnd?.umem.free + rxEnd?.umem.fill + rxEnd?.umem.rx + rxEnd?.umem.tx + rxEnd?.umem.user, 'every frame accounted for')
  t.same(xdpAttachmentOf(local.name).programs, [], 'detached at exit')
})

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  t.test(`${signal}: the end event, exit 0, nothing attached`, async (t) => {
    const net = withTestNet(t)
    const { a } = net.addVethPair()
    const rx = startReceiver(net, a.name, ['--count', '0'])
    await waitUntil('the receiver to start', () => rx.events.some((e) => e.event === 'start'))
    t.equal(xdpAttachmentOf(a.name).programs.length, 1, 'attached while running')
    rx.child.kill(signal)
    t.same(await rx.exited, { code: 0, signal: null }, rx.stderr())
    t.equal(rx.events.at(-1)?.event, 'end')
    t.equal(rx.events.at(-1)?.data.stoppedBy, 'signal')
    t.same(xdpAttachmentOf(a.name).programs, [], 'detached')
  })
}

t.test('SIGKILL: the kernel removes the bpf_link attachment, and the queue binds again', async (t) => {
  const net = withTestNet(t)
  const { a } = net.addVethPair()
  const first = startReceiver(net, a.name, ['--count', '0'])
  await waitUntil('the receiver to start', () => first.events.some((e) => e.event === 'start'))
  t.equal(xdpAttachmentOf(a.name).programs.length, 1, 'attached while running')
  first.child.kill('SIGKILL')
  t.same(await first.exited, { code: null, signal: 'SIGKILL' })
  await waitUntil('the kernel to release the link', () => xdpAttachmentOf(a.name).programs.length === 0, 5000)
  t.pass('no program attached after SIGKILL')

  const second = startReceiver(net, a.name, ['--count', '0', '--duration', '0.5'])
  t.same(await second.exited, { code: 0, signal: null }, `the same queue binds again: ${second.stderr()}`)
  t.equal(second.events.at(-1)?.event, 'end')
})
