import t from 'tap'
import { execFileSync, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { NO_WATCHDOG_ENV, TestNet, linkExists, netnsExists, sweepStale, withTestNet } from './testnet.js'
import { bpffsPathFor, nodeCommand } from './exec.js'
import { udpProbe } from './probe.js'
import { netnsName, vethNames } from './names.js'

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8' })
}

function isMountpoint(path: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === path)
}

t.test('names: unique per counter, veth names fit in 15 characters', async (t) => {
  t.equal(netnsName(4194304, 12), 'kbxt-4194304-12')
  const [a, b] = vethNames(4194304, 36 ** 3)
  t.ok(a.length <= 15 && b.length <= 15, `${a} / ${b}`)
  t.not(a, b)
})

t.test('a linked namespace: placement, addresses, queues, tx off, neighbours, bpffs; destroy removes all', async (t) => {
  const net = new TestNet()
  let destroyed = false
  t.teardown(() => {
    if (!destroyed) net.destroy()
  })
  const { netns, local, remote, pair } = net.addLinkedNamespace({ queues: 4, bpffs: true })
  t.match(netns, /^kbxt-\d+-\d+$/)
  t.ok(netnsExists(netns))
  t.equal(pair.queues, 4)
  t.equal(local.netns, null)
  t.equal(remote.netns, netns)
  t.ok(linkExists(null, local.name), 'local end in the root namespace')
  t.ok(linkExists(netns, remote.name), 'remote end in the namespace')
  t.notOk(linkExists(null, remote.name), 'remote end not in the root namespace')

  const localJson = JSON.parse(ip('-d', '-j', 'addr', 'show', 'dev', local.name))[0]
  t.equal(localJson.num_rx_queues, 4)
  t.equal(localJson.num_tx_queues, 4)
  t.equal(localJson.address, local.mac)
  t.equal(localJson.ifindex, local.ifindex)
  t.ok(localJson.flags.includes('UP'))
  t.same(localJson.addr_info.filter((a: { family: string }) => a.family === 'inet').map((a: { local: string; prefixlen: number }) => `${a.local}/${a.prefixlen}`), [local.cidr])
  const remoteJson = JSON.parse(ip('-n', netns, '-d', '-j', 'addr', 'show', 'dev', remote.name))[0]
  t.equal(remoteJson.num_rx_queues, 4)
  t.equal(remoteJson.address, remote.mac)
  t.ok(remoteJson.addr_info.some((a: { local: string }) => a.local === remote.ip))

  t.match(net.run(null, 'ethtool', ['-k', local.name]), /^tx-checksumming: off/m)
  t.match(net.run(netns, 'ethtool', ['-k', remote.name]), /^tx-checksumming: off/m)

  t.match(ip('neigh', 'show', remote.ip!, 'dev', local.name), new RegExp(`lladdr ${remote.mac} PERMANENT`))
  t.match(ip('-n', netns, 'neigh', 'show', local.ip!, 'dev', remote.name), new RegExp(`lladdr ${local.mac} PERMANENT`))

  const bpffs = bpffsPathFor(netns)
  t.ok(isMountpoint(bpffs), 'per-namespace bpffs mounted')
  net.run(netns, 'mkdir', ['/sys/fs/bpf/kbx-test'], { bpffs: true })
  t.match(net.run(netns, 'ls', ['/sys/fs/bpf'], { bpffs: true }), /kbx-test/, 'bpffs content persists across commands')
  t.notMatch(net.run(netns, 'sh', ['-c', 'mountpoint /sys/fs/bpf || true']), /is a mountpoint/, 'plain ip netns exec has no bpffs')
  t.match(net.run(netns, 'sh', ['-c', 'ip -br link'], { bpffs: true }), new RegExp(remote.name), 'the command runs inside the namespace')

  net.destroy()
  destroyed = true
  t.notOk(netnsExists(netns), 'namespace removed')
  t.notOk(linkExists(null, local.name), 'veth removed')
  t.notOk(isMountpoint(bpffs), 'bpffs unmounted')
  t.doesNotThrow(() => net.destroy(), 'destroy is idempotent')
  t.throws(() => net.addNamespace(), { message: /destroyed/ })
})

t.test('UDP datagrams cross the pair both ways (no ping)', async (t) => {
  const net = withTestNet(t)
  const { netns, local, remote } = net.addLinkedNamespace()
  t.equal(await udpProbe(null, netns, remote.ip!), local.ip, 'root → namespace')
  t.equal(await udpProbe(netns, null, local.ip!), remote.ip, 'namespace → root')
  const isolated = net.addNamespace()
  t.equal(await udpProbe(isolated, netns, remote.ip!, { timeoutMs: 1000 }), undefined, 'nothing arrives from an unconnected namespace')
})

t.test('two TestNets do not collide and are independent', async (t) => {
  const one = withTestNet(t)
  const two = withTestNet(t)
  const x = one.addLinkedNamespace()
  const y = two.addLinkedNamespace()
  t.not(x.netns, y.netns)
  t.not(x.local.name, y.local.name)
  t.not(x.local.cidr!.split('.').slice(0, 3).join('.'), y.local.cidr!.split('.').slice(0, 3).join('.'), 'different subnets')
  two.destroy()
  t.ok(netnsExists(x.netns) && linkExists(null, x.local.name), 'the other TestNet is untouched')
  t.notOk(netnsExists(y.netns))
  t.equal(await udpProbe(null, x.netns, x.remote.ip!), x.local.ip, 'and still works')
})

t.test('custom names, MACs, addresses, two namespaces, no neighbours', async (t) => {
  const net = withTestNet(t)
  const left = net.addNamespace()
  const right = net.addNamespace()
  const suffix = process.pid.toString(36)
  const pair = net.addVethPair({
    a: { name: `kbtL${suffix}`, netns: left, cidr: '192.168.77.1/30', mac: '02:00:00:00:77:01' },
    b: { name: `kbtR${suffix}`, netns: right, cidr: '192.168.77.2/30', mac: '02:00:00:00:77:02' },
    neighbours: false,
  })
  t.equal(pair.a.mac, '02:00:00:00:77:01')
  t.equal(pair.b.mac, '02:00:00:00:77:02')
  t.ok(linkExists(left, `kbtL${suffix}`))
  t.ok(linkExists(right, `kbtR${suffix}`))
  t.equal(ip('-n', left, 'neigh', 'show', 'dev', pair.a.name).trim(), '', 'no neighbour entries')
  t.equal(await udpProbe(left, right, '192.168.77.2'), '192.168.77.1', 'works with ARP when not redirected')
  t.throws(() => net.addVethPair({ a: { name: 'x'.repeat(16) } }), RangeError)
})

t.test('spawned children are killed by destroy (they would keep the namespace alive)', async (t) => {
  const net = new TestNet()
  const { netns } = net.addLinkedNamespace()
  const child = net.spawn(netns, 'sleep', ['60'], { stdio: 'ignore' })
  await new Promise((r) => setTimeout(r, 100))
  t.equal(child.exitCode, null)
  net.destroy()
  t.notOk(netnsExists(netns))
  await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(null) : child.once('exit', r)))
  t.equal(child.signalCode, 'SIGKILL')
})

t.test('withTestNet tears down when the subtest ends', async (t) => {
  let names: { netns: string; link: string } | undefined
  await t.test('inner', async (t) => {
    const net = withTestNet(t)
    const linked = net.addLinkedNamespace()
    names = { netns: linked.netns, link: linked.local.name }
    t.ok(netnsExists(linked.netns))
  })
  t.ok(names)
  t.notOk(netnsExists(names!.netns), 'namespace gone after the subtest')
  t.notOk(linkExists(null, names!.link), 'veth gone after the subtest')
})

// A separate process makes a TestNet and ends in different ways.
const childScript = fileURLToPath(new URL('./testing/leaky.ts', import.meta.url))

function runChild(mode: string, env: Record<string, string> = {}): { netns: string; link: string; status: number | null; signal: string | null } {
  const [cmd, args] = nodeCommand(childScript, [mode])
  const child = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30_000, env: { ...process.env, ...env } })
  const line = child.stdout.split('\n').find((l) => l.startsWith('{'))
  if (!line) throw new Error(`child printed no names: ${child.stderr}`)
  return { ...JSON.parse(line), status: child.status, signal: child.signal }
}

async function gone(r: { netns: string; link: string }, withinMs: number): Promise<boolean> {
  const until = Date.now() + withinMs
  for (;;) {
    if (!netnsExists(r.netns) && !linkExists(null, r.link)) return true
    if (Date.now() > until) return false
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

t.test('leftovers are removed at process.exit (exit hook)', async (t) => {
  const r = runChild('exit', { [NO_WATCHDOG_ENV]: '1' })
  t.equal(r.status, 0)
  t.notOk(netnsExists(r.netns), 'namespace removed before the process ended')
  t.notOk(linkExists(null, r.link), 'veth removed before the process ended')
})

t.test('leftovers of a process killed by SIGTERM or SIGKILL are removed by its watchdog', async (t) => {
  for (const mode of ['sigterm', 'sigkill']) {
    const r = runChild(mode)
    t.teardown(() => {
      spawnSync('ip', ['netns', 'del', r.netns])
      spawnSync('ip', ['link', 'del', r.link])
    })
    t.equal(r.signal, mode.toUpperCase(), `the process died of ${mode.toUpperCase()} (no handler kept it alive)`)
    t.ok(await gone(r, 10_000), `${mode}: namespace and veth removed`)
  }
})

t.test('sweepStale removes what a SIGKILLed process left, and nothing of live processes', async (t) => {
  const mine = withTestNet(t)
  const alive = mine.addLinkedNamespace()
  const r = runChild('sigkill', { [NO_WATCHDOG_ENV]: '1' })
  t.teardown(() => {
    // In case the assertions below fail, do not leave the test's own mess.
    spawnSync('ip', ['netns', 'del', r.netns])
    spawnSync('ip', ['link', 'del', r.link])
  })
  t.equal(r.signal, 'SIGKILL')
  t.ok(netnsExists(r.netns), 'a SIGKILLed process without watchdog leaves its namespace behind')
  t.ok(linkExists(null, r.link), 'and its veth')
  const swept = sweepStale()
  t.ok(swept.namespaces.includes(r.netns), `swept ${r.netns}`)
  t.notOk(netnsExists(r.netns))
  t.notOk(linkExists(null, r.link), 'veth went with its peer namespace')
  t.ok(netnsExists(alive.netns), 'a live process keeps its namespace')
  t.notOk(swept.namespaces.includes(alive.netns))
})

t.test('spawn with bpffs: a process in the namespace sees bpffs on /sys/fs/bpf', async (t) => {
  const net = withTestNet(t)
  const netns = net.addNamespace({ bpffs: true })
  const child = net.spawn(netns, 'sh', ['-c', 'mountpoint /sys/fs/bpf && stat -f -c %T /sys/fs/bpf'], { bpffs: true, stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()))
  const code = await new Promise((r) => child.on('exit', r))
  t.equal(code, 0)
  t.match(out, /bpf_fs/)
})
