// quic-flood against quic-sink on a linked namespace: handshake with a client certificate, one
// transaction per stream, and the sink's count equal to the flooder's acknowledged count.
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import t from 'tap'
import { followTool, nodeCommand, waitUntil, withTestNet } from '@kbx/testbed'
import type { TestNet } from '@kbx/testbed'
import { QUIC_SINK, runFlood, startSink, stopSink } from './testing/quic-bed.js'

// floods of several seconds each (xdp and socket io, restarts, rotation): above tap's 120 s per file on a loaded machine
t.setTimeout(300_000)

const sinkBin = QUIC_SINK

for (const [io, streams, count] of [
  ['socket', 'uni', 100000],
  ['xdp', 'uni', 100000],
  ['socket', 'bidi', 5000],
] as const) {
  t.test(`--io ${io} --streams ${streams}: the sink counts exactly the ${count} acknowledged transactions`, async (t) => {
    const net = withTestNet(t)
    const { netns, local, remote } = net.addLinkedNamespace()
    const sink = await startSink(net, netns, `${remote.ip}:8004`)
    const flood = runFlood(net, ['--iface', local.name, '--server', `${remote.ip}:8004`, '--io', io, '--streams', streams, '--count', String(count), '--duration', '60', '--interval', '1'])
    t.same(await flood.exited, { code: 0, signal: null }, flood.stderr())
    const end = flood.events.find((e) => e.event === 'end')?.data
    const sinkEnd = await stopSink(sink)
    t.equal(end?.sent, count, 'every transaction sent')
    t.equal(end?.acked, count, 'every transaction acknowledged')
    t.equal(end?.handshakes, 1)
    const latency = end?.ackLatencyUs
    t.equal(latency?.count, count, 'one send->ack latency per acknowledged transaction')
    t.ok(latency?.min > 0 && latency.min <= latency.p50 && latency.p50 <= latency.p99 && latency.p99 <= latency.max, 'percentiles ordered within min..max')
    t.equal(sinkEnd?.transactions, end?.acked, "sink's count == flooder's acked count")
    t.equal(sinkEnd?.clientCertificates, 1, 'the client presented a certificate')
    t.equal(sinkEnd?.[streams === 'uni' ? 'streamsUni' : 'streamsBidi'], count)
    t.equal(sinkEnd?.rejected, 0)
  })
}

t.test('--rate with --busy-poll on both ends: paced, every transaction acknowledged and timed', async (t) => {
  const net = withTestNet(t)
  const { netns, local, remote } = net.addLinkedNamespace()
  const sink = await startSink(net, netns, `${remote.ip}:8004`, ['--busy-poll', '2000'])
  const flood = runFlood(net, ['--iface', local.name, '--server', `${remote.ip}:8004`, '--io', 'xdp', '--rate', '2000', '--count', '1000', '--busy-poll', '500', '--duration', '30'])
  t.same(await flood.exited, { code: 0, signal: null }, flood.stderr())
  const end = flood.events.find((e) => e.event === 'end')?.data
  const sinkEnd = await stopSink(sink)
  t.equal(end?.acked, 1000)
  t.equal(end?.ackLatencyUs?.count, 1000)
  t.ok(end?.seconds >= 0.45, `paced: 1000 transactions at 2000/s take about half a second (${end?.seconds} s)`)
  t.equal(sinkEnd?.transactions, 1000)
})

t.test('MAX_STREAMS respected against a sink granting 4 streams', async (t) => {
  const net = withTestNet(t)
  const { netns, local, remote } = net.addLinkedNamespace()
  const sink = await startSink(net, netns, `${remote.ip}:8004`, ['--max-streams', '4'])
  const flood = runFlood(net, ['--iface', local.name, '--server', `${remote.ip}:8004`, '--io', 'socket', '--count', '2000', '--duration', '60'])
  t.same(await flood.exited, { code: 0, signal: null }, flood.stderr())
  const end = flood.events.find((e) => e.event === 'end')?.data
  const sinkEnd = await stopSink(sink)
  t.equal(end?.acked, 2000)
  t.equal(sinkEnd?.transactions, 2000)
  t.equal(sinkEnd?.connectionsClosed + sinkEnd?.connectionsOpen, 1, 'no stream-limit violation closed the connection')
  t.ok(end?.blockedOnMaxStreamsMs > 0, 'time blocked on MAX_STREAMS is reported')
})

t.test('bad input: clear error, non-zero exit', async (t) => {
  const net = withTestNet(t)
  const { netns, local, remote } = net.addLinkedNamespace()
  const unknown = runFlood(net, ['--iface', 'kbxnosuch0', '--io', 'socket', '--count', '1'])
  t.not((await unknown.exited).code, 0)
  t.match(unknown.stderr(), /kbxnosuch0/)

  const oversize = runFlood(net, ['--iface', local.name, '--server', `${remote.ip}:8004`, '--io', 'socket', '--tx-size', '1233'])
  t.equal((await oversize.exited).code, 2, 'oversize transaction refused locally')
  t.match(oversize.stderr(), /1232/)

  const keypair = runFlood(net, ['--iface', local.name, '--server', `${remote.ip}:8004`, '--io', 'socket', '--keypair', '/nonexistent/id.json'])
  t.not((await keypair.exited).code, 0)
  t.match(keypair.stderr(), /keypair/)

  // limits from kbx_quic.h: refused while parsing, before a UMEM, socket or XDP program exists
  for (const [args, pattern] of [
    [['--frames', '511'], /--frames/],
    [['--frames', '262145'], /--frames/],
    [['--connections', '65'], /--connections/],
    [['--alpn', 'a'.repeat(256)], /--alpn: 1\.\.255 bytes/],
  ] as const) {
    const run = runFlood(net, ['--iface', local.name, '--server', `${remote.ip}:8004`, '--io', 'xdp', '--count', '1', ...args])
    t.equal((await run.exited).code, 2, `${args[0]} ${args[1].slice(0, 8)}: usage error`)
    t.match(run.stderr(), pattern)
  }
  t.notMatch(execFileSync('ip', ['-o', 'link', 'show', local.name], { encoding: 'utf8' }), /xdp/, 'nothing attached')
  const [sinkCmd, sinkArgv] = nodeCommand(sinkBin, ['--listen', `${remote.ip}:8004`, '--alpn', 'a'.repeat(256)])
  const longAlpnSink = followTool(net.spawn(netns, sinkCmd, sinkArgv, { stdio: ['ignore', 'pipe', 'pipe'] }))
  t.equal((await longAlpnSink.exited).code, 2, 'quic-sink --alpn over 255 bytes: usage error')

  const unreachable = runFlood(net, ['--iface', local.name, '--server', `${remote.ip}:8004`, '--io', 'socket', '--count', '1', '--handshake-timeout', '1'])
  t.equal((await unreachable.exited).code, 1, 'no server: exit 1')
  t.match(unreachable.stderr(), /handshake timed out|failed/)

  const sink = await startSink(net, netns, `${remote.ip}:8004`)
  const alpn = runFlood(net, ['--iface', local.name, '--server', `${remote.ip}:8004`, '--io', 'socket', '--count', '1', '--alpn', 'h3'])
  t.equal((await alpn.exited).code, 1, 'wrong ALPN: exit 1')
  t.match(alpn.stderr(), /ALPN/)
  await stopSink(sink)
})

for (const io of ['socket', 'xdp'] as const) {
  t.test(`--io ${io}, sink restarted mid-run: the flooder reconnects with backoff and every count reconciles`, async (t) => {
    const net = withTestNet(t)
    const { netns, local, remote } = net.addLinkedNamespace()
    const first = await startSink(net, netns, `${remote.ip}:8004`)
    const flood = runFlood(net, ['--iface', local.name, '--server', `${remote.ip}:8004`, '--io', io, '--rate', '2000', '--duration', '10', '--idle-timeout', '1', '--interval', '0.5'])
    await waitUntil('transactions to flow', () => flood.events.some((e) => e.event === 'interval' && e.data.acked > 0))
    const firstEnd = await stopSink(first)
    t.ok(firstEnd?.transactions > 0)
    const second = await startSink(net, netns, `${remote.ip}:8004`)
    t.same(await flood.exited, { code: 0, signal: null }, flood.stderr())
    const secondEnd = await stopSink(second)
    const end = flood.events.find((e) => e.event === 'end')?.data
    const received = firstEnd?.transactions + secondEnd?.transactions
    t.ok(end?.handshakes >= 2, `reconnected (${end?.handshakes} handshakes, ${end?.connectAttempts} attempts)`)
    t.ok(secondEnd?.transactions > 0, 'the new sink received transactions')
    t.ok(end?.acked <= received, `never more acked (${end?.acked}) than received (${received})`)
    t.ok(received <= end?.acked + end?.unackedAtClose, `whatever the sinks counted beyond the acked was in flight at the close (${end?.unackedAtClose})`)
  })
}

t.test('--streams-per-connection: connections rotate once their streams are acked, counts stay exact', async (t) => {
  const net = withTestNet(t)
  const { netns, local, remote } = net.addLinkedNamespace()
  const sink = await startSink(net, netns, `${remote.ip}:8004`)
  const flood = runFlood(net, ['--iface', local.name, '--server', `${remote.ip}:8004`, '--io', 'xdp', '--streams-per-connection', '3000', '--count', '20000', '--duration', '60'])
  t.same(await flood.exited, { code: 0, signal: null }, flood.stderr())
  const end = flood.events.find((e) => e.event === 'end')?.data
  const sinkEnd = await stopSink(sink)
  t.equal(end?.acked, 20000)
  t.equal(end?.connectionsRotated, 6, '20000 transactions at 3000 per connection: 6 rotations')
  t.equal(end?.handshakes, 7)
  t.equal(end?.unackedAtClose, 0, 'a connection is rotated only when nothing is in flight')
  t.equal(sinkEnd?.transactions, 20000, "sink's count == flooder's acked count across rotations")
  t.equal(sinkEnd?.connections, 7)
  t.equal(sinkEnd?.connectionsStreamLimited, 0, 'the flooder rotated before the sink had to close anything')
})

t.test("--max-streams-per-connection: the sink closes a connection that used up its streams, once quiet", async (t) => {
  const net = withTestNet(t)
  const { netns, local, remote } = net.addLinkedNamespace()
  const sink = await startSink(net, netns, `${remote.ip}:8004`, ['--max-streams-per-connection', '3000'])
  // the flooder never rotates by itself here: the sink's limit is all that bounds a connection
  const flood = runFlood(net, ['--iface', local.name, '--server', `${remote.ip}:8004`, '--io', 'socket', '--streams-per-connection', '1000000', '--count', '10000', '--duration', '60'])
  t.same(await flood.exited, { code: 0, signal: null }, flood.stderr())
  const end = flood.events.find((e) => e.event === 'end')?.data
  const sinkEnd = await stopSink(sink)
  t.equal(end?.acked, 10000)
  t.equal(end?.unackedAtClose, 0, 'the sink closed only connections with nothing in flight')
  t.equal(end?.connectionsRotated, 0)
  t.equal(sinkEnd?.connectionsStreamLimited, 3, '10000 transactions at 3000 per connection: 3 connections used up')
  t.equal(sinkEnd?.connections, 4)
  t.equal(sinkEnd?.transactions, 10000, "sink's count == flooder's acked count across the sink's closes")
})

t.test("interop: handshake with ngtcp2's gtlsserver (Debian ngtcp2-server) using --alpn h3", async (t) => {
  const { mkdtempSync, rmSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const { Identity } = await import('../packages/quic/src/index.js')
  const dir = mkdtempSync(join(tmpdir(), 'kbx-quic-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const id = Identity.create()
  id.writePem(join(dir, 'cert.pem'), join(dir, 'key.pem'))
  id.close()
  const net = withTestNet(t)
  const { netns, local, remote } = net.addLinkedNamespace()
  const server = followTool(net.spawn(netns, 'gtlsserver', ['-q', remote.ip!, '4433', join(dir, 'key.pem'), join(dir, 'cert.pem')], { stdio: ['ignore', 'pipe', 'pipe'] }))
  await new Promise((r) => setTimeout(r, 500))
  const flood = runFlood(net, ['--iface', local.name, '--server', `${remote.ip}:4433`, '--io', 'socket', '--alpn', 'h3', '--count', '1', '--duration', '3', '--interval', '0.2', '--no-reconnect'])
  await flood.exited
  server.child.kill('SIGTERM')
  // gtlsserver speaks HTTP/3 and closes the connection once our transaction stream arrives; the flooder
  // says "closed" (not "failed") only for a connection whose handshake completed.
  t.match(flood.stderr(), /connection to [0-9.]+:4433 closed: the server closed the connection/, 'handshake completed, then the h3 server closed')
  t.notMatch(flood.stderr(), /refused the handshake|timed out/)
})

t.test('--tx-file: the transactions of the file are sent round-robin', async (t) => {
  const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const dir = mkdtempSync(join(tmpdir(), 'kbx-quic-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const sizes = [100, 333, 1232]
  const file = join(dir, 'txs.b64')
  writeFileSync(file, sizes.map((n, i) => Buffer.alloc(n, i + 1).toString('base64')).join('\n') + '\n')
  const count = 1000
  let expectedBytes = 0
  for (let i = 0; i < count; i++) expectedBytes += sizes[i % sizes.length]!
  const net = withTestNet(t)
  const { netns, local, remote } = net.addLinkedNamespace()
  const sink = await startSink(net, netns, `${remote.ip}:8004`)
  const flood = runFlood(net, ['--iface', local.name, '--server', `${remote.ip}:8004`, '--io', 'socket', '--tx-file', file, '--count', String(count), '--duration', '60'])
  t.same(await flood.exited, { code: 0, signal: null }, flood.stderr())
  const start = flood.events.find((e) => e.event === 'start')?.data
  const end = flood.events.find((e) => e.event === 'end')?.data
  const sinkEnd = await stopSink(sink)
  t.equal(start?.transactions, sizes.length, 'every line of the file read')
  t.equal(end?.acked, count)
  t.equal(end?.bytesAcked, expectedBytes, 'flooder: acked bytes follow the round-robin sizes')
  t.equal(sinkEnd?.transactions, count)
  t.equal(sinkEnd?.bytes, expectedBytes, "sink's bytes == the round-robin sum")
  t.equal(sinkEnd?.rejected, 0, 'a 1232-byte transaction is accepted')
})

t.test('--keypair: the client certificate carries the keypair public key', async (t) => {
  const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const { generateKeyPairSync } = await import('node:crypto')
  const dir = mkdtempSync(join(tmpdir(), 'kbx-quic-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const jwk = generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' })
  const seed = Buffer.from(jwk.d!, 'base64url')
  const publicKey = Buffer.from(jwk.x!, 'base64url')
  const file = join(dir, 'id.json')
  writeFileSync(file, JSON.stringify([...seed, ...publicKey]))
  const net = withTestNet(t)
  const { netns, local, remote } = net.addLinkedNamespace()
  const sink = await startSink(net, netns, `${remote.ip}:8004`)
  const flood = runFlood(net, ['--iface', local.name, '--server', `${remote.ip}:8004`, '--io', 'socket', '--keypair', file, '--count', '10', '--duration', '30'])
  t.same(await flood.exited, { code: 0, signal: null }, flood.stderr())
  const start = flood.events.find((e) => e.event === 'start')?.data
  const sinkEnd = await stopSink(sink)
  t.equal(start?.identity, publicKey.toString('hex'), "the flooder's identity is the keypair's public half")
  t.equal(sinkEnd?.clientCertificates, 1)
  t.equal(sinkEnd?.lastClientPublicKey, publicKey.toString('hex'), "the sink saw a certificate with the keypair's public key")
  t.equal(sinkEnd?.transactions, 10)
})

t.test('--io xdp --frames 512, the smallest UMEM: every transaction acknowledged and counted by the sink', async (t) => {
  const net = withTestNet(t)
  const { netns, local, remote } = net.addLinkedNamespace()
  const sink = await startSink(net, netns, `${remote.ip}:8004`)
  const flood = runFlood(net, ['--iface', local.name, '--server', `${remote.ip}:8004`, '--io', 'xdp', '--frames', '512', '--count', '20000', '--duration', '60'])
  t.same(await flood.exited, { code: 0, signal: null }, flood.stderr())
  const start = flood.events.find((e) => e.event === 'start')?.data
  const end = flood.events.find((e) => e.event === 'end')?.data
  const sinkEnd = await stopSink(sink)
  t.equal(start?.frames, 512, 'the UMEM has the frames asked for')
  const umem = end?.umem
  t.equal(umem?.total, 512, 'the end line accounts for the UMEM')
  t.equal(umem?.free + umem?.fill + umem?.rx + umem?.tx + umem?.user, 512, 'every frame is somewhere')
  t.equal(end?.acked, 20000)
  t.equal(sinkEnd?.transactions, end?.acked, "sink's count == flooder's acked count")
})

t.test('--connections 3: three handshakes, totals match the acknowledged count', async (t) => {
  const net = withTestNet(t)
  const { netns, local, remote } = net.addLinkedNamespace()
  const sink = await startSink(net, netns, `${remote.ip}:8004`)
  const flood = runFlood(net, ['--iface', local.name, '--server', `${remote.ip}:8004`, '--io', 'xdp', '--connections', '3', '--count', '3000', '--duration', '60'])
  t.same(await flood.exited, { code: 0, signal: null }, flood.stderr())
  const end = flood.events.find((e) => e.event === 'end')?.data
  const sinkEnd = await stopSink(sink)
  t.equal(end?.handshakes, 3, 'flooder: 3 handshakes')
  t.equal(end?.acked, 3000)
  t.equal(sinkEnd?.connections, 3, 'sink: 3 connections')
  t.equal(sinkEnd?.handshakes, 3, 'sink: 3 handshakes')
  t.equal(sinkEnd?.clientCertificates, 3)
  t.equal(sinkEnd?.transactions, end?.acked, "sink's count == flooder's acked count")
  t.equal(sinkEnd?.bytes, end?.bytesAcked)
})

t.test('the sink rejects an oversize (1233-byte) stream the way Agave does: the connection is closed', async (t) => {
  const net = withTestNet(t)
  const { netns, local, remote } = net.addLinkedNamespace()
  const sink = await startSink(net, netns, `${remote.ip}:8004`)
  // --unsafe-tx-size is a hidden test-only option bypassing the flooder's own 1232-byte refusal
  const flood = runFlood(net, ['--iface', local.name, '--server', `${remote.ip}:8004`, '--io', 'socket', '--unsafe-tx-size', '1233', '--count', '1', '--duration', '10', '--no-reconnect'])
  const exit = await flood.exited
  const sinkEnd = await stopSink(sink)
  t.equal(exit.code, 1, 'the flooder (no reconnect) fails: its connection was closed')
  t.match(flood.stderr(), /closed/)
  t.equal(sinkEnd?.rejected, 1, 'one oversize stream rejected')
  t.equal(sinkEnd?.transactions, 0, 'not counted as a transaction')
  t.equal(sinkEnd?.handshakes, 1)
  t.equal(sinkEnd?.connectionsClosed, 1, 'the sink closed the connection')
  t.equal(sinkEnd?.connectionsOpen, 0)
})
