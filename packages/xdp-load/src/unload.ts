import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { KbxError } from '@kbx/errors'
import { detachLinkById, ensureBpffs, linkInfoByPin, resolveIfindex, xdpAttachmentOf, xdpLinksOn } from '@kbx/bpf'
import { removeChain } from './chain.js'
import { interfacePins, pinnedInterfaces, removePins } from './pins.js'

export interface UnloadResult {
  iface: string
  /** Whether a program was detached from the interface. */
  detached: boolean
  /** Whether kbx pins were removed. */
  unpinned: boolean
  progIds: number[]
  linkIds: number[]
  /** The program was not kbx's and --force removed it. */
  forced: boolean
  note?: string
}

function ifindexOrUndefined(iface: string): number | undefined {
  try {
    return resolveIfindex(iface)
  } catch {
    return undefined
  }
}

/**
 * Removes what `xdp-load load` attached to an interface. A program kbx did not attach is left alone
 * (an error says so) unless `force`, which detaches its bpf_link or turns netlink XDP off.
 */
export function unload(iface: string, opts: { force?: boolean; log?: (msg: string) => void } = {}): UnloadResult {
  ensureBpffs()
  const pins = interfacePins(iface)
  const ifindex = ifindexOrUndefined(iface)
  const result: UnloadResult = { iface, detached: false, unpinned: false, progIds: [], linkIds: [], forced: false }

  if (existsSync(pins.link)) {
    const info = linkInfoByPin(pins.link)
    detachLinkById(info.id)
    result.detached = true
    result.linkIds.push(info.id)
    result.progIds.push(info.progId)
  }
  removeChain(iface)
  if (existsSync(pins.dir)) {
    removePins(iface)
    result.unpinned = true
  }
  if (ifindex === undefined) {
    if (!result.unpinned) {
      throw new KbxError(`unknown interface "${iface}" and nothing of kbx pinned for it`, { op: 'unload', errno: 19 })
    }
    result.note = 'the interface is gone; its stale pins were removed'
    return result
  }

  const remaining = xdpAttachmentOf(ifindex).programs
  if (remaining.length === 0) {
    if (!result.detached && !result.unpinned) result.note = 'no XDP program attached'
    return result
  }
  const what = remaining.map((p) => `prog id ${p.progId}${p.name ? ` (${p.name})` : ''} in ${p.mode} mode`).join(', ')
  if (!opts.force) {
    throw new KbxError(`${iface} carries an XDP program that kbx did not attach: ${what}; leaving it alone`, {
      op: 'unload',
      errno: 16,
      hint: `add --force to detach it anyway`,
    })
  }
  for (const link of xdpLinksOn(ifindex)) {
    detachLinkById(link.id)
    result.linkIds.push(link.id)
    result.progIds.push(link.progId)
    opts.log?.(`detached foreign bpf_link ${link.id} (prog ${link.progId}) from ${iface}`)
  }
  for (const p of xdpAttachmentOf(ifindex).programs) {
    // Attached through netlink (ip link set … xdp), not a bpf_link.
    const keyword = p.mode === 'skb' ? 'xdpgeneric' : p.mode === 'offload' ? 'xdpoffload' : 'xdpdrv'
    execFileSync('ip', ['link', 'set', 'dev', iface, keyword, 'off'], { stdio: ['ignore', 'ignore', 'pipe'] })
    result.progIds.push(p.progId)
    opts.log?.(`turned ${keyword} off on ${iface} (prog ${p.progId})`)
  }
  result.detached = true
  result.forced = true
  return result
}

/** Unloads every interface kbx has pins for (`xdp-load unload --all`). */
export function unloadAll(opts: { force?: boolean; log?: (msg: string) => void } = {}): UnloadResult[] {
  ensureBpffs()
  return pinnedInterfaces().map((iface) => unload(iface, opts))
}
