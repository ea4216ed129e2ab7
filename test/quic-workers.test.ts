// quic-flood --workers and quic-sink --workers on a multi-queue veth bed: each flood worker's AF_XDP socket
// on its own queue (or its own UDP sockets), each sink worker's SO_REUSEPORT socket, the totals exact and
// merged, Agave's QoS limits held over all sink workers, and --workers' usage errors before anything is attached.
import { execFileSync } from 'node:child_process'
import t from 'tap'
import { withTestNet } from '@kbx/testbed'
import type { ToolRun } from '@kbx/testbed'
import { runFlood, startSink, stopSink } from './testing/quic-bed.js'

// floods of several seconds each on a loaded machine: above tap's 120 s per file
t.setTimeout(300_000)

const endOf = (run: ToolRun) => run.events.find((e) => e.event === 'end')?.data
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0)

for (const io of ['xdp', 'socket'] as const) {
  t.test(`--io ${io} --workers 2 against quic-sink --workers 2 on a 2-queue bed: every worker busy, totals exact`, async (t) => {
    const net = withTestNet(t)
    const { netns, local, remote } = net.addLinkedNamespace({ queues: 2 })
    const sink = await startSink(net, netns, `${remote.ip}:8004`, ['--workers', '2'])
    const count = 200_000
    // 16 connections: which queue (and which sink socket) a connection's packets take is a hash of its
    // 4-tuple, so 16 of them leave a worker without any with a chance of 2^-15
    const flood = runFlood(net, ['--iface', local.name, '--server', `${remote.ip}:8004`, '--io', io, '--workers', '2', '--connections', '16', '--count', String(count), '--duration', '90', '--interval', '1'])
    t.same(await flood.exited, { code: 0, signal: null }, flood.stderr())
    const end = endOf(flood)
    const sinkEnd = await stopSink(sink)
    t.equal(end?.acked, count, 'every transaction acknowledged')
    t.equal(sinkEnd?.transactions, end?.acked, "the sink's count (over its workers) == the flood's acked count (over its workers)")
    const workers: any[] = end?.workers ?? []
    t.equal(workers.length, 2, 'one report per flood worker')
    t.same(workers.map((w) => w.sent), [count / 2, count / 2], '--count split evenly')
    t.ok(workers.every((w) => w.acked > 0), `every flood worker's connections acked (${workers.map((w) => w.acked).join(', ')})`)
    t.equal(sum(workers.map((w) => w.acked)), end?.acked, 'the total is the sum of the workers')
    t.equal(end?.servers?.[0]?.acked, end?.acked, "the server's report merges every worker's connections")
    t.equal(end?.servers?.[0]?.connections?.length, 16, 'all 16 connections in the server report')
    t.equal(end?.ackLatencyUs?.count, count, 'one latency per acked transaction, merged over the workers')
    if (io === 'xdp') {
      t.same(workers.map((w) => w.queue), [0, 1], 'worker i on queue i')
      t.ok(workers.every((w) => w.rxFrames > 0), `both RX queues carried return traffic (frames ${workers.map((w) => w.rxFrames).join(', ')})`)
      // a datagram that arrived on the other worker's queue is handed over, never lost
      t.equal(sum(workers.map((w) => w.rxHandedOff)), sum(workers.map((w) => w.rxHandoffReceived)), 'every datagram handed over was read by its owner')
      t.equal(sum(workers.map((w) => w.rxHandoffDropped)), 0, 'no inbox overflowed')
      t.equal(end?.workers?.[1]?.localPort, end?.workers?.[0]?.localPort + end?.workers?.[0]?.localPorts, "worker 1's ports follow worker 0's")
    }
    const sinkWorkers: any[] = sinkEnd?.workers ?? []
    t.equal(sinkWorkers.length, 2, 'one report per sink worker')
    t.ok(sinkWorkers.every((w) => w.transactions > 0), `both sink sockets received transactions (${sinkWorkers.map((w) => w.transactions).join(', ')})`)
    t.equal(sum(sinkWorkers.map((w) => w.transactions)), sinkEnd?.transactions, "the sink's total is the sum of its workers")
  })
}

for (const fanout of ['all', 'spread'] as const) {
  t.test(`--workers 2 --fanout ${fanout} over two sinks: the fan-out means what it means with one worker`, async (t) => {
    const net = withTestNet(t)
    const { netns, local, remote } = net.addLinkedNamespace({ queues: 2 })
    const addresses = [`${remote.ip}:8004`, `${remote.ip}:8005`]
    const sinks = await Promise.all(addresses.map((a) => startSink(net, netns, a)))
    const count = 20_000
    const flood = runFlood(net, ['--iface', local.name, ...addresses.flatMap((a) => ['--server', a]), '--fanout', fanout, '--io', 'xdp', '--workers', '2', '--connections', '4', '--count', String(count), '--duration', '60'])
    t.same(await flood.exited, { code: 0, signal: null }, flood.stderr())
    const end = endOf(flood)
    const sinkEnds = await Promise.all(sinks.map(stopSink))
    const servers: any[] = end?.servers ?? []
    t.same(servers.map((s) => s.server), addresses, 'one entry per server, merged over the workers')
    addresses.forEach((a, i) => {
      const acked = servers.find((s) => s.server === a)?.acked
      t.equal(sinkEnds[i]?.transactions, acked, `${a}: its sink's count == its acked`)
      if (fanout === 'all') t.equal(acked, count, `${a}: every transaction (--count per server, split over the workers)`)
      else t.ok(acked > 0, `${a}: a share of the round-robin (${acked})`)
      t.equal(servers.find((s) => s.server === a)?.connections?.length, 4, `${a}: its 4 connections over both workers`)
    })
    t.equal(end?.acked, fanout === 'all' ? 2 * count : count, fanout === 'all' ? 'every transaction to both servers' : 'each transaction to one server')
  })
}

t.test('quic-sink --workers 2 --agave-qos: the per-identity limit holds over both sockets (8 admitted, the ninth and tenth refused)', async (t) => {
  const net = withTestNet(t)
  const { netns, local, remote } = net.addLinkedNamespace()
  // the per-IP rate is raised so that the identity's limit is what refuses connections
  const sink = await startSink(net, netns, `${remote.ip}:8004`, ['--workers', '2', '--agave-qos', '--max-connections-per-ipaddr-per-min', '1000'])
  const flood = runFlood(net, ['--iface', local.name, '--server', `${remote.ip}:8004`, '--io', 'socket', '--connections', '10', '--keep-alive', '0.5', '--duration', '3', '--interval', '0.5'])
  t.same(await flood.exited, { code: 0, signal: null }, flood.stderr())
  const sinkEnd = await stopSink(sink)
  const qos = sinkEnd?.qos
  t.equal(qos?.connection_added_from_unstaked_peer, 8, 'eight connections of the one identity admitted over both workers')
  t.ok(qos?.connection_add_failed_unstaked_node >= 2, `the ninth and tenth refused (${qos?.connection_add_failed_unstaked_node} attempts)`)
  const opens = sink.events.filter((e) => e.event === 'interval').map((e) => e.data.qos.open_unstaked_connections)
  t.equal(Math.max(...opens), 8, `never more than 8 open over both workers (${opens.join(' ')})`)
  t.ok((sinkEnd?.workers ?? []).every((w: any) => w.connections > 0), `both sockets took connections (${(sinkEnd?.workers ?? []).map((w: any) => w.connections).join(', ')})`)
  t.equal(sinkEnd?.transactions, endOf(flood)?.acked, "the sink's count is the flooder's acked count")
})

t.test('--workers usage errors: exit 2 with the reason, nothing attached', async (t) => {
  const net = withTestNet(t)
  const { netns, local, remote } = net.addLinkedNamespace({ queues: 2 })
  const server = ['--iface', local.name, '--server', `${remote.ip}:8004`]
  const xdpAttached = () => execFileSync('ip', ['-o', 'link', 'show', 'dev', local.name], { encoding: 'utf8' }).includes(' xdp')

  const zero = runFlood(net, [...server, '--workers', '0', '--count', '10'])
  t.equal((await zero.exited).code, 2, '--workers 0')
  t.match(zero.stderr(), /--workers/)

  const tooMany = runFlood(net, [...server, '--io', 'xdp', '--workers', '3', '--connections', '3', '--count', '10'])
  t.equal((await tooMany.exited).code, 2, 'more workers than RX queues')
  t.match(tooMany.stderr(), /--workers 3 from --queue 0: \S+ has 2 RX queues/)
  t.notOk(xdpAttached(), 'no XDP program attached')

  const offset = runFlood(net, [...server, '--io', 'xdp', '--workers', '2', '--queue', '1', '--connections', '2', '--count', '10'])
  t.equal((await offset.exited).code, 2, '--queue 1 leaves one queue for two workers')
  t.match(offset.stderr(), /queues 1\.\.2 are needed/)
  t.notOk(xdpAttached(), 'no XDP program attached')

  const fewConnections = runFlood(net, [...server, '--io', 'socket', '--workers', '2', '--count', '10'])
  t.equal((await fewConnections.exited).code, 2, 'fewer connections than workers')
  t.match(fewConnections.stderr(), /--connections 1 over --workers 2/)

  const sink = await startSink(net, netns, `${remote.ip}:8004`, ['--workers', '0'])
  t.equal((await sink.exited).code, 2, 'quic-sink --workers 0')
  t.match(sink.stderr(), /--workers/)
})
