import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs'
import { basename, join } from 'node:path'
import { ensureBpffs, unpinPath, XdpLink } from '@kbx/bpf'
import type { BpfObject, XdpAttachMode } from '@kbx/bpf'
import { buildAndLoad, unloadComponent } from './chain-load.js'
import { objectsDir, ordered, readChain, withChainLock, writeChain } from './chain.js'
import { inspectComponent, DISPATCHER_PROG } from './dispatcher.js'
import type { ComponentSource } from './dispatcher.js'
import { createPinDirs, interfacePins, mapPinPath } from './pins.js'

/** How a kbx tool's program runs on its interface: its own bpf_link, or a component of kbx's dispatcher. */
export interface ToolAttachment {
  mode: XdpLink['mode']
  /** The bpf_link the program runs through (the dispatcher's when joined). */
  id: number
  progId: number
  /** The component's name in the chain when it joined a dispatcher. */
  component?: string
  /** Detaches the program (or leaves the chain, the other programs running on). */
  detach(): void
}

/**
 * Attaches a kbx tool's loaded program: when the interface carries kbx's dispatcher, as one more program
 * of its chain (its maps are the tool's own, pinned under the chain's maps with the component's prefix;
 * its .rodata values copied), else directly through its own bpf_link as before.
 *
 * A tool that is killed (SIGKILL) cannot leave the chain: its program stays, passing what it would steer
 * to a closed socket (kbx programs pass a frame whose XSKMAP slot is empty), until
 * `xdp-load unload IFACE --prog NAME` — `xdp-load status` shows its owner pid.
 */
export function attachOrJoin(obj: BpfObject, prog: string, iface: string, mode: XdpAttachMode, opts: { tool: string; priority?: number; log?: (msg: string) => void }): ToolAttachment {
  ensureBpffs()
  const joined = existsSync(interfacePins(iface).link) && readChain(iface) ? joinDispatcher(obj, prog, iface, opts) : undefined
  if (joined) return joined
  const link = obj.program(prog).attachXdp(iface, mode, opts.log)
  return { mode: link.mode, id: link.id, progId: link.progId, detach: () => link.detach() }
}

function joinDispatcher(obj: BpfObject, prog: string, iface: string, opts: { tool: string; priority?: number; log?: (msg: string) => void }): ToolAttachment | undefined {
  const tag = `k${process.pid}`
  const inspected = inspectComponent(obj.path, prog)
  const renames: Record<string, string> = { [inspected.name]: `${inspected.name}_${tag}` }
  for (const m of inspected.maps) renames[m] = `${tag}_${m}`
  const rodata: Record<string, string> = {}
  for (const v of obj.rodataVariables()) {
    renames[v] = `${tag}_${v}`
    rodata[`${tag}_${v}`] = obj.rodata(v).toString('hex')
  }
  const name = renames[inspected.name]!
  return withChainLock(iface, () => {
    const state = readChain(iface)
    const pins = interfacePins(iface)
    if (!state || !existsSync(pins.link)) return undefined
    mkdirSync(objectsDir(iface), { recursive: true })
    const copy = join(objectsDir(iface), `${name}-${basename(obj.path)}`)
    copyFileSync(obj.path, copy)
    const component: ComponentSource = {
      ...inspected,
      name,
      copy,
      priority: opts.priority ?? Math.max(0, ...state.components.map((c) => c.priority)) + 10,
      maps: inspected.maps.map((m) => renames[m]!),
      renames,
      rodata,
      owner: { tool: opts.tool, pid: process.pid },
    }
    createPinDirs(iface)
    const pinned: string[] = []
    const built = (() => {
      try {
        // The tool's maps become the component's: the rebuilt dispatcher reuses them from these pins.
        for (const m of inspected.maps) {
          const path = mapPinPath(iface, renames[m]!)
          obj.map(m).pin(path)
          pinned.push(path)
        }
        return buildAndLoad(iface, ordered([...state.components, component]))
      } catch (err) {
        for (const path of pinned) unpinPath(path)
        rmSync(copy, { force: true })
        throw err
      }
    })()
    const link = XdpLink.fromPin(pins.link)
    try {
      const dispatcher = built.obj.program(DISPATCHER_PROG)
      link.update(dispatcher.fd, dispatcher.name)
      const components = ordered([...state.components, component])
      writeChain({ iface, components })
      opts.log?.(`joined kbx's dispatcher on ${iface} as ${name}: ${components.map((c) => c.name).join(' → ')}`)
      const progId = dispatcher.info().id
      return {
        mode: link.mode,
        id: link.id,
        progId,
        component: name,
        detach: () => {
          try {
            unloadComponent(iface, name)
            opts.log?.(`left kbx's dispatcher on ${iface} (${name})`)
          } catch (err) {
            // The chain was unloaded under us (xdp-load unload): nothing of ours is left to remove.
            opts.log?.(`could not leave kbx's dispatcher on ${iface} (${name}): ${err instanceof Error ? err.message : String(err)}`)
          }
        },
      }
    } finally {
      link.close()
      built.obj.close()
      rmSync(built.workDir, { recursive: true, force: true })
    }
  })
}
