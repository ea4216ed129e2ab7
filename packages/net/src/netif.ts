import { execFileSync } from 'node:child_process'
import { readFileSync, readdirSync, readlinkSync } from 'node:fs'
import { basename } from 'node:path'
import { NetError, errnoOf, unknownInterfaceHint } from '@kbx/errors'
import { formatMac, parseIPv4 } from './address.js'

export interface InterfaceInfo {
  name: string
  ifindex: number
  mac: string
  mtu: number
  /** IPv4 addresses without prefix length. */
  ipv4: string[]
  /** IPv4 addresses as CIDR, e.g. "10.0.0.1/24". */
  ipv4Cidrs: string[]
  ipv6: string[]
  /** Active (real) RX/TX queue counts. */
  rxQueues: number
  txQueues: number
  /** Administratively up (IFF_UP). */
  up: boolean
  /** Carrier present (LOWER_UP). */
  lowerUp: boolean
  operstate: string
  loopback: boolean
  /** rtnetlink link kind, e.g. "veth", "vlan"; undefined for plain hardware NICs. */
  kind: string | undefined
  /** Kernel driver bound to the device (from sysfs), when there is one and it is visible. */
  driver: string | undefined
  netns: string | undefined
}

export interface NetOptions {
  /** Named network namespace (as in `ip -n NAME`); default: the caller's namespace. */
  netns?: string
}

interface IpAddrInfo {
  family?: string
  local?: string
  prefixlen?: number
}

interface IpLink {
  ifindex: number
  ifname: string
  flags?: string[]
  mtu: number
  operstate?: string
  link_type?: string
  address?: string
  linkinfo?: { info_kind?: string }
  num_tx_queues?: number
  num_rx_queues?: number
  addr_info?: IpAddrInfo[]
}

interface IpRoute {
  type?: string
  dst: string
  gateway?: string
  dev?: string
  prefsrc?: string
}

interface IpNeighbour {
  dst: string
  dev?: string
  lladdr?: string
  state?: string[]
}

class IpCommandError extends Error {
  constructor(
    readonly args: string[],
    readonly stderr: string,
    readonly notFound: boolean,
  ) {
    super(`ip ${args.join(' ')}: ${stderr.trim() || 'failed'}`)
  }
}

function ip(options: NetOptions, args: string[]): string {
  const full = options.netns === undefined ? args : ['-n', options.netns, ...args]
  try {
    return execFileSync('ip', full, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 })
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string | Buffer }
    throw new IpCommandError(full, e.stderr === undefined ? String(e.message) : String(e.stderr), e.code === 'ENOENT')
  }
}

function ipJson<T>(options: NetOptions, args: string[]): T[] {
  const out = ip(options, ['-j', ...args]).trim()
  if (out === '') return []
  return JSON.parse(out) as T[]
}

function ipMissing(err: IpCommandError, op: string): NetError {
  return new NetError('the `ip` command (iproute2) is not installed', {
    op,
    errno: errnoOf('ENOENT'),
    hint: 'install iproute2 (apt-get install iproute2)',
    cause: err,
  })
}

function ipLinkHint(options: NetOptions, ifname: string): string {
  return unknownInterfaceHint(ifname, options.netns === undefined ? 'see `ip link`' : `see \`ip -n ${options.netns} link\``)
}

function readSysfs(ifname: string, file: string): string | undefined {
  try {
    return readFileSync(`/sys/class/net/${ifname}/${file}`, 'utf8').trim()
  } catch {
    return undefined
  }
}

function sysfsQueueCounts(ifname: string): { rx: number; tx: number } | undefined {
  try {
    const entries = readdirSync(`/sys/class/net/${ifname}/queues`)
    return {
      rx: entries.filter((e) => e.startsWith('rx-')).length,
      tx: entries.filter((e) => e.startsWith('tx-')).length,
    }
  } catch {
    return undefined
  }
}

function sysfsDriver(ifname: string): string | undefined {
  try {
    return basename(readlinkSync(`/sys/class/net/${ifname}/device/driver`))
  } catch {
    return undefined
  }
}

function unknownInterface(ifname: string, options: NetOptions, cause?: unknown): NetError {
  const where = options.netns === undefined ? '' : ` in network namespace ${options.netns}`
  return new NetError(`unknown interface ${JSON.stringify(ifname)}${where}`, {
    op: 'look up interface',
    errno: errnoOf('ENODEV'),
    hint: ipLinkHint(options, ifname),
    cause,
  })
}

/**
 * Index, MAC, MTU, addresses, queue counts and state of an interface (from `ip -j -d addr show` and,
 * in the caller's own namespace, sysfs for the active queue counts and driver).
 * NetError (op 'look up interface', ENODEV) for an unknown interface.
 */
export function interfaceInfo(ifname: string, options: NetOptions = {}): InterfaceInfo {
  if (typeof ifname !== 'string' || !/^[^\s/:]{1,15}$/.test(ifname) || ifname === '.' || ifname === '..') {
    throw unknownInterface(String(ifname), options)
  }
  let links: IpLink[]
  try {
    links = ipJson<IpLink>(options, ['-d', 'addr', 'show', 'dev', ifname])
  } catch (err) {
    if (err instanceof IpCommandError) {
      if (err.notFound) throw ipMissing(err, 'look up interface')
      if (/does not exist|cannot find device/i.test(err.stderr)) throw unknownInterface(ifname, options, err)
      if (/network namespace|netns/i.test(err.stderr) && options.netns !== undefined) {
        throw new NetError(`unknown network namespace ${JSON.stringify(options.netns)}`, {
          op: 'look up interface',
          errno: errnoOf('ENOENT'),
          hint: 'see `ip netns list`',
          cause: err,
        })
      }
      throw new NetError(`cannot look up interface ${JSON.stringify(ifname)}: ${err.stderr.trim()}`, {
        op: 'look up interface',
        hint: ipLinkHint(options, ifname),
        cause: err,
      })
    }
    throw err
  }
  const link = links.find((l) => l.ifname === ifname) ?? links[0]
  if (link === undefined) throw unknownInterface(ifname, options)
  const flags = link.flags ?? []
  const addrs = link.addr_info ?? []
  // sysfs shows the namespace /sys was mounted in; trust it only when it agrees with rtnetlink.
  const sysfsIsOurs = options.netns === undefined && readSysfs(ifname, 'ifindex') === String(link.ifindex)
  const queues = sysfsIsOurs ? sysfsQueueCounts(ifname) : undefined
  return {
    name: link.ifname,
    ifindex: link.ifindex,
    mac: link.address !== undefined && /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(link.address)
      ? link.address.toLowerCase()
      : formatMac(new Uint8Array(6)),
    mtu: link.mtu,
    ipv4: addrs.filter((a) => a.family === 'inet' && a.local !== undefined).map((a) => a.local!),
    ipv4Cidrs: addrs
      .filter((a) => a.family === 'inet' && a.local !== undefined)
      .map((a) => `${a.local}/${a.prefixlen ?? 32}`),
    ipv6: addrs.filter((a) => a.family === 'inet6' && a.local !== undefined).map((a) => a.local!),
    rxQueues: queues?.rx ?? link.num_rx_queues ?? 1,
    txQueues: queues?.tx ?? link.num_tx_queues ?? 1,
    up: flags.includes('UP'),
    lowerUp: flags.includes('LOWER_UP'),
    operstate: (link.operstate ?? 'UNKNOWN').toLowerCase(),
    loopback: flags.includes('LOOPBACK') || link.link_type === 'loopback',
    kind: link.linkinfo?.info_kind,
    driver: sysfsIsOurs ? sysfsDriver(ifname) : undefined,
    netns: options.netns,
  }
}

export interface NextHop {
  /** Outgoing interface. */
  iface: string
  ifindex: number
  /** Source address the kernel would use (route prefsrc, else the interface's first IPv4 address). */
  srcIp: string
  srcMac: string
  /** The gateway when there is one, else the destination itself. */
  nextHopIp: string
  nextHopMac: string
  gateway?: string
  /** 'unicast', 'multicast' or 'broadcast'. */
  routeType: string
  /** Neighbour state the MAC came from, e.g. 'REACHABLE', 'PERMANENT'; undefined for multicast/broadcast. */
  neighbourState: string | undefined
}

export interface ResolveNextHopOptions extends NetOptions {
  /** Outgoing interface, as `ip route get DST oif IF`. */
  iface?: string
  /** How long to wait for ARP after triggering resolution; default 1000 ms. */
  timeoutMs?: number
}

const usableNeighbourStates = new Set(['REACHABLE', 'STALE', 'DELAY', 'PROBE', 'PERMANENT', 'NOARP'])

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}

/** 01:00:5e + low 23 bits of an IPv4 multicast group (RFC 1112). */
export function multicastMac(group: number): string {
  const mac = new Uint8Array([0x01, 0x00, 0x5e, (group >>> 16) & 0x7f, (group >>> 8) & 0xff, group & 0xff])
  return formatMac(mac)
}

function lookUpNeighbour(options: NetOptions, nextHopIp: string, iface: string): IpNeighbour | undefined {
  const entries = ipJson<IpNeighbour>(options, ['neigh', 'show', 'to', nextHopIp, 'dev', iface])
  return entries.find(
    (n) => n.dst === nextHopIp && n.lladdr !== undefined && (n.state ?? []).some((s) => usableNeighbourStates.has(s)),
  )
}

/**
 * Where a packet to `dstIp` goes, like `ip route get DST [oif IF]` followed by the neighbour table:
 * outgoing interface, source address and MAC, next hop and its MAC. When the next hop has no usable
 * neighbour entry, resolution is triggered (`ip neigh replace NH dev IF use`) and awaited for up to
 * `timeoutMs`. NetError when there is no route, the destination is local, or the MAC stays unknown.
 * Synchronous (control path): it runs `ip` and may block for up to timeoutMs.
 */
export function resolveNextHop(dstIp: string, options: ResolveNextHopOptions = {}): NextHop {
  const dst = parseIPv4(dstIp)
  const op = `resolve next hop for ${dstIp}`
  if (options.iface !== undefined) interfaceInfo(options.iface, options)
  const args = ['route', 'get', dstIp, ...(options.iface === undefined ? [] : ['oif', options.iface])]
  let route: IpRoute | undefined
  try {
    route = ipJson<IpRoute>(options, args)[0]
  } catch (err) {
    if (err instanceof IpCommandError) {
      if (err.notFound) throw ipMissing(err, op)
      const via = options.iface === undefined ? '' : ` via ${options.iface}`
      throw new NetError(`no route to ${dstIp}${via}: ${err.stderr.trim()}`, {
        op,
        errno: /unreachable/i.test(err.stderr) ? errnoOf('ENETUNREACH') : undefined,
        hint:
          options.iface === undefined
            ? 'add a route (`ip route add …`) or pass the interface explicitly'
            : `check that ${options.iface} is up and has a route or address covering ${dstIp} (\`ip addr show dev ${options.iface}\`, \`ip route\`)`,
        cause: err,
      })
    }
    throw err
  }
  if (route === undefined || route.dev === undefined) {
    throw new NetError(`no route to ${dstIp}`, { op, hint: 'see `ip route`' })
  }
  const routeType = route.type ?? 'unicast'
  if (routeType === 'local' || route.dev === 'lo') {
    throw new NetError(`${dstIp} is a local address (the kernel routes it via ${route.dev})`, {
      op,
      hint:
        'AF_XDP and XDP need a real interface: send to an address reachable through one ' +
        '(e.g. the far end of a veth pair in another namespace), not a local or loopback address',
    })
  }
  if (routeType !== 'unicast' && routeType !== 'multicast' && routeType !== 'broadcast') {
    throw new NetError(`the route to ${dstIp} is of type ${routeType}`, {
      op,
      errno: errnoOf('ENETUNREACH'),
      hint: 'see `ip route get ' + dstIp + '`',
    })
  }
  const iface = interfaceInfo(route.dev, options)
  if (iface.loopback) {
    throw new NetError(`${dstIp} is routed via the loopback interface ${iface.name}`, {
      op,
      hint: 'AF_XDP and XDP need a real interface; pick a destination reachable through one',
    })
  }
  const srcIp = route.prefsrc ?? iface.ipv4[0]
  if (srcIp === undefined) {
    throw new NetError(`interface ${iface.name} has no IPv4 address to send from`, {
      op,
      hint: `add one: ip addr add ADDR/PREFIX dev ${iface.name}`,
    })
  }
  const nextHopIp = route.gateway ?? dstIp
  const result = (nextHopMac: string, neighbourState: string | undefined): NextHop => ({
    iface: iface.name,
    ifindex: iface.ifindex,
    srcIp,
    srcMac: iface.mac,
    nextHopIp,
    nextHopMac,
    ...(route.gateway === undefined ? {} : { gateway: route.gateway }),
    routeType,
    neighbourState,
  })
  if (routeType === 'multicast') return result(multicastMac(dst), undefined)
  if (routeType === 'broadcast') return result('ff:ff:ff:ff:ff:ff', undefined)

  let neighbour = lookUpNeighbour(options, nextHopIp, iface.name)
  if (neighbour === undefined) {
    try {
      // NTF_USE: the kernel starts resolving (ARP) an absent or failed entry.
      ip(options, ['neigh', 'replace', nextHopIp, 'dev', iface.name, 'use'])
    } catch {
      // Older kernels refuse NTF_USE here; the lookups below then only see what ARP already knows.
    }
    const deadline = Date.now() + (options.timeoutMs ?? 1000)
    for (;;) {
      neighbour = lookUpNeighbour(options, nextHopIp, iface.name)
      if (neighbour !== undefined || Date.now() >= deadline) break
      sleepSync(Math.min(50, Math.max(1, deadline - Date.now())))
    }
  }
  if (neighbour === undefined) {
    throw new NetError(`no MAC address for next hop ${nextHopIp} on ${iface.name} (ARP got no answer)`, {
      op,
      errno: errnoOf('EHOSTUNREACH'),
      hint:
        `check that ${nextHopIp} is up and reachable on ${iface.name}, or add a static entry: ` +
        `ip ${options.netns === undefined ? '' : `-n ${options.netns} `}neigh replace ${nextHopIp} lladdr MAC dev ${iface.name} nud permanent`,
    })
  }
  const state = (neighbour.state ?? []).find((s) => usableNeighbourStates.has(s))
  return result(neighbour.lladdr!.toLowerCase(), state)
}
