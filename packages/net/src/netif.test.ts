import { readFileSync } from 'node:fs'
import { randomInt } from 'node:crypto'
import t from 'tap'
import { NetError, UsageError } from '@kbx/errors'
import { interfaceInfo, multicastMac, resolveNextHop } from './index.js'
import { createVethNetns, run } from './testing/netns.js'

t.test('interfaceInfo(lo)', async (t) => {
  const lo = interfaceInfo('lo')
  t.match(lo, { name: 'lo', ifindex: 1, mac: '00:00:00:00:00:00', mtu: 65536, up: true, loopback: true, kind: undefined })
  t.ok(lo.ipv4.includes('127.0.0.1'))
  t.ok(lo.ipv4Cidrs.includes('127.0.0.1/8'))
  t.ok(lo.rxQueues >= 1 && lo.txQueues >= 1)
})

t.test('unknown interfaces throw NetError with a hint', async (t) => {
  for (const name of ['kbxnope0', 'a/b', '', 'x'.repeat(16)]) {
    t.throws(() => interfaceInfo(name), { name: 'NetError', op: 'look up interface', code: 'ENODEV', hint: /ip link/ }, JSON.stringify(name))
  }
  t.throws(() => interfaceInfo('lo', { netns: 'kbx-no-such-ns' }), NetError)
})

t.test('interfaceInfo on a multi-queue veth, from both namespaces', async (t) => {
  const net = createVethNetns(t, { rxQueues: 3, txQueues: 2 })
  const host = interfaceInfo(net.hostIf)
  t.match(host, {
    name: net.hostIf,
    mac: net.hostMac,
    mtu: 1500,
    ipv4: [net.hostIp],
    ipv4Cidrs: [`${net.hostIp}/29`],
    rxQueues: 3,
    txQueues: 2,
    up: true,
    loopback: false,
    kind: 'veth',
  })
  t.equal(host.ifindex, Number(readFileSync(`/sys/class/net/${net.hostIf}/ifindex`, 'utf8')))
  const peer = interfaceInfo(net.peerIf, { netns: net.ns })
  t.match(peer, { name: net.peerIf, mac: net.peerMac, ipv4: [net.peerIp], rxQueues: 3, txQueues: 2, up: true, kind: 'veth', netns: net.ns })
  t.throws(() => interfaceInfo(net.peerIf), { name: 'NetError', op: 'look up interface' }, 'the peer is not in our namespace')
  run('ip', ['link', 'set', net.hostIf, 'down'])
  t.equal(interfaceInfo(net.hostIf).up, false)
})

t.test('resolveNextHop on a veth pair in a fresh namespace', async (t) => {
  const net = createVethNetns(t)

  t.test('a live neighbour is resolved by ARP', async (t) => {
    const hop = resolveNextHop(net.peerIp)
    t.match(hop, {
      iface: net.hostIf,
      srcIp: net.hostIp,
      srcMac: net.hostMac,
      nextHopIp: net.peerIp,
      nextHopMac: net.peerMac,
      routeType: 'unicast',
    })
    t.equal(hop.gateway, undefined)
    t.equal(hop.ifindex, interfaceInfo(net.hostIf).ifindex)
    t.match(hop.neighbourState, /^(REACHABLE|STALE|DELAY|PROBE)$/)
    t.same(resolveNextHop(net.peerIp, { iface: net.hostIf }), resolveNextHop(net.peerIp))
  })

  t.test('a static neighbour entry is used as is', async (t) => {
    const staticIp = net.freeIps[0]!
    run('ip', ['neigh', 'replace', staticIp, 'lladdr', '02:aa:bb:cc:dd:ee', 'dev', net.hostIf, 'nud', 'permanent'])
    t.match(resolveNextHop(staticIp), { iface: net.hostIf, nextHopIp: staticIp, nextHopMac: '02:aa:bb:cc:dd:ee', neighbourState: 'PERMANENT' })
  })

  t.test('a destination behind a gateway resolves the gateway', async (t) => {
    const gatewayIp = net.freeIps[0]!
    const dst = `198.18.${randomInt(256)}.${1 + randomInt(254)}`
    run('ip', ['route', 'add', `${dst}/32`, 'via', gatewayIp, 'dev', net.hostIf])
    t.teardown(() => {
      try {
        run('ip', ['route', 'del', `${dst}/32`, 'via', gatewayIp, 'dev', net.hostIf])
      } catch {
        // removed with the veth
      }
    })
    t.match(resolveNextHop(dst), { iface: net.hostIf, srcIp: net.hostIp, gateway: gatewayIp, nextHopIp: gatewayIp, nextHopMac: '02:aa:bb:cc:dd:ee' })
  })

  t.test('from inside the namespace', async (t) => {
    t.match(resolveNextHop(net.hostIp, { netns: net.ns }), { iface: net.peerIf, srcIp: net.peerIp, srcMac: net.peerMac, nextHopMac: net.hostMac })
    t.throws(() => resolveNextHop('203.0.113.9', { netns: net.ns }), { name: 'NetError', code: 'ENETUNREACH' }, 'no route in the namespace')
  })

  t.test('an address nobody answers for gives NetError with the static-entry hint', async (t) => {
    const silentIp = net.freeIps[1]!
    t.throws(() => resolveNextHop(silentIp, { timeoutMs: 600 }), {
      name: 'NetError',
      code: 'EHOSTUNREACH',
      message: new RegExp(`no MAC address for next hop ${silentIp.replaceAll('.', '\\.')} on ${net.hostIf}`),
      hint: new RegExp(`ip neigh replace ${silentIp.replaceAll('.', '\\.')} lladdr MAC dev ${net.hostIf} nud permanent`),
    })
  })

  t.test('local and loopback destinations are refused', async (t) => {
    for (const [dst, opts] of [['127.0.0.1', {}], [net.hostIp, {}], [net.peerIp, { iface: 'lo' }]] as const) {
      t.throws(() => resolveNextHop(dst, opts), { name: 'NetError', hint: /real interface/ }, `${dst} ${JSON.stringify(opts)}`)
    }
    t.throws(() => resolveNextHop(net.peerIp, { iface: 'kbxnope0' }), { name: 'NetError', op: 'look up interface' })
    t.throws(() => resolveNextHop('10.0.0'), UsageError)
  })
})

t.test('multicast and broadcast next hops need no ARP', async (t) => {
  t.equal(multicastMac(0xe0000001), '01:00:5e:00:00:01')
  t.equal(multicastMac(0xefff8001), '01:00:5e:7f:80:01', 'only the low 23 bits are mapped')
  const net = createVethNetns(t)
  const opts = { netns: net.ns, iface: net.peerIf }
  t.match(resolveNextHop('239.1.2.3', opts), { iface: net.peerIf, srcIp: net.peerIp, nextHopMac: '01:00:5e:01:02:03', routeType: 'multicast', neighbourState: undefined })
  t.match(resolveNextHop('255.255.255.255', opts), { iface: net.peerIf, nextHopMac: 'ff:ff:ff:ff:ff:ff', routeType: 'broadcast' })
  const subnetBroadcast = net.freeIps[3]!.replace(/\d+$/, (last) => String(Number(last) + 1))
  t.match(resolveNextHop(subnetBroadcast, { netns: net.ns }), { nextHopMac: 'ff:ff:ff:ff:ff:ff', routeType: 'broadcast' })
})
