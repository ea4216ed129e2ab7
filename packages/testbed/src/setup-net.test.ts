import t from 'tap'
import { execFileSync, spawnSync } from 'node:child_process'
import { chmodSync, copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SETUP_NET_SCRIPT, setupNet } from './setup-net.js'
import type { SetupNetStatus, Topology } from './setup-net.js'
import { udpProbe } from './probe.js'
import { linkExists, netnsExists } from './testnet.js'

interface End {
  name: string
  netns: string | null
  cidr: string
}

// The topologies exactly as documented: [root end, namespace end] per pair.
const TOPOLOGIES: Record<Topology, { netns: string; pairs: Array<[End, End]> }> = {
  quic: {
    netns: 'ns1',
    pairs: [[{ name: 'veth0', netns: null, cidr: '10.0.0.10/24' }, { name: 'veth1', netns: 'ns1', cidr: '10.0.0.11/24' }]],
  },
  ab: {
    netns: 'feed',
    pairs: [
      [{ name: 'vethA_dst', netns: null, cidr: '10.0.1.2/24' }, { name: 'vethA_src', netns: 'feed', cidr: '10.0.1.1/24' }],
      [{ name: 'vethB_dst', netns: null, cidr: '10.0.2.2/24' }, { name: 'vethB_src', netns: 'feed', cidr: '10.0.2.1/24' }],
    ],
  },
  fix: {
    netns: 'exch',
    pairs: [[{ name: 'fix0', netns: null, cidr: '10.0.3.1/24' }, { name: 'fix1', netns: 'exch', cidr: '10.0.3.2/24' }]],
  },
}

const ipOf = (cidr: string) => cidr.split('/')[0] as string

function script(...args: string[]) {
  return spawnSync('bash', [SETUP_NET_SCRIPT, ...args], { encoding: 'utf8' })
}

function status(topology: Topology): SetupNetStatus & { code: number } {
  const r = setupNet('status', topology)
  return { ...(r.status as SetupNetStatus), code: r.code }
}

function macsOf(s: SetupNetStatus): string {
  return s.links.map((l) => `${l.name}=${l.mac}`).join(',')
}

t.test('usage errors exit 2, non-root exits 1 with a clear message', async (t) => {
  t.equal(script('frobnicate').status, 2)
  t.equal(script('up', 'nosuch').status, 2)
  t.equal(script('up', 'quic', '--queues', '0').status, 2)
  t.equal(script('up', 'quic', 'ab').status, 2)
  // A copy the unprivileged user can read whatever the checkout's folder permissions (a 0700 home gives 126).
  const dir = mkdtempSync(join(tmpdir(), 'kbx-setup-net-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  chmodSync(dir, 0o755)
  const copy = join(dir, 'setup_net.sh')
  copyFileSync(SETUP_NET_SCRIPT, copy)
  chmodSync(copy, 0o755)
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'bash', copy, 'up', 'quic'], { encoding: 'utf8' })
  t.equal(r.status, 1, r.stderr)
  t.match(r.stderr, /must run as root/)
  t.equal(script('exec', 'kbx-no-such-netns', 'true').status, 1)
})

for (const topology of ['quic', 'ab', 'fix'] as const) {
  t.test(`topology ${topology}: up, idempotent, connectivity, bpffs, repair, queues, down`, async (t) => {
    const spec = TOPOLOGIES[topology]
    const before = status(topology)
    if (before.state !== 'down' || netnsExists(spec.netns)) {
      t.fail(
        `topology ${topology} is already ${before.state}${netnsExists(spec.netns) ? ` (namespace ${spec.netns} exists)` : ''}: ` +
          `not touching a developer's test bed; run scripts/setup_net.sh down ${topology} first`,
      )
      return
    }
    t.equal(before.code, 3, 'status exits 3 when down')
    t.teardown(() => {
      script('down', topology)
    })

    setupNet('up', topology)
    const up = status(topology)
    t.equal(up.code, 0, 'status exits 0 when up')
    t.equal(up.state, 'up')
    t.match(up.namespaces, [{ name: spec.netns, exists: true, createdBySetupNet: true, bpffsMounted: true }])
    for (const [rootEnd, nsEnd] of spec.pairs) {
      for (const [end, peer] of [
        [rootEnd, nsEnd],
        [nsEnd, rootEnd],
      ] as const) {
        const link = up.links.find((l) => l.name === end.name)
        t.match(link, { netns: end.netns, exists: true, veth: true, operstate: 'UP', queues: 1, address: end.cidr, hasAddress: true, txChecksumming: 'off', neighbourOk: true }, end.name)
        const peerMac = up.links.find((l) => l.name === peer.name)?.mac
        t.same(link?.neighbour, { ip: ipOf(peer.cidr), state: 'PERMANENT', mac: peerMac }, `${end.name} has a permanent neighbour for ${peer.name}`)
        t.ok(linkExists(end.netns, end.name), `${end.name} is in ${end.netns ?? 'the root namespace'}`)
      }
      t.notOk(linkExists(null, nsEnd.name), `${nsEnd.name} is not in the root namespace`)
    }

    setupNet('up', topology)
    const again = status(topology)
    t.equal(again.state, 'up', 'up twice is fine')
    t.equal(macsOf(again), macsOf(up), 'the second up reconfigured in place (same veths)')

    for (const [rootEnd, nsEnd] of spec.pairs) {
      t.equal(await udpProbe(nsEnd.netns, rootEnd.netns, ipOf(rootEnd.cidr)), ipOf(nsEnd.cidr), `UDP ${nsEnd.name} → ${rootEnd.name}`)
      t.equal(await udpProbe(rootEnd.netns, nsEnd.netns, ipOf(nsEnd.cidr)), ipOf(rootEnd.cidr), `UDP ${rootEnd.name} → ${nsEnd.name}`)
    }

    const marker = `kbx-test-${process.pid}`
    const made = script('exec', spec.netns, 'sh', '-c', `mountpoint -q /sys/fs/bpf && mkdir /sys/fs/bpf/${marker} && ip -br link`)
    t.equal(made.status, 0, made.stderr)
    t.match(made.stdout, new RegExp(`^${spec.pairs[0]![1].name}@`, 'm'), 'exec runs inside the namespace')
    t.equal(script('exec', spec.netns, 'test', '-d', `/sys/fs/bpf/${marker}`).status, 0, 'bpffs content persists between execs')
    t.ok(existsSync(`/run/kbx/bpffs/${spec.netns}/${marker}`), 'and is visible from the root namespace')
    execFileSync('rmdir', [`/run/kbx/bpffs/${spec.netns}/${marker}`])

    const [broken] = spec.pairs[0]!
    execFileSync('ip', ['link', 'del', 'dev', broken.name])
    const partial = status(topology)
    t.equal(partial.code, 3, 'status exits 3 when partial')
    t.equal(partial.state, 'partial')
    setupNet('up', topology)
    t.equal(status(topology).state, 'up', 'up repairs a partial bed')

    setupNet('up', topology, { queues: 3 })
    const multi = status(topology)
    t.equal(multi.state, 'up')
    t.same(new Set(multi.links.map((l) => l.queues)), new Set([3]), '--queues 3 on every end')

    setupNet('down', topology)
    const down = status(topology)
    t.equal(down.code, 3)
    t.equal(down.state, 'down')
    t.notOk(netnsExists(spec.netns), 'namespace removed')
    for (const [rootEnd] of spec.pairs) t.notOk(linkExists(null, rootEnd.name), `${rootEnd.name} removed`)
    t.notOk(existsSync(`/run/kbx/bpffs/${spec.netns}`), 'bpffs unmounted and removed')
    t.equal(script('down', topology).status, 0, 'down when nothing is up is fine')
  })
}

t.test('down leaves a namespace that setup_net.sh did not create', async (t) => {
  const spec = TOPOLOGIES.fix
  if (status('fix').state !== 'down' || netnsExists(spec.netns)) {
    t.fail(`topology fix or namespace ${spec.netns} already exists: not touching a developer's test bed`)
    return
  }
  execFileSync('ip', ['netns', 'add', spec.netns])
  t.teardown(() => {
    script('down', 'fix')
    spawnSync('ip', ['netns', 'del', spec.netns])
  })
  setupNet('up', 'fix')
  const up = status('fix')
  t.equal(up.state, 'up')
  t.equal(up.namespaces[0]?.createdBySetupNet, false)
  setupNet('down', 'fix')
  t.ok(netnsExists(spec.netns), 'the pre-existing namespace stays')
  t.notOk(linkExists(spec.netns, 'fix1'), 'but the veths it made are gone')
  t.notOk(linkExists(null, 'fix0'))
})
