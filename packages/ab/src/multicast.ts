// Kernel memberships of ab-arbitrate's multicast channels: one UDP socket per (interface, group[, source])
// joined with IP_ADD_MEMBERSHIP, or IP_ADD_SOURCE_MEMBERSHIP for a source-specific join (node's dgram:
// addMembership / addSourceSpecificMembership with the interface's address, which is how the kernel picks
// the interface). A membership makes the kernel send IGMP reports (IGMPv3 unless the interface's
// force_igmp_version says otherwise) and open the NIC's multicast filter; the packets themselves are taken
// by XDP before any socket sees them. leave() drops every membership (IGMP leave) and closes the sockets;
// when the process dies without leaving (SIGKILL), the kernel drops the memberships with the sockets.
import dgram from 'node:dgram'
import { readFileSync } from 'node:fs'
import { NetError, UsageError } from '@kbx/errors'
import type { InterfaceInfo } from '@kbx/net'
import { formatGroupSpec, type Channel } from './channels.js'

export interface Membership {
  iface: string
  /** The interface's address the join names (the kernel finds the interface by it). */
  address: string
  group: string
  source?: string
}

/**
 * The memberships of the channels, A's groups on line A's interface and B's on line B's, one per
 * (interface, group, source): two channels on one group share its membership. A UsageError before anything
 * is joined when a line's interface has no IPv4 address to join with.
 */
export function membershipsOf(channels: Channel[], lineA: InterfaceInfo, lineB: InterfaceInfo): Membership[] {
  const out = new Map<string, Membership>()
  for (const c of channels) {
    for (const [info, g] of [[lineA, c.a], [lineB, c.b]] as const) {
      const address = info.ipv4[0]
      if (address === undefined)
        throw new UsageError(`${info.name} has no IPv4 address: joining ${formatGroupSpec(g)} names the interface by its address`, {
          op: 'join multicast groups',
          hint: `give the line interface an address (ip addr add ADDR/PREFIX dev ${info.name})`,
        })
      const m: Membership = { iface: info.name, address, group: g.group, ...(g.source === undefined ? {} : { source: g.source }) }
      out.set(`${m.iface} ${m.group} ${m.source ?? '*'}`, m)
    }
  }
  return [...out.values()]
}

/** The IGMP version the kernel is forced to on an interface (0 = not forced: IGMPv3 with fallback), when readable. */
export function forcedIgmpVersion(iface: string): number | undefined {
  try {
    return Number(readFileSync(`/proc/sys/net/ipv4/conf/${iface}/force_igmp_version`, 'utf8').trim())
  } catch {
    return undefined
  }
}

export class GroupMemberships {
  readonly joined: Membership[] = []
  readonly #sockets: { socket: dgram.Socket; m: Membership }[] = []

  private constructor() {}

  /** Joins every membership; on a failure leaves what it joined and throws a NetError naming the group. */
  static join(memberships: Membership[], log: { warn(msg: string): void; info(msg: string): void }): GroupMemberships {
    const self = new GroupMemberships()
    try {
      for (const m of memberships) self.#joinOne(m, log)
    } catch (e) {
      self.leave()
      throw e
    }
    return self
  }

  #joinOne(m: Membership, log: { warn(msg: string): void; info(msg: string): void }): void {
    const forced = forcedIgmpVersion(m.iface)
    if (m.source !== undefined && forced !== undefined && forced > 0 && forced < 3)
      log.warn(`${m.iface} is forced to IGMPv${forced} (net.ipv4.conf.${m.iface}.force_igmp_version): its reports carry no source, so routers cannot honour the source-specific join of ${m.group} from ${m.source}`)
    if (m.source === undefined && m.group.startsWith('232.'))
      log.warn(`${m.group} lies in 232.0.0.0/8, the source-specific range: routers forward it only to joins that name the source (GROUP:PORT@SOURCE)`)
    const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true })
    // Nothing is read from these sockets: libuv binds them implicitly to an ephemeral port for the join.
    socket.on('error', (e) => log.warn(`membership socket of ${m.group} on ${m.iface}: ${e.message}`))
    try {
      if (m.source === undefined) socket.addMembership(m.group, m.address)
      else socket.addSourceSpecificMembership(m.source, m.group, m.address)
    } catch (e) {
      socket.close()
      const { code, errno } = e as NodeJS.ErrnoException
      throw new NetError(`cannot join ${m.group}${m.source ? ` from ${m.source}` : ''} on ${m.iface} (${m.address}): ${(e as Error).message}`, {
        op: 'join multicast group',
        ...(typeof errno === 'number' ? { errno: Math.abs(errno) } : {}),
        hint: code === 'ENOBUFS' ? 'the kernel limits memberships per socket and sources per group (net.ipv4.igmp_max_memberships, igmp_max_msf)' : `check that ${m.address} is ${m.iface}'s address and the interface is up`,
        cause: e,
      })
    }
    socket.unref()
    this.#sockets.push({ socket, m })
    this.joined.push(m)
    log.info(`joined ${m.group}${m.source ? ` from ${m.source}` : ''} on ${m.iface}`)
  }

  /** Drops every membership (IGMP leave reports go out) and closes the sockets; idempotent. */
  leave(): void {
    for (const { socket, m } of this.#sockets.splice(0).reverse()) {
      try {
        if (m.source === undefined) socket.dropMembership(m.group, m.address)
        else socket.dropSourceSpecificMembership(m.source, m.group, m.address)
      } catch {
        // closing the socket drops the membership anyway
      }
      socket.close()
    }
  }
}

/** `group[@source] on iface` of each membership, for the start event. */
export function describeMemberships(ms: Membership[]): { iface: string; group: string; source?: string }[] {
  return ms.map((m) => ({ iface: m.iface, group: m.group, ...(m.source === undefined ? {} : { source: m.source }) }))
}
