import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'

/** Where `xdp-load load` pins what must outlive it: <root>/xdp/<ifname>/{link,maps/<map>}. */
export function pinRoot(): string {
  return process.env['KBX_PIN_ROOT'] ?? '/sys/fs/bpf/kbx'
}

export interface InterfacePins {
  dir: string
  link: string
  mapsDir: string
}

export function interfacePins(ifname: string): InterfacePins {
  const dir = join(pinRoot(), 'xdp', ifname)
  return { dir, link: join(dir, 'link'), mapsDir: join(dir, 'maps') }
}

export function mapPinPath(ifname: string, mapName: string): string {
  return join(interfacePins(ifname).mapsDir, mapName)
}

/** Interfaces that have a kbx pin directory. */
export function pinnedInterfaces(): string[] {
  const dir = join(pinRoot(), 'xdp')
  if (!existsSync(dir)) return []
  return readdirSync(dir).sort()
}

export function pinnedMapNames(ifname: string): string[] {
  const { mapsDir } = interfacePins(ifname)
  return existsSync(mapsDir) ? readdirSync(mapsDir).sort() : []
}

export function createPinDirs(ifname: string): InterfacePins {
  const pins = interfacePins(ifname)
  mkdirSync(pins.mapsDir, { recursive: true })
  return pins
}

/** Removes an interface's pins (unpinning drops the kernel's references to the link and maps). */
export function removePins(ifname: string): void {
  rmSync(interfacePins(ifname).dir, { recursive: true, force: true })
  const xdpDir = join(pinRoot(), 'xdp')
  for (const dir of [xdpDir, pinRoot()]) {
    try {
      if (existsSync(dir) && readdirSync(dir).length === 0) rmSync(dir, { recursive: true })
    } catch {
      // another load may be creating it right now
    }
  }
}
