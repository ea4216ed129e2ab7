// quic-flood's fan-out against three quic-sink processes on a linked namespace (one address, three
// ports): each sink's count equals that server's acked count, one sink killed and restarted leaves the
// others alone, --fanout spread splits, several identities reach every sink, --servers FILE + SIGHUP rotate.
import { generateKeyPairSync } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { waitUntil, withTestNet } from '@kbx/testbed'
import type { TestNet, ToolRun } from '@kbx/testbed'
import { runFlood, startSink, stopSink } from './testing/quic-bed.js'
import { base58 } from '@kbx/quic'

// several floods of several seconds, three sinks each, on a loaded machine
t.setTimeout(400_000)

const PORTS = [8004, 8005, 8006]

interface ServerEntry {
  server: string
  state: string
  acked: number
  sent: number
  handshakes: number
  closes: { code: number; reason: string; count: number }[]
  ackLatencyUs: { count: number }
  connections: { identity: string; state: string; acked: number }[]
}

type Test = Parameters<typeof withTestNet>[0]

async function threeSinks(t: Test) {
  const net = withTestNet(t)
  const { netns, local, remote } = net.addLinkedNamespace()
  const addresses = PORTS.map((p) => `${remote.ip}:${p}`)
  const sinks = await Promise.all(addresses.map((a) => startSink(net, netns, a)))
  return { net, netns, iface: local.name, addresses, sinks }
}

function endServers(flood: ToolRun): Map<string, ServerEntry> {
  const servers = (flood.events.find((e) => e.event === 'end')?.data?.servers ?? []) as ServerEntry[]
  return new Map(servers.map((s) => [s.server, s]))
}

/** A Solana keypair file (seed then public key) and the public key in base58. */
function keypairFile(dir: string, name: string): [string, string] {
  const jwk = generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' })
  const seed = Buffer.from(jwk.d!, 'base64url')
  const publicKey = Buffer.from(jwk.x!, 'base64url')
  const file = join(dir, name)
  writeFileSync(file, JSON.stringify([...seed, ...publicKey]))
  return [file, base58(publicKey)]
}

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'kbx-quic-fanout-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

t.test('--fanout all to three sinks with two identities (xdp io): every sink counts exactly what its server acked', async (t) => {
  const dir = tempDir(t)
  const [keyA, pubA] = keypairFile(dir, 'a.json')
  const [keyB, pubB] = keypairFile(dir, 'b.json')
  const { net, iface, addresses, sinks } = await threeSinks(t)
  const count = 20000
  const flood = runFlood(net, [
    '--iface', iface, ...addresses.flatMap((a) => ['--server', a]), '--io', 'xdp', '--count', String(count),
    '--keypair', keyA, '--keypair', keyB, '--connections', '2', '--max-connections-per-identity', '1', '--duration', '60', '--interval', '1',
  ])
  t.same(await flood.exited, { code: 0, signal: null }, flood.stderr())
  const end = flood.events.find((e) => e.event === 'end')?.data
  const servers = endServers(flood)
  const sinkEnds = await Promise.all(sinks.map(stopSink))
  t.same(flood.events.find((e) => e.event === 'start')?.data?.identities, [pubA, pubB], 'both identities announced')
  t.equal(end?.acked, count * 3, 'every transaction acknowledged by every server')
  addresses.forEach((a, i) => {
    const s = servers.get(a)
    t.equal(s?.acked, count, `${a}: acked every copy`)
    t.equal(sinkEnds[i]?.transactions, s?.acked, `${a}: the sink's count == that server's acked`)
    t.equal(s?.ackLatencyUs.count, count, `${a}: one latency per acked copy`)
    t.same(new Set(s?.connections.map((c) => c.identity)), new Set([pubA, pubB]), `${a}: one connection per identity`)
    t.same(new Set(sinkEnds[i]?.clientIdentities), new Set([pubA, pubB]), `${a}: the sink saw both identities`)
  })
  t.equal([...servers.values()].reduce((n, s) => n + s.acked, 0), end?.acked, 'totals are the sum over servers')
})

t.test('one sink killed and restarted: the others are unaffected, the restarted one is reconnected and counted', async (t) => {
  const { net, netns, iface, addresses, sinks } = await threeSinks(t)
  const rate = 3000
  const flood = runFlood(net, [
    '--iface', iface, ...addresses.flatMap((a) => ['--server', a]), '--io', 'socket', '--rate', String(rate),
    '--idle-timeout', '2', '--handshake-timeout', '1', '--duration', '12', '--interval', '1',
  ])
  const killed = addresses[1]!
  await waitUntil('the flood to report acked copies', () => flood.events.some((e) => e.event === 'interval' && e.data?.acked > 0), 60_000)
  sinks[1]!.child.kill('SIGKILL')
  await sinks[1]!.exited
  await new Promise((r) => setTimeout(r, 1500))
  const restarted = await startSink(net, netns, killed)
  t.same(await flood.exited, { code: 0, signal: null }, flood.stderr())
  const end = flood.events.find((e) => e.event === 'end')?.data
  const servers = endServers(flood)
  const [first, , third] = await Promise.all([stopSink(sinks[0]!), Promise.resolve(undefined), stopSink(sinks[2]!)])
  const again = await stopSink(restarted)
  for (const [a, sinkEnd] of [[addresses[0]!, first], [addresses[2]!, third]] as const) {
    const s = servers.get(a)
    t.equal(sinkEnd?.transactions, s?.acked, `${a}: the sink's count == that server's acked`)
    t.equal(s?.handshakes, 1, `${a}: never reconnected`)
    t.same(s?.closes, [], `${a}: no close`)
    t.ok(s!.acked >= rate * end!.seconds * 0.5, `${a}: kept its pace (${s?.acked} acked in ${end?.seconds} s)`)
  }
  const intervals = flood.events.filter((e) => e.event === 'interval')
  t.ok(intervals.length >= 5 && intervals.every((e) => e.data?.servers?.length === 3), 'every interval event carries the three servers')
  const k = servers.get(killed)
  t.ok(k!.handshakes >= 2, `${killed}: reconnected (${k?.handshakes} handshakes)`)
  t.ok(k!.closes.length >= 1, `${killed}: its closes are reported: ${JSON.stringify(k?.closes)}`)
  t.ok(again?.transactions > 0, `${killed}: the restarted sink counted ${again?.transactions}`)
  t.ok(k!.acked > again?.transactions, `${killed}: acked before the kill and after the restart (${k?.acked})`)
  t.same(again?.clientIdentities?.length, 1, 'the restarted sink saw the identity')
})

t.test('a server nobody listens on is reported and holds no one up: the others finish their --count', async (t) => {
  const { net, iface, addresses, sinks } = await threeSinks(t)
  const nobody = addresses[2]!
  await stopSink(sinks[2]!)
  const count = 5000
  const flood = runFlood(net, ['--iface', iface, ...addresses.flatMap((a) => ['--server', a]), '--io', 'socket', '--count', String(count), '--handshake-timeout', '1', '--duration', '60'])
  t.same(await flood.exited, { code: 0, signal: null }, flood.stderr())
  const servers = endServers(flood)
  const sinkEnds = await Promise.all(sinks.slice(0, 2).map(stopSink))
  addresses.slice(0, 2).forEach((a, i) => {
    t.equal(servers.get(a)?.acked, count, `${a}: every copy acked`)
    t.equal(sinkEnds[i]?.transactions, count, `${a}: and counted by its sink`)
  })
  const down = servers.get(nobody)
  t.equal(down?.handshakes, 0, `${nobody}: never connected`)
  t.match(down?.closes, [{ reason: /ICMP port unreachable|handshake timed out/ }], `${nobody}: why is reported`)
})

t.test('--fanout spread: round-robin over three sinks, each count equal to its server acked', async (t) => {
  const { net, iface, addresses, sinks } = await threeSinks(t)
  const count = 30000
  const flood = runFlood(net, ['--iface', iface, ...addresses.flatMap((a) => ['--server', a]), '--fanout', 'spread', '--io', 'xdp', '--count', String(count), '--duration', '60'])
  t.same(await flood.exited, { code: 0, signal: null }, flood.stderr())
  const end = flood.events.find((e) => e.event === 'end')?.data
  const servers = endServers(flood)
  const sinkEnds = await Promise.all(sinks.map(stopSink))
  t.equal(end?.acked, count, 'each transaction sent once')
  addresses.forEach((a, i) => {
    const s = servers.get(a)
    t.equal(sinkEnds[i]?.transactions, s?.acked, `${a}: the sink's count == that server's acked`)
    // Spread skips a server that waits for MAX_STREAMS credit, so the shares follow how fast each sink
    // drains on a loaded machine: each still gets a real share (and the others' shares bound the largest).
    t.ok(s!.acked > count / 6, `${a}: a share of its own, more than a sixth (${s?.acked})`)
  })
})

t.test('--servers FILE, rotated on SIGHUP: the removed server drains and closes, the new one is connected', async (t) => {
  const dir = tempDir(t)
  const { net, iface, addresses, sinks } = await threeSinks(t)
  const file = join(dir, 'leaders')
  const [a, b, c] = addresses as [string, string, string]
  writeFileSync(file, `# the next leaders\n${a}\n${b}  # slot 2\n\n`)
  const flood = runFlood(net, ['--iface', iface, '--servers', file, '--io', 'xdp', '--rate', '2000', '--duration', '10', '--interval', '0.5'])
  await waitUntil('both first servers to be acked', () =>
    flood.events.some((e) => e.event === 'interval' && (e.data?.servers as ServerEntry[]).filter((s) => s.acked > 0).length === 2), 60_000)
  writeFileSync(file, `${b}\n${c}\n`)
  flood.child.kill('SIGHUP')
  await waitUntil(`${a} to be removed`, () =>
    flood.events.some((e) => e.event === 'interval' && (e.data?.servers as ServerEntry[]).some((s) => s.server === a && s.state === 'removed')), 30_000)
  t.same(await flood.exited, { code: 0, signal: null }, flood.stderr())
  const servers = endServers(flood)
  const sinkEnds = await Promise.all(sinks.map(stopSink))
  addresses.forEach((addr, i) => t.equal(sinkEnds[i]?.transactions, servers.get(addr)?.acked, `${addr}: the sink's count == that server's acked`))
  t.equal(servers.get(a)?.state, 'removed')
  t.same(servers.get(a)?.closes, [], `${a}: closed by us, gracefully (no error)`)
  t.equal(sinkEnds[0]?.connectionsOpen, 0, `${a}: its sink has no connection left`)
  t.equal(servers.get(b)?.handshakes, 1, `${b}: kept through the rotation`)
  t.ok(servers.get(c)!.acked > 0, `${c}: connected and acked after SIGHUP (${servers.get(c)?.acked})`)
  t.ok(servers.get(a)!.acked < servers.get(b)!.acked, `${a} stopped getting transactions`)
})

t.test('fan-out usage errors: exit 2 before anything is attached', async (t) => {
  const dir = tempDir(t)
  const net = withTestNet(t)
  const { local, remote } = net.addLinkedNamespace()
  const empty = join(dir, 'empty')
  writeFileSync(empty, '# nobody\n')
  const bad = join(dir, 'bad')
  writeFileSync(bad, `${remote.ip}:8004\nnot-an-address\n`)
  for (const [args, pattern] of [
    [['--server', `${remote.ip}:8004`, '--servers', empty], /give one of them/],
    [['--servers', empty], /no server listed/],
    [['--servers', bad], /line 2/],
    [['--server', `${remote.ip}:8004`, '--server', `${remote.ip}:8004`], /given twice|listed twice/],
    [['--server', `${remote.ip}:8004`, '--server', `${remote.ip}:8005`, '--no-reconnect'], /--no-reconnect/],
    [['--connections', '3', '--max-connections-per-identity', '1'], /--max-connections-per-identity/],
    [['--fanout', 'some'], /--fanout/],
  ] as const) {
    const run = runFlood(net, ['--iface', local.name, '--io', 'xdp', '--count', '1', ...args])
    t.equal((await run.exited).code, 2, `${args.join(' ')}: usage error`)
    t.match(run.stderr(), pattern)
  }
})
