import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdirSync, rmSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { BpfError } from '@kbx/errors'
import { bpfObjectPath, libc, repoRoot, RLIM_INFINITY, RLIMIT_MEMLOCK } from '@kbx/ffi'
import { BpfObject, ensureBpffs, isBpffsMounted, linkInfoByPin, memlockLimit, onLibbpfMessage, raiseMemlockLimit, resolveIfindex, ifnameOf } from './index.js'
import { parseIpLink } from './link.js'
import { throwsErrno } from './testing/assert.js'
import { createNetns, createVeth, uniqueName } from './testing/netns.js'

t.test('raiseMemlockLimit raises RLIMIT_MEMLOCK as far as allowed, never throws', async (t) => {
  const { hard } = memlockLimit()
  if (hard > 4096n) {
    t.equal(libc().setrlimit(RLIMIT_MEMLOCK, { rlim_cur: 4096n, rlim_max: hard }), 0, 'lowered the soft limit')
  }
  const unlimited = raiseMemlockLimit()
  const after = memlockLimit()
  t.equal(unlimited, after.soft === RLIM_INFINITY, 'true exactly when the limit is now infinite')
  t.equal(after.soft, after.hard, 'the soft limit reached the hard one')
  if (!unlimited) t.equal(after.hard, hard, 'without CAP_SYS_RESOURCE the hard limit stays (this VM: 8 MiB)')
  t.equal(raiseMemlockLimit(), unlimited, 'again: same answer, no error')
})

t.test('ensureBpffs mounts bpffs inside `ip netns exec`, where /sys comes without it', async (t) => {
  const ns = createNetns(t)
  const child = fileURLToPath(new URL('./testing/bpffs-child.ts', import.meta.url))
  const out = execFileSync('ip', ['netns', 'exec', ns.name, process.execPath, '--import', 'tsx', '--conditions=kbx-source', child], {
    cwd: repoRoot,
    encoding: 'utf8',
  })
  t.same(JSON.parse(out), { before: false, first: true, second: false, after: true, sameMap: true })
  t.equal(isBpffsMounted(), true, 'the mount stayed in the child mount namespace; ours has its own')
})

t.test('interface names and indexes', async (t) => {
  t.equal(resolveIfindex('lo'), 1)
  t.equal(resolveIfindex(1), 1)
  t.equal(resolveIfindex('1'), 1)
  t.equal(ifnameOf(1), 'lo')
  t.equal(ifnameOf(0x7ffffff0), undefined)
  t.throws(() => resolveIfindex('kbx-no-such'), /unknown interface "kbx-no-such"/)
  t.throws(() => resolveIfindex(0), /invalid ifindex/)
})

t.test('libbpf messages reach listeners and errors, not stderr', async (t) => {
  const seen: string[] = []
  const off = onLibbpfMessage((level, message) => seen.push(`${level}: ${message}`))
  t.teardown(off)
  throwsErrno(t, () => BpfObject.open('/dev/null'), 'EINVAL', '/dev/null is no ELF object', BpfError)
  t.match(seen.join('\n'), /warn: .*\/dev\/null/, 'the warning went to the listener')
})

t.test('linkInfoByPin reads a pinned XDP link', async (t) => {
  const ns = createNetns(t)
  const { a } = createVeth(ns)
  ensureBpffs()
  const dir = `/sys/fs/bpf/kbx-test-${uniqueName('pin')}`
  mkdirSync(dir)
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const obj = BpfObject.open(bpfObjectPath('xdp_pass'))
  t.teardown(() => obj.close())
  obj.load()
  const link = ns.enter(() => obj.program().attachXdp(a, 'skb'))
  t.teardown(() => link.close())
  link.pin(`${dir}/link`)
  const info = linkInfoByPin(`${dir}/link`)
  t.same(info, { id: link.id, type: 'xdp', typeId: 6, progId: obj.program().info().id, ifindex: ns.enter(() => resolveIfindex(a)) })
  link.detach()
  t.equal(linkInfoByPin(`${dir}/link`).ifindex, 0, 'a detached link reports ifindex 0')
  throwsErrno(t, () => linkInfoByPin(`${dir}/none`), 'ENOENT', 'nothing pinned', BpfError)
})

t.test('ip -j -d link parsing covers the modes veth cannot show', async (t) => {
  const prog = (id: number) => ({ id, name: `p${id}`, tag: 'aa' })
  t.same(parseIpLink({ ifindex: 3, ifname: 'x' }), { ifname: 'x', ifindex: 3, mode: 'none', programs: [] })
  t.same(parseIpLink({ ifindex: 3, ifname: 'x', xdp: { mode: 3, prog: prog(9) } }).programs, [{ progId: 9, mode: 'offload', name: 'p9', tag: 'aa' }])
  const multi = parseIpLink({
    ifindex: 4,
    ifname: 'nic',
    xdp: { mode: 4, attached: [{ mode: 1, prog: prog(10) }, { mode: 3, prog: prog(11) }] },
  })
  t.equal(multi.mode, 'multi')
  t.same(multi.programs.map((p) => [p.progId, p.mode]), [[10, 'native'], [11, 'offload']])
})
