import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { KbxError } from '@kbx/errors'
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

/**
 * Runs fn holding the interface's chain lock (a file created with O_EXCL beside chain.json), so two
 * processes changing one chain at once (xdp-load and a kbx tool) do not lose each other's change. A lock
 * whose process is gone is taken over.
 */
export function withChainLock<T>(iface: string, fn: () => T): T {
  const dir = chainDir(iface)
  mkdirSync(dir, { recursive: true })
  const lock = join(dir, 'lock')
  const deadline = Date.now() + 30_000
  for (;;) {
    try {
      writeFileSync(lock, String(process.pid), { flag: 'wx' })
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const holder = Number(readFileSync(lock, 'utf8') || 0)
      if (holder > 0 && !pidAlive(holder)) {
        rmSync(lock, { force: true })
        continue
      }
      if (Date.now() > deadline) throw new KbxError(`the chain of ${iface} stays locked by process ${holder}`, { op: 'lock dispatcher chain', errno: 16, hint: `remove ${lock} if that process is gone` })
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20)
    }
  }
  try {
    return fn()
  } finally {
    rmSync(lock, { force: true })
    if (!existsSync(join(dir, 'chain.json'))) removeChain(iface)
  }
}

/** Whether process `pid` exists (EPERM: it does, another user's). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
