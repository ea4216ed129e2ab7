// quic-sink --agave-qos against the real quic-flood on a linked namespace: Agave's per-identity
// connection limit, its per-IP connection rate, stake-weighted MAX_STREAMS and the unstaked stream rate,
// the counters under Agave's names, and the flooder's view of the throttling.
import { generateKeyPairSync } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { followTool, nodeCommand, withTestNet } from '@kbx/testbed'
import type { TestNet, ToolRun } from '@kbx/testbed'
import { QUIC_SINK, runFlood, startSink, stopSink } from './testing/quic-bed.js'
import { base58 } from '@kbx/quic'

t.setTimeout(300_000)

const sinkBin = QUIC_SINK
const dir = mkdtempSync(join(tmpdir(), 'kbx-qos-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

/** A Solana keypair file (seed then public key) and its base58 public key. */
function writeKeypair(name: string): { path: string; pubkey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  const seed = privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(-32)
  const pub = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32)
  const path = join(dir, name)
  writeFileSync(path, JSON.stringify([...seed, ...pub]))
  return { path, pubkey: base58(pub) }
}

const endOf = (run: ToolRun) => run.events.find((e) => e.event === 'end')?.data

t.test('unstaked: 8 connections per identity (the ninth refused, counted), 128 streams, about 200 streams/s each', async (t) => {
  const net = withTestNet(t)
  const { netns, local, remote } = net.addLinkedNamespace()
  // the per-IP rate is raised so that the identity's limit is what refuses the ninth connection
  const sink = await startSink(net, netns, `${remote.ip}:8004`, ['--agave-qos', '--max-connections-per-ipaddr-per-min', '1000'])
  t.equal(sink.events.find((e) => e.event === 'start')?.data.idleTimeoutSec, 2, "Agave's 2 s idle timeout")
  const seconds = 4
  const flood = runFlood(net, ['--iface', local.name, '--server', `${remote.ip}:8004`, '--io', 'socket', '--connections', '9', '--keep-alive', '0.5', '--duration', String(seconds), '--interval', '0.5'])
  t.same(await flood.exited, { code: 0, signal: null }, flood.stderr())
  const sinkEnd = await stopSink(sink)
  const end = endOf(flood)
  const qos = sinkEnd?.qos
  t.equal(qos?.connection_added_from_unstaked_peer, 8, 'eight connections of the identity admitted')
  t.ok(qos?.connection_add_failed_unstaked_node >= 1, `the ninth refused (${qos?.connection_add_failed_unstaked_node} attempts)`)
  t.equal(qos?.connection_add_failed, qos?.connection_add_failed_unstaked_node)
  t.equal(qos?.connection_added_from_staked_peer, 0)
  const opens = sink.events.filter((e) => e.event === 'interval').map((e) => e.data.qos.open_unstaked_connections)
  t.equal(Math.max(...opens), 8, `never more than 8 open (${opens.join(' ')})`)
  t.equal(sinkEnd?.maxStreamsLastAdmitted, 128, 'MAX_STREAMS 128 for an unstaked identity')
  t.ok(qos?.throttled_unstaked_streams > 0, `streams throttled (${qos?.throttled_unstaked_streams})`)
  t.equal(qos?.throttled_streams, qos?.throttled_unstaked_streams)
  t.equal(qos?.throttled_staked_streams, 0)
  // 8 connections: 128 at once each, then 20 per 100 ms window: at most 8 x (128 + 210/s x (seconds + 1))
  const bound = 8 * (128 + 210 * (seconds + 1))
  t.ok(sinkEnd?.transactions > 0 && sinkEnd?.transactions <= bound, `${sinkEnd?.transactions} transactions within the unstaked rate (<= ${bound})`)
  t.equal(sinkEnd?.transactions, end?.acked, "the sink's count is the flooder's acked count")
  t.ok(end?.connectionsRefused >= 1, `the flooder reports refused connections (${end?.connectionsRefused})`)
  t.equal(end?.lastCloseError, 4, "the refusal's code: Agave's TOO_MANY (4)")
  t.ok(end?.blockedOnMaxStreamsMs > 1000, `the flooder reports time blocked on MAX_STREAMS (${end?.blockedOnMaxStreamsMs} ms)`)
})

t.test('staked: an identity in --stakes gets MAX_STREAMS by stake share and is not throttled by the unstaked rate', async (t) => {
  const net = withTestNet(t)
  const { netns, local, remote } = net.addLinkedNamespace()
  const staked = writeKeypair('staked.json')
  const other = writeKeypair('other.json')
  const stakes = join(dir, 'stakes.txt')
  // 1 % of the stake: 128 + 998 streams, capped at 512
  writeFileSync(stakes, `# pubkey lamports\n${staked.pubkey} 1000000000\n${other.pubkey} 99000000000\n`)
  const sink = await startSink(net, netns, `${remote.ip}:8004`, ['--agave-qos', '--stakes', stakes])
  t.same(sink.events.find((e) => e.event === 'start')?.data.agaveQos?.stakedIdentities, 2)
  const flood = runFlood(net, ['--iface', local.name, '--server', `${remote.ip}:8004`, '--io', 'socket', '--keypair', staked.path, '--count', '20000', '--duration', '30'])
  t.same(await flood.exited, { code: 0, signal: null }, flood.stderr())
  const sinkEnd = await stopSink(sink)
  const end = endOf(flood)
  t.equal(sinkEnd?.qos?.connection_added_from_staked_peer, 1)
  t.equal(sinkEnd?.qos?.connection_added_from_unstaked_peer, 0)
  t.equal(sinkEnd?.maxStreamsLastAdmitted, 512, 'MAX_STREAMS 512 for 1 % of the stake')
  t.equal(sinkEnd?.qos?.throttled_unstaked_streams, 0)
  t.equal(sinkEnd?.qos?.throttled_staked_streams, 0, 'an unloaded sink does not throttle staked streams')
  t.equal(end?.acked, 20000, 'all 20000 acked: far beyond what 200 streams/s would allow in the time')
  t.equal(sinkEnd?.transactions, 20000)
})

t.test('staked under load: past 95 % of --max-streams-per-ms, staked streams are throttled by stake share', async (t) => {
  const net = withTestNet(t)
  const { netns, local, remote } = net.addLinkedNamespace()
  const staked = writeKeypair('loaded.json')
  const stakes = join(dir, 'stakes-loaded.txt')
  writeFileSync(stakes, `${staked.pubkey} 50\n${writeKeypair('half.json').pubkey} 50\n`)
  // a capacity of 1 stream/ms: loaded from about 800 staked streams/s; then half the stake gets 50 per 100 ms
  const sink = await startSink(net, netns, `${remote.ip}:8004`, ['--agave-qos', '--stakes', stakes, '--max-streams-per-ms', '1', '--interval', '0.1'])
  // four connections: up to 4 x 100 per 100 ms unloaded, well past the 95 per 100 ms that marks the sink loaded
  const flood = runFlood(net, ['--iface', local.name, '--server', `${remote.ip}:8004`, '--io', 'socket', '--keypair', staked.path, '--connections', '4', '--duration', '5', '--interval', '0.5'])
  t.same(await flood.exited, { code: 0, signal: null }, flood.stderr())
  const sinkEnd = await stopSink(sink)
  const end = endOf(flood)
  const intervals = sink.events.filter((e) => e.event === 'interval').map((e) => e.data.qos)
  t.equal(sinkEnd?.qos?.connection_added_from_staked_peer, 4)
  t.ok(intervals.some((q) => q.staked_throttling_enabled === 1), 'the sink saw itself loaded')
  t.ok(Math.max(...intervals.map((q) => q.staked_stream_load_ema)) >= 4, 'its staked load EMA reached the threshold (4 per 5 ms)')
  t.ok(sinkEnd?.qos?.throttled_staked_streams > 0, `staked streams throttled (${sinkEnd?.qos?.throttled_staked_streams})`)
  t.equal(sinkEnd?.qos?.throttled_unstaked_streams, 0)
  // each connection: its first 128 streams at once, then at most 100 per 100 ms
  t.ok(sinkEnd?.transactions <= 4 * (128 + 1000 * 6), `${sinkEnd?.transactions} transactions within the capacity`)
  t.equal(sinkEnd?.transactions, end?.acked)
})

t.test('the per-IP connection rate: 8 new connections per minute, the ninth ignored and counted; the flooder carries on', async (t) => {
  const net = withTestNet(t)
  const { netns, local, remote } = net.addLinkedNamespace()
  const sink = await startSink(net, netns, `${remote.ip}:8004`, ['--agave-qos'])
  const flood = runFlood(net, ['--iface', local.name, '--server', `${remote.ip}:8004`, '--io', 'socket', '--connections', '9', '--keep-alive', '0.5', '--handshake-timeout', '1', '--duration', '4', '--interval', '0.5'])
  t.same(await flood.exited, { code: 0, signal: null }, flood.stderr())
  const sinkEnd = await stopSink(sink)
  const end = endOf(flood)
  t.equal(sinkEnd?.qos?.connection_added_from_unstaked_peer, 8)
  t.ok(sinkEnd?.qos?.connection_rate_limited_per_ipaddr >= 1, `rate limited (${sinkEnd?.qos?.connection_rate_limited_per_ipaddr})`)
  t.equal(sinkEnd?.qos?.connection_add_failed_unstaked_node, 0, 'the identity limit was never reached')
  t.ok(end?.connectionsRefused >= 1, `the flooder counts the connection that never came up (${end?.connectionsRefused})`)
  t.ok(end?.acked > 0)
  t.equal(sinkEnd?.transactions, end?.acked)
})

t.test('without --agave-qos nothing changes: nine connections of one identity, no qos counters', async (t) => {
  const net = withTestNet(t)
  const { netns, local, remote } = net.addLinkedNamespace()
  const sink = await startSink(net, netns, `${remote.ip}:8004`, [])
  t.equal(sink.events.find((e) => e.event === 'start')?.data.idleTimeoutSec, 30)
  const flood = runFlood(net, ['--iface', local.name, '--server', `${remote.ip}:8004`, '--io', 'socket', '--connections', '9', '--count', '20000', '--duration', '30'])
  t.same(await flood.exited, { code: 0, signal: null }, flood.stderr())
  const sinkEnd = await stopSink(sink)
  const end = endOf(flood)
  t.equal(sinkEnd?.connections, 9)
  t.equal(sinkEnd?.qos, undefined)
  t.equal(end?.connectionsRefused, 0)
  t.equal(sinkEnd?.transactions, 20000)
})

t.test('bad --stakes and QoS options: exit 2 with the line at fault, before listening', async (t) => {
  const net = withTestNet(t)
  const { netns, remote } = net.addLinkedNamespace()
  const bad = join(dir, 'bad-stakes.txt')
  writeFileSync(bad, `${writeKeypair('k.json').pubkey} 5\nnot_base58! 7\n`)
  const run = async (args: string[]) => {
    const [cmd, argv] = nodeCommand(sinkBin, ['--listen', `${remote.ip}:8004`, '--duration', '1', ...args])
    const sink = followTool(net.spawn(netns, cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] }))
    const exit = await sink.exited
    return { code: exit.code, stderr: sink.stderr(), started: sink.events.some((e) => e.event === 'start') }
  }
  const badLine = await run(['--agave-qos', '--stakes', bad])
  t.equal(badLine.code, 2)
  t.match(badLine.stderr, /line 2: .*not_base58!.* is not a base58/)
  t.notOk(badLine.started)
  const missing = await run(['--agave-qos', '--stakes', join(dir, 'nosuch.txt')])
  t.equal(missing.code, 2)
  t.match(missing.stderr, /nosuch\.txt/)
  const withoutQos = await run(['--stakes', bad])
  t.equal(withoutQos.code, 2)
  t.match(withoutQos.stderr, /need --agave-qos/)
})
