import { existsSync } from 'node:fs'
import { KbxError, UsageError, unknownInterfaceHint } from '@kbx/errors'
import { BpfObject, ensureBpffs, raiseMemlockLimit, resolveIfindex, xdpAttachmentOf } from '@kbx/bpf'
import type { BpfMap, XdpAttachMode, XdpLink } from '@kbx/bpf'
import { createPinDirs, interfacePins, mapPinPath, removePins } from './pins.js'

export interface LoadOptions {
  iface: string
  object: string
  /** Program name; the object's first program when absent. */
  prog?: string
  mode: XdpAttachMode
  log?: (msg: string) => void
}

export interface LoadedMap {
  name: string
  id: number
  type: string
  keySize: number
  valueSize: number
  maxEntries: number
  pin: string
}

export interface LoadResult {
  iface: string
  ifindex: number
  object: string
  program: { name: string; id: number; tag: string; type: string }
  mode: string
  link: { id: number; pin: string }
  maps: LoadedMap[]
}

/** Throws UsageError (exit 2) for an interface that does not exist. */
export function checkInterface(iface: string): number {
  try {
    return resolveIfindex(iface)
  } catch (err) {
    throw new UsageError(`unknown interface "${iface}"`, { op: 'look up interface', hint: unknownInterfaceHint(iface), cause: err })
  }
}

export function checkObjectFile(path: string): void {
  if (!existsSync(path)) {
    throw new UsageError(`no such object file "${path}"`, { op: 'open BPF object', hint: 'build the XDP programs with `make -C bpf` (objects land in bpf/build/)' })
  }
}

/** Maps a user can read: not the compiler's .rodata/.bss/.data sections. */
function userMaps(maps: BpfMap[]): BpfMap[] {
  return maps.filter((m) => !m.name.startsWith('.') && !m.name.includes('.'))
}

/**
 * Loads an XDP object, attaches one program through a bpf_link and pins the link (and the object's
 * maps) under the kbx bpffs directory, so the attachment outlives this process until `unload`.
 */
export function loadAndPin(opts: LoadOptions): LoadResult {
  const ifindex = checkInterface(opts.iface)
  checkObjectFile(opts.object)
  ensureBpffs()
  raiseMemlockLimit()

  const pins = interfacePins(opts.iface)
  if (existsSync(pins.link)) {
    throw new KbxError(`${opts.iface} already carries a program loaded by xdp-load`, {
      op: 'load',
      errno: 17,
      hint: `run \`xdp-load unload ${opts.iface}\` first`,
    })
  }
  const present = xdpAttachmentOf(ifindex).programs
  if (present.length > 0) {
    const what = present.map((p) => `prog id ${p.progId}${p.name ? ` (${p.name})` : ''} in ${p.mode} mode`).join(', ')
    throw new KbxError(`${opts.iface} already has an XDP program that kbx did not attach: ${what}`, {
      op: 'load',
      errno: 16,
      hint: `remove it first (\`xdp-load unload ${opts.iface} --force\` detaches it)`,
    })
  }

  const obj = BpfObject.open(opts.object)
  let link: XdpLink | undefined
  try {
    obj.load()
    const prog = obj.program(opts.prog)
    link = prog.attachXdp(ifindex, opts.mode, opts.log)
    createPinDirs(opts.iface)
    link.pin(pins.link)
    const maps: LoadedMap[] = []
    for (const map of userMaps(obj.maps())) {
      const pin = mapPinPath(opts.iface, map.name)
      map.pin(pin)
      const info = map.info()
      maps.push({ name: map.name, id: info.id, type: map.type, keySize: map.keySize, valueSize: map.valueSize, maxEntries: map.maxEntries, pin })
    }
    const info = prog.info()
    return {
      iface: opts.iface,
      ifindex,
      object: opts.object,
      program: { name: prog.name, id: info.id, tag: info.tag, type: info.type },
      mode: link.mode,
      link: { id: link.id, pin: pins.link },
      maps,
    }
  } catch (err) {
    removePins(opts.iface)
    throw err
  } finally {
    // The pins hold the link, program and maps now; with no pin (failure) closing detaches.
    link?.close()
    obj.close()
  }
}
