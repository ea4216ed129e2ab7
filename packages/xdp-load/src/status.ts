import { existsSync } from 'node:fs'
import { basename } from 'node:path'
import { ensureBpffs, linkInfoByPin, mapInfoById, progInfoById, xdpAttachmentOf, xdpAttachments } from '@kbx/bpf'
import type { InterfaceXdp } from '@kbx/bpf'
import { chainOf, type ChainComponent } from './chain-load.js'
import { pidAlive, readChain } from './chain.js'
import { LIBXDP_DISPATCHER_PROG } from './dispatcher-choice.js'
import { libxdpChain, loadedByKbx } from './libxdp-attach.js'
import type { LibxdpChain } from './libxdp-attach.js'
import { interfacePins, pinnedInterfaces } from './pins.js'

/** Who put a program on an interface. */
export type Owner =
  | 'xdp-load' // pinned by `xdp-load load`
  | 'kbx' // a running kbx tool (program name kbx_*), gone when it exits
  | 'libxdp' // libxdp's dispatcher (xdp_dispatcher): xdp-loader's, or `xdp-load load --dispatcher libxdp`
  | 'other'

export interface ProgramStatus {
  id: number
  name: string
  tag: string
  mode: string
  owner: Owner
  linkPin?: string
  maps: { id: number; name: string; type: string; keySize: number; valueSize: number; maxEntries: number }[]
  /** kbx's dispatcher: the programs it runs, in order (`xdp-load load IFACE A.o B.o`); a kbx tool's with its owner and whether it still runs. */
  chain?: (ChainComponent & { owner?: { tool: string; pid: number; alive?: boolean } })[]
  /** libxdp's dispatcher: the programs it runs as libxdp reads them, or why libxdp could not read them. */
  libxdp?: (LibxdpChain & { loadedByKbx: boolean }) | { error: string }
}

export interface InterfaceStatus {
  iface: string
  ifindex: number
  mode: InterfaceXdp['mode']
  programs: ProgramStatus[]
}

export interface StatusReport {
  interfaces: InterfaceStatus[]
  /** kbx pin directories whose interface is gone or no longer carries the pinned program. */
  stalePins: string[]
}

function pinnedProgId(iface: string): number | undefined {
  const { link } = interfacePins(iface)
  if (!existsSync(link)) return undefined
  try {
    return linkInfoByPin(link).progId
  } catch {
    return undefined
  }
}

export function describeInterface(x: InterfaceXdp): InterfaceStatus {
  const pinnedProg = pinnedProgId(x.ifname)
  const programs = x.programs.map((p): ProgramStatus => {
    const info = progInfoById(p.progId)
    const owner: Owner =
      pinnedProg === p.progId ? 'xdp-load' : info.name.startsWith('kbx_') ? 'kbx' : info.name === LIBXDP_DISPATCHER_PROG ? 'libxdp' : 'other'
    const chain = owner === 'xdp-load' ? readChain(x.ifname) : undefined
    return {
      id: p.progId,
      name: info.name,
      tag: info.tag,
      mode: p.mode,
      owner,
      ...(owner === 'xdp-load' ? { linkPin: interfacePins(x.ifname).link } : {}),
      ...(owner === 'libxdp' ? { libxdp: describeLibxdp(x) } : {}),
      ...(chain ? { chain: chainOf(chain).map((c) => (c.owner ? { ...c, owner: { ...c.owner, alive: pidAlive(c.owner.pid) } } : c)) } : {}),
      maps: info.mapIds.map((id) => {
        const m = mapInfoById(id)
        return { id, name: m.name, type: m.type, keySize: m.keySize, valueSize: m.valueSize, maxEntries: m.maxEntries }
      }),
    }
  })
  return { iface: x.ifname, ifindex: x.ifindex, mode: x.mode, programs }
}

function describeLibxdp(x: InterfaceXdp): ProgramStatus['libxdp'] {
  try {
    return { ...libxdpChain(x.ifindex), loadedByKbx: loadedByKbx(x.ifname) }
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) }
  }
}

/** Every interface of this namespace (or one) with its XDP program, mode, maps and owner. */
export function xdpStatus(iface?: string): StatusReport {
  ensureBpffs()
  const attachments = iface === undefined ? xdpAttachments() : [xdpAttachmentOf(iface)]
  const interfaces = attachments.map(describeInterface)
  const stalePins = pinnedInterfaces().filter((name) => {
    if (iface !== undefined && name !== iface) return false
    const current = interfaces.find((i) => i.iface === name)
    const prog = pinnedProgId(name)
    return current === undefined ? iface === undefined : !current.programs.some((p) => p.id === prog)
  })
  return { interfaces, stalePins }
}

export function formatStatusTable(report: StatusReport): string {
  const rows = [['INTERFACE', 'MODE', 'PROG ID', 'NAME', 'TAG', 'OWNER', 'MAPS']]
  for (const i of report.interfaces) {
    if (i.programs.length === 0) rows.push([i.iface, '-', '', '', '', '', ''])
    for (const p of i.programs) {
      rows.push([i.iface, p.mode, String(p.id), p.name, p.tag, p.owner, p.maps.map((m) => `${m.name}(${m.id})`).join(',')])
      if (p.libxdp && 'error' in p.libxdp) rows.push(['', '', '', "libxdp's dispatcher, unreadable", '', '', p.libxdp.error])
      if (p.libxdp && 'legacy' in p.libxdp && p.libxdp.legacy) rows.push(['', '', '', 'libxdp reads it as one program, no dispatcher', '', '', ''])
      if (p.libxdp && 'programs' in p.libxdp) p.libxdp.programs.forEach((c, n) => rows.push(['', '', String(c.id), `${n + 1}. ${c.name}`, `prio ${c.priority}`, 'libxdp', '']))
      p.chain?.forEach((c, n) =>
        rows.push(['', '', '', `${n + 1}. ${c.name}`, `prio ${c.priority}`, c.owner ? `${c.owner.tool} pid ${c.owner.pid}${c.owner.alive ? '' : ' (gone)'}` : basename(c.object), c.maps.join(',')]),
      )
    }
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)))
  const lines = rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd())
  for (const stale of report.stalePins) lines.push(`stale kbx pins for ${stale} (remove with: xdp-load unload ${stale})`)
  return lines.join('\n') + '\n'
}
