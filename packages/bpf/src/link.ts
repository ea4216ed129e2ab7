import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { SystemError, UsageError } from '@kbx/errors'
import {
  koffi,
  libbpf,
  libc,
  BpfLinkCreateOpts,
  BPF_LINK_TYPE_XDP,
  BPF_XDP,
  XDP_ATTACHED_DRV,
  XDP_ATTACHED_HW,
  XDP_ATTACHED_MULTI,
  XDP_ATTACHED_SKB,
  XDP_FLAGS_DRV_MODE,
  XDP_FLAGS_SKB_MODE,
} from '@kbx/ffi'
import { bpfError, errnoOf } from './errors.js'
import { linkInfoByFd, linkInfoById, type LinkInfo } from './info.js'
import { ifnameOf, resolveIfindex, unpinPath } from './system.js'

export type XdpMode = 'native' | 'skb'
export type XdpAttachMode = XdpMode | 'auto'
export type XdpAttachedMode = XdpMode | 'offload'

const EBUSY = 16
const EEXIST = 17
const EINVAL = 22
const EOPNOTSUPP = 95
const ENOENT = 2

const modeFlags: Record<XdpMode, number> = { native: XDP_FLAGS_DRV_MODE, skb: XDP_FLAGS_SKB_MODE }

/** One XDP program attached to an interface, as the kernel reports it (via `ip -j -d link show`). */
export interface XdpAttachment {
  progId: number
  mode: XdpAttachedMode
  name?: string
  tag?: string
}

export interface InterfaceXdp {
  ifname: string
  ifindex: number
  /** 'none', one mode, or 'multi' when programs are attached in several modes at once. */
  mode: 'none' | XdpAttachedMode | 'multi'
  programs: XdpAttachment[]
}

function attachedModeName(mode: number): XdpAttachedMode | undefined {
  if (mode === XDP_ATTACHED_DRV) return 'native'
  if (mode === XDP_ATTACHED_SKB) return 'skb'
  if (mode === XDP_ATTACHED_HW) return 'offload'
  return undefined
}

export interface IpLinkJson {
  ifindex: number
  ifname: string
  xdp?: {
    mode: number
    prog?: { id: number; name?: string; tag?: string }
    attached?: { mode: number; prog?: { id: number; name?: string; tag?: string } }[]
  }
}

/** @internal exported for tests: one entry of `ip -j -d link show` → its XDP attachments. */
export function parseIpLink(entry: IpLinkJson): InterfaceXdp {
  const programs: XdpAttachment[] = []
  const xdp = entry.xdp
  if (xdp) {
    const attached = xdp.attached ?? (xdp.prog ? [{ mode: xdp.mode, prog: xdp.prog }] : [])
    for (const a of attached) {
      const mode = attachedModeName(a.mode)
      if (!a.prog || !mode) continue
      programs.push({
        progId: a.prog.id,
        mode,
        ...(a.prog.name === undefined ? {} : { name: a.prog.name }),
        ...(a.prog.tag === undefined ? {} : { tag: a.prog.tag }),
      })
    }
  }
  const mode: InterfaceXdp['mode'] =
    programs.length === 0 ? 'none' : xdp?.mode === XDP_ATTACHED_MULTI ? 'multi' : (programs[0]?.mode ?? 'none')
  return { ifname: entry.ifname, ifindex: entry.ifindex, mode, programs }
}

function ipLinkJson(args: string[]): IpLinkJson[] {
  try {
    return JSON.parse(execFileSync('ip', ['-j', '-d', 'link', 'show', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })) as IpLinkJson[]
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim()
    throw new SystemError(`ip -j -d link show ${args.join(' ')}`.trim(), (err as { errno?: number }).errno ?? ENOENT, {
      hint: 'needs iproute2 (`ip`) with JSON output',
      ...(stderr ? { detail: stderr } : {}),
      cause: err,
    })
  }
}

/** XDP programs attached to each interface of this network namespace. */
export function xdpAttachments(): InterfaceXdp[] {
  return ipLinkJson([]).map(parseIpLink)
}

/** XDP programs attached to one interface (name or ifindex). */
export function xdpAttachmentOf(iface: string | number): InterfaceXdp {
  const ifindex = resolveIfindex(iface)
  const name = typeof iface === 'string' && !/^\d+$/.test(iface) ? iface : ifnameOf(ifindex)
  if (!name) throw new UsageError(`no interface with ifindex ${ifindex}`)
  const [entry] = ipLinkJson(['dev', name])
  if (!entry) throw new UsageError(`no interface ${name}`)
  return parseIpLink(entry)
}

/**
 * An XDP program attached through a bpf_link. The attachment lives as long as the link: closing the
 * last fd (or the process dying) detaches it, unless the link is pinned on bpffs.
 */
export class XdpLink {
  /** Kernel link id (bpftool link show). */
  readonly id: number
  readonly fd: number
  readonly ifindex: number
  readonly progId: number
  /** Mode the program runs in; 'unknown' when opened from a pin and the interface is gone. */
  readonly mode: XdpMode | 'offload' | 'unknown'
  private closed = false

  private constructor(fd: number, info: LinkInfo, mode: XdpLink['mode']) {
    this.fd = fd
    this.id = info.id
    this.ifindex = info.ifindex ?? 0
    this.progId = info.progId
    this.mode = mode
  }

  /** @internal BpfProgram.attachXdp is the public entry point. */
  static attach(progFd: number, progName: string, iface: string | number, mode: XdpAttachMode, log?: (msg: string) => void): XdpLink {
    if (mode !== 'native' && mode !== 'skb' && mode !== 'auto') {
      throw new UsageError(`unknown XDP mode "${String(mode)}" (native, skb, auto)`)
    }
    const ifindex = resolveIfindex(iface)
    const tryModes: XdpMode[] = mode === 'auto' ? ['native', 'skb'] : [mode]
    let lastErrno = 0
    for (const candidate of tryModes) {
      const opts = { sz: koffi.sizeof(BpfLinkCreateOpts), flags: modeFlags[candidate] }
      const fd = libbpf().bpf_link_create(progFd, ifindex, BPF_XDP, opts)
      if (fd >= 0) {
        try {
          const link = new XdpLink(fd, linkInfoByFd(fd), candidate)
          log?.(`attached ${progName} to ${describeIface(iface, ifindex)} in ${candidate} mode (link ${link.id})`)
          return link
        } catch (err) {
          libc().close(fd)
          throw err
        }
      }
      lastErrno = errnoOf(fd)
      if (mode === 'auto' && candidate === 'native' && (lastErrno === EOPNOTSUPP || lastErrno === EINVAL)) {
        log?.(`native XDP refused on ${describeIface(iface, ifindex)} (${lastErrno === EOPNOTSUPP ? 'EOPNOTSUPP' : 'EINVAL'}), falling back to skb mode`)
        continue
      }
      break
    }
    throw bpfError(`attach XDP program ${progName} to ${describeIface(iface, ifindex)} (${mode})`, lastErrno, {
      ...attachHint(lastErrno, ifindex),
    })
  }

  /** Open a link pinned on bpffs; it must be an XDP link. */
  static fromPin(path: string): XdpLink {
    const fd = libbpf().bpf_obj_get(path)
    if (fd < 0) {
      const errno = errnoOf(fd)
      throw bpfError(`open pinned link ${path}`, errno, {
        ...(errno === ENOENT && !existsSync(path) ? { hint: 'nothing is pinned there; is bpffs mounted (ensureBpffs)?' } : {}),
      })
    }
    try {
      const info = linkInfoByFd(fd)
      if (info.typeId !== BPF_LINK_TYPE_XDP) throw new UsageError(`${path} is a ${info.type} link, not an XDP link`)
      return new XdpLink(fd, info, modeOfAttachment(info))
    } catch (err) {
      libc().close(fd)
      throw err
    }
  }

  /** Remove a pin (the link stays attached while other fds or pins hold it). */
  static unpin(path: string): void {
    unpinPath(path)
  }

  info(): LinkInfo {
    return linkInfoByFd(this.checkedFd())
  }

  /** Pin on bpffs: the program stays attached after this process exits, until detach() or unpin + close. */
  pin(path: string): void {
    const ret = libbpf().bpf_obj_pin(this.checkedFd(), path)
    if (ret !== 0) {
      const errno = errnoOf(ret)
      throw bpfError(`pin XDP link ${this.id} at ${path}`, errno, {
        hint: errno === EEXIST ? 'something is already pinned there' : 'the directory must exist on a mounted bpffs (ensureBpffs)',
      })
    }
  }

  /** Replace the link's program atomically (BPF_LINK_UPDATE): no frame goes without a program. */
  update(progFd: number, progName: string): void {
    const ret = libbpf().bpf_link_update(this.checkedFd(), progFd, null)
    if (ret !== 0) throw bpfError(`replace the program of XDP link ${this.id} with ${progName}`, errnoOf(ret))
  }

  /** Detach the program from the interface now (even if pinned elsewhere) and close the fd. */
  detach(): void {
    const ret = libbpf().bpf_link_detach(this.checkedFd())
    if (ret !== 0) {
      const errno = errnoOf(ret)
      this.close()
      throw bpfError(`detach XDP link ${this.id}`, errno)
    }
    this.close()
  }

  /** Close the fd: an unpinned link detaches with it; a pinned one stays. */
  close(): void {
    if (this.closed) return
    this.closed = true
    libc().close(this.fd)
  }

  private checkedFd(): number {
    if (this.closed) throw new UsageError(`XDP link ${this.id} is closed`)
    return this.fd
  }
}

function modeOfAttachment(info: LinkInfo): XdpLink['mode'] {
  if (!info.ifindex) return 'unknown'
  try {
    const attached = xdpAttachmentOf(info.ifindex).programs.find((p) => p.progId === info.progId)
    return attached?.mode ?? 'unknown'
  } catch {
    return 'unknown'
  }
}

function describeIface(iface: string | number, ifindex: number): string {
  return typeof iface === 'string' && !/^\d+$/.test(iface) ? iface : (ifnameOf(ifindex) ?? `ifindex ${ifindex}`)
}

function attachHint(errno: number, ifindex: number): { hint?: string; detail?: string } {
  if (errno === EBUSY || errno === EEXIST) {
    let present = ''
    try {
      const current = xdpAttachmentOf(ifindex)
      present = current.programs.map((p) => `prog id ${p.progId}${p.name ? ` (${p.name})` : ''} in ${p.mode} mode`).join(', ')
    } catch {
      // the hint is best effort
    }
    return {
      hint: `the interface already has an XDP program${present ? `: ${present}` : ''}; detach it first (ip link set dev IFACE xdp off, or unpin its link)`,
    }
  }
  if (errno === EOPNOTSUPP) return { hint: 'the driver has no native XDP; use mode skb (or auto)' }
  if (errno === EINVAL) return { hint: 'the kernel refused the mode or program (an XDP program with frags support on a driver without it, or an MTU too large for native XDP)' }
  return {}
}

/** Every XDP bpf_link in the system attached to this ifindex (whoever created it). */
export function xdpLinksOn(ifindex: number): LinkInfo[] {
  const links: LinkInfo[] = []
  const next: [number] = [0]
  for (let id = 0; libbpf().bpf_link_get_next_id(id, next) === 0; id = next[0]) {
    let info: LinkInfo
    try {
      info = linkInfoById(next[0])
    } catch {
      continue // released between listing and opening
    }
    if (info.typeId === BPF_LINK_TYPE_XDP && info.ifindex === ifindex) links.push(info)
  }
  return links
}

/** Detaches an XDP link by id, even one another process holds or pinned (BPF_LINK_DETACH). */
export function detachLinkById(id: number): void {
  const fd = libbpf().bpf_link_get_fd_by_id(id)
  if (fd < 0) throw bpfError(`open link ${id}`, errnoOf(fd))
  try {
    const ret = libbpf().bpf_link_detach(fd)
    if (ret !== 0) throw bpfError(`detach link ${id}`, errnoOf(ret))
  } finally {
    libc().close(fd)
  }
}
