import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, rmSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { BpfError, NetError } from '@kbx/errors'
import { bpfObjectPath, repoRoot, XDP_ATTACHED_DRV, XDP_ATTACHED_SKB } from '@kbx/ffi'
import { BpfObject, ensureBpffs, linkInfoById, resolveIfindex, XdpLink, xdpAttachmentOf, xdpAttachments } from './index.js'
import { throwsErrno } from './testing/assert.js'
import { createNetns, createVeth, ipXdpOf, uniqueName, type TestNetns } from './testing/netns.js'

function loadPass(): BpfObject {
  const obj = BpfObject.open(bpfObjectPath('xdp_pass'))
  t.teardown(() => obj.close())
  obj.load()
  return obj
}

function setup(tt: Parameters<typeof createNetns>[0]): { ns: TestNetns; a: string; b: string } {
  const ns = createNetns(tt)
  const { a, b } = createVeth(ns)
  return { ns, a, b }
}

const modes = [
  { mode: 'native', expect: 'native', ipMode: XDP_ATTACHED_DRV },
  { mode: 'skb', expect: 'skb', ipMode: XDP_ATTACHED_SKB },
  { mode: 'auto', expect: 'native', ipMode: XDP_ATTACHED_DRV },
] as const

for (const { mode, expect, ipMode } of modes) {
  t.test(`attach ${mode} on a veth, detach`, async (t) => {
    const { ns, a, b } = setup(t)
    const prog = loadPass().program()
    const progId = prog.info().id
    const messages: string[] = []
    const link = ns.enter(() => prog.attachXdp(a, mode, (m) => messages.push(m)))
    t.teardown(() => link.close())
    t.equal(link.mode, expect)
    t.equal(link.progId, progId)
    t.ok(link.id > 0)
    t.match(messages.join('\n'), new RegExp(`attached kbx_pass to ${a} in ${expect} mode`))
    t.same(ipXdpOf(ns, a), [{ progId, mode: ipMode }], '`ip -j -d link` shows it')
    t.same(ipXdpOf(ns, b), [], 'the peer has nothing')
    ns.enter(() => {
      const ifindex = resolveIfindex(a)
      t.equal(link.ifindex, ifindex)
      t.same(xdpAttachmentOf(a), { ifname: a, ifindex, mode: expect, programs: [{ progId, mode: expect, name: 'kbx_pass', tag: prog.info().tag }] })
      t.same(xdpAttachmentOf(ifindex).programs.map((p) => p.progId), [progId], 'by ifindex')
      const all = xdpAttachments()
      t.equal(all.find((i) => i.ifname === a)?.mode, expect)
      t.equal(all.find((i) => i.ifname === b)?.mode, 'none')
      t.equal(all.find((i) => i.ifname === 'lo')?.mode, 'none')
    })
    t.same(link.info(), { id: link.id, type: 'xdp', typeId: 6, progId, ifindex: link.ifindex })
    t.same(linkInfoById(link.id), link.info(), 'by id')
    link.detach()
    t.same(ipXdpOf(ns, a), [], 'detached')
    t.throws(() => link.info(), /closed/)
  })
}

t.test('a second program on the same interface is EBUSY, naming the first', async (t) => {
  const { ns, a } = setup(t)
  const first = loadPass().program()
  const second = loadPass().program()
  const link = ns.enter(() => first.attachXdp(a, 'native'))
  t.teardown(() => link.close())
  const err = ns.enter(() => throwsErrno(t, () => second.attachXdp(a, 'native'), 'EBUSY', 'EBUSY', BpfError))
  t.match(err?.hint, new RegExp(`prog id ${first.info().id} \\(kbx_pass\\) in native mode`))
  const skb = ns.enter(() => throwsErrno(t, () => second.attachXdp(a, 'skb'), 'EEXIST', 'skb while native is attached', BpfError))
  t.ok(skb)
  t.same(ipXdpOf(ns, a).map((p) => p.progId), [first.info().id], 'the first stays')
})

t.test('unknown interfaces and modes', async (t) => {
  const prog = loadPass().program()
  t.throws(() => prog.attachXdp('kbx-no-such', 'skb'), NetError)
  t.throws(() => prog.attachXdp('lo', 'turbo' as 'skb'), /unknown XDP mode/)
})

t.test('closing an unpinned link detaches it', async (t) => {
  const { ns, a } = setup(t)
  const prog = loadPass().program()
  const link = ns.enter(() => prog.attachXdp(a, 'skb'))
  t.equal(ipXdpOf(ns, a).length, 1)
  link.close()
  t.same(ipXdpOf(ns, a), [])
})

t.test('a SIGKILLed process leaves nothing attached', async (t) => {
  const { ns, a } = setup(t)
  const childScript = fileURLToPath(new URL('./testing/attach-child.ts', import.meta.url))
  const child = spawn('ip', ['netns', 'exec', ns.name, process.execPath, '--import', 'tsx', '--conditions=kbx-source', childScript, a, 'native'], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)))
  const report = await new Promise<{ linkId: number; progId: number; mode: string }>((resolve, reject) => {
    let buffered = ''
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString()
      const line = buffered.split('\n')[0]
      if (buffered.includes('\n') && line) resolve(JSON.parse(line) as { linkId: number; progId: number; mode: string })
    })
    child.on('exit', (code) => reject(new Error(`child exited with ${code} before attaching`)))
  })
  t.equal(report.mode, 'native')
  t.same(ipXdpOf(ns, a), [{ progId: report.progId, mode: XDP_ATTACHED_DRV }], 'attached by the child')
  child.kill('SIGKILL')
  t.equal(await exited, 'SIGKILL')
  let attached = ipXdpOf(ns, a)
  for (let i = 0; i < 50 && attached.length > 0; i++) {
    await sleep(100)
    attached = ipXdpOf(ns, a)
  }
  t.same(attached, [], 'the kernel released the link with the process')
  throwsErrno(t, () => linkInfoById(report.linkId), 'ENOENT', 'the link is gone', BpfError)
})

t.test('a pinned link survives close; fromPin, detach and unpin remove it', async (t) => {
  const { ns, a } = setup(t)
  ensureBpffs()
  const dir = `/sys/fs/bpf/kbx-test-${uniqueName('link')}`
  mkdirSync(dir)
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const path = `${dir}/link`
  const obj = BpfObject.open(bpfObjectPath('xdp_pass'))
  obj.load()
  const progId = obj.program().info().id
  const link = ns.enter(() => obj.program().attachXdp(a, 'native'))
  link.pin(path)
  throwsErrno(t, () => link.pin(path), 'EEXIST', 'pinning twice', BpfError)
  const linkId = link.id
  link.close()
  obj.close()
  t.same(ipXdpOf(ns, a), [{ progId, mode: XDP_ATTACHED_DRV }], 'still attached after close')

  const reopened = ns.enter(() => XdpLink.fromPin(path))
  t.equal(reopened.id, linkId)
  t.equal(reopened.progId, progId)
  t.equal(reopened.mode, 'native', 'mode recovered from the interface')
  reopened.detach()
  t.same(ipXdpOf(ns, a), [], 'detach removes it although it is pinned')
  t.ok(existsSync(path), 'the pin of a detached link remains until unpinned')
  XdpLink.unpin(path)
  t.notOk(existsSync(path))
  throwsErrno(t, () => linkInfoById(linkId), 'ENOENT', 'the link is gone', BpfError)
  throwsErrno(t, () => XdpLink.fromPin(path), 'ENOENT', 'nothing pinned', BpfError)
})
