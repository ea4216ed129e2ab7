import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join, resolve } from 'node:path'
import { KbxError, UsageError } from '@kbx/errors'
import { BpfObject, ensureBpffs, raiseMemlockLimit, unpinPath, xdpAttachmentOf, XdpLink } from '@kbx/bpf'
import type { XdpAttachMode } from '@kbx/bpf'
import { objectsDir, ordered, readChain, removeChain, withChainLock, writeChain } from './chain.js'
import type { ChainState } from './chain.js'
import { DISPATCHER_PROG, MAX_COMPONENTS, buildDispatcher, inspectComponent } from './dispatcher.js'
import type { ComponentSource } from './dispatcher.js'
import { checkInterface, checkObjectFile } from './load.js'
import type { LoadedMap } from './load.js'
import { createPinDirs, interfacePins, mapPinPath, removePins } from './pins.js'
import { unload } from './unload.js'

/** One object to add to a chain: `OBJECT.o` or `OBJECT.o:PROG`, with an optional priority (lower runs first). */
export interface ComponentRequest {
  object: string
  prog?: string
  priority?: number
}

export interface ChainComponent {
  name: string
  object: string
  priority: number
  maps: string[]
  /** The kbx tool that added it, when one did. */
  owner?: { tool: string; pid: number }
}

export interface ChainLoadResult {
  iface: string
  ifindex: number
  program: { name: string; id: number; tag: string; type: string }
  mode: string
  link: { id: number; pin: string }
  /** Components added by this call. */
  added: string[]
  chain: ChainComponent[]
  maps: LoadedMap[]
}

export function loadChain(opts: { iface: string; components: ComponentRequest[]; mode: XdpAttachMode; log?: (msg: string) => void }): ChainLoadResult {
  checkInterface(opts.iface)
  return withChainLock(opts.iface, () => loadChainLocked(opts))
}

export function unloadComponent(iface: string, name: string): ComponentUnloadResult {
  return withChainLock(iface, () => unloadComponentLocked(iface, name))
}

/** Parses `OBJECT.o[:PROG]`. */
export function parseComponentArg(arg: string): ComponentRequest {
  const colon = arg.lastIndexOf(':')
  if (colon > 0 && !arg.slice(colon + 1).includes('/') && !existsSync(arg)) return { object: arg.slice(0, colon), prog: arg.slice(colon + 1) }
  return { object: arg }
}

export function chainOf(state: ChainState): ChainComponent[] {
  return state.components.map((c) => ({ name: c.name, object: c.object, priority: c.priority, maps: c.maps, ...(c.owner ? { owner: c.owner } : {}) }))
}

export interface Built {
  obj: BpfObject
  workDir: string
}

/** Links and loads the dispatcher for these components, reusing the maps already pinned for the interface. */
export function buildAndLoad(iface: string, components: ComponentSource[]): Built {
  const workDir = mkdtempSync(join(tmpdir(), 'kbx-dispatch-'))
  try {
    const obj = BpfObject.open(buildDispatcher(components, workDir))
    try {
      for (const p of obj.programs()) if (p.name !== DISPATCHER_PROG) p.setAutoload(false)
      for (const c of components) for (const [name, hex] of Object.entries(c.rodata ?? {})) obj.setRodata(name, Buffer.from(hex, 'hex'))
      obj.reusePinnedMaps((name) => mapPinPath(iface, name))
      obj.load()
      return { obj, workDir }
    } catch (err) {
      obj.close()
      throw err
    }
  } catch (err) {
    rmSync(workDir, { recursive: true, force: true })
    throw err
  }
}

function pinNewMaps(iface: string, obj: BpfObject, components: readonly ComponentSource[]): LoadedMap[] {
  createPinDirs(iface)
  const wanted = new Set(components.flatMap((c) => c.maps))
  const maps: LoadedMap[] = []
  for (const map of obj.maps()) {
    if (!wanted.has(map.name)) continue
    const pin = mapPinPath(iface, map.name)
    if (!existsSync(pin)) map.pin(pin)
    const info = map.info()
    maps.push({ name: map.name, id: info.id, type: map.type, keySize: map.keySize, valueSize: map.valueSize, maxEntries: map.maxEntries, pin })
  }
  return maps
}

function checkNewComponents(iface: string, existing: readonly ComponentSource[], requests: readonly ComponentRequest[]): ComponentSource[] {
  if (existing.length + requests.length > MAX_COMPONENTS) {
    throw new UsageError(`a dispatcher chains at most ${MAX_COMPONENTS} programs (${iface} has ${existing.length}, ${requests.length} more asked)`, { op: 'load' })
  }
  const names = new Set(existing.map((c) => c.name))
  const maps = new Map(existing.flatMap((c) => c.maps.map((m) => [m, c.name] as const)))
  let nextPriority = Math.max(0, ...existing.map((c) => c.priority))
  const added: ComponentSource[] = []
  for (const request of requests) {
    checkObjectFile(request.object)
    const inspected = inspectComponent(request.object, request.prog)
    if (names.has(inspected.name)) {
      throw new UsageError(`${iface} already runs a program named ${inspected.name}`, { op: 'load', hint: `remove it first: xdp-load unload ${iface} --prog ${inspected.name}` })
    }
    for (const m of inspected.maps) {
      const owner = maps.get(m)
      if (owner !== undefined) throw new UsageError(`map ${m} of ${inspected.name} has the name of a map of ${owner}`, { op: 'load', hint: 'maps of one dispatcher share one namespace: rename one' })
      maps.set(m, inspected.name)
    }
    names.add(inspected.name)
    nextPriority = request.priority ?? nextPriority + 10
    added.push({ ...inspected, object: resolve(request.object), copy: '', priority: nextPriority })
  }
  return added
}

/**
 * `xdp-load load IFACE A.o B.o …`: runs the objects' XDP programs in priority order through kbx's
 * dispatcher, one program on the interface (a pinned bpf_link). On an interface that already carries a kbx
 * dispatcher, adds the programs to its chain and swaps the rebuilt dispatcher in with BPF_LINK_UPDATE.
 */
function loadChainLocked(opts: { iface: string; components: ComponentRequest[]; mode: XdpAttachMode; log?: (msg: string) => void }): ChainLoadResult {
  const ifindex = checkInterface(opts.iface)
  ensureBpffs()
  raiseMemlockLimit()
  const pins = interfacePins(opts.iface)
  const previous = readChain(opts.iface)
  const linked = existsSync(pins.link)
  if (linked && !previous) {
    throw new KbxError(`${opts.iface} already carries a single program loaded by xdp-load`, { op: 'load', errno: 17, hint: `unload it and load all programs together: xdp-load load ${opts.iface} A.o B.o` })
  }
  if (!linked) {
    if (previous) removeChain(opts.iface) // stale: its link is gone
    const present = xdpAttachmentOf(ifindex).programs
    if (present.length > 0) {
      const what = present.map((p) => `prog id ${p.progId}${p.name ? ` (${p.name})` : ''} in ${p.mode} mode`).join(', ')
      throw new KbxError(`${opts.iface} already has an XDP program that kbx did not attach: ${what}`, { op: 'load', errno: 16, hint: `remove it first (\`xdp-load unload ${opts.iface} --force\` detaches it)` })
    }
  }
  const existing = linked ? previous!.components : []
  const added = checkNewComponents(opts.iface, existing, opts.components)

  mkdirSync(objectsDir(opts.iface), { recursive: true })
  for (const c of added) {
    c.copy = join(objectsDir(opts.iface), `${c.name}-${basename(c.object)}`)
    copyFileSync(c.object, c.copy)
  }
  const components = ordered([...existing, ...added])
  let built: Built | undefined
  let link: XdpLink | undefined
  try {
    built = buildAndLoad(opts.iface, components)
    const prog = built.obj.program(DISPATCHER_PROG)
    if (linked) {
      link = XdpLink.fromPin(pins.link)
      link.update(prog.fd, prog.name)
      opts.log?.(`replaced the dispatcher on ${opts.iface} (link ${link.id}): ${components.map((c) => c.name).join(' → ')}`)
    } else {
      link = prog.attachXdp(ifindex, opts.mode, opts.log)
      createPinDirs(opts.iface)
      link.pin(pins.link)
    }
    const maps = pinNewMaps(opts.iface, built.obj, components)
    writeChain({ iface: opts.iface, components })
    const info = prog.info()
    return {
      iface: opts.iface,
      ifindex,
      program: { name: prog.name, id: info.id, tag: info.tag, type: info.type },
      mode: link.mode,
      link: { id: link.id, pin: pins.link },
      added: added.map((c) => c.name),
      chain: chainOf({ iface: opts.iface, components }),
      maps,
    }
  } catch (err) {
    for (const c of added) rmSync(c.copy, { force: true })
    if (!linked) {
      removePins(opts.iface)
      removeChain(opts.iface)
    }
    throw err
  } finally {
    link?.close()
    built?.obj.close()
    if (built) rmSync(built.workDir, { recursive: true, force: true })
  }
}

export interface ComponentUnloadResult {
  iface: string
  removed: string
  /** The dispatcher's program after the removal (absent when the last component went and everything was unloaded). */
  progId?: number
  chain: ChainComponent[]
  unpinnedMaps: string[]
}

/**
 * `xdp-load unload IFACE --prog NAME`: rebuilds the dispatcher without one component and swaps it in
 * (BPF_LINK_UPDATE), the other components' maps kept; the last component takes everything with it.
 */
function unloadComponentLocked(iface: string, name: string): ComponentUnloadResult {
  ensureBpffs()
  const state = readChain(iface)
  if (!state) throw new UsageError(`${iface} carries no kbx dispatcher`, { op: 'unload', hint: `without --prog: xdp-load unload ${iface}` })
  const gone = state.components.find((c) => c.name === name)
  if (!gone) throw new UsageError(`no program ${name} in the chain on ${iface}`, { op: 'unload', hint: `it runs: ${state.components.map((c) => c.name).join(', ')}` })
  const remaining = state.components.filter((c) => c !== gone)
  if (remaining.length === 0) {
    unload(iface)
    return { iface, removed: name, chain: [], unpinnedMaps: gone.maps }
  }
  const pins = interfacePins(iface)
  const built = buildAndLoad(iface, remaining)
  const link = XdpLink.fromPin(pins.link)
  try {
    const prog = built.obj.program(DISPATCHER_PROG)
    link.update(prog.fd, prog.name)
    const stillUsed = new Set(remaining.flatMap((c) => c.maps))
    const unpinnedMaps = gone.maps.filter((m) => !stillUsed.has(m))
    for (const m of unpinnedMaps) if (existsSync(mapPinPath(iface, m))) unpinPath(mapPinPath(iface, m))
    rmSync(gone.copy, { force: true })
    writeChain({ iface, components: remaining })
    return { iface, removed: name, progId: prog.info().id, chain: chainOf({ iface, components: remaining }), unpinnedMaps }
  } finally {
    link.close()
    built.obj.close()
    rmSync(built.workDir, { recursive: true, force: true })
  }
}
