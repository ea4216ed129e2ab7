import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { ComponentSource } from './dispatcher.js'

/**
 * The chain a dispatcher runs, kept where it outlives xdp-load (like the pins, it lasts until reboot):
 * <state root>/xdp/<ifname>/chain.json and the components' objects copied beside it (objects/), so the
 * dispatcher can be rebuilt without one of them even after the user's files changed.
 */
export interface ChainState {
  iface: string
  /** In run order (priority, then order of loading). */
  components: ComponentSource[]
}

export function stateRoot(): string {
  return process.env['KBX_STATE_DIR'] ?? '/run/kbx'
}

export function chainDir(iface: string): string {
  return join(stateRoot(), 'xdp', iface)
}

export function objectsDir(iface: string): string {
  return join(chainDir(iface), 'objects')
}

export function readChain(iface: string): ChainState | undefined {
  const file = join(chainDir(iface), 'chain.json')
  if (!existsSync(file)) return undefined
  return JSON.parse(readFileSync(file, 'utf8')) as ChainState
}

export function writeChain(state: ChainState): void {
  const dir = chainDir(state.iface)
  mkdirSync(dir, { recursive: true })
  const tmp = join(dir, 'chain.json.tmp')
  writeFileSync(tmp, JSON.stringify(state, null, 2) + '\n')
  renameSync(tmp, join(dir, 'chain.json'))
}

export function removeChain(iface: string): void {
  rmSync(chainDir(iface), { recursive: true, force: true })
  for (const dir of [join(stateRoot(), 'xdp'), stateRoot()]) {
    try {
      if (existsSync(dir) && readdirSync(dir).length === 0) rmSync(dir, { recursive: true })
    } catch {
      // another load may be creating it right now
    }
  }
}

/** Run order: lower priority first; equal priorities keep their order. */
export function ordered(components: readonly ComponentSource[]): ComponentSource[] {
  return components.map((c, i) => ({ c, i })).sort((a, b) => a.c.priority - b.c.priority || a.i - b.i).map((x) => x.c)
}
