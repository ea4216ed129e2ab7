// Loading through libxdp's dispatcher. UNTESTED on kbx's test kernel: it refuses freplace (BPF_PROG_TYPE_EXT
// load: EPERM), so libxdp cannot build its dispatcher there; only the refusal path runs in the tests. The
// calls are kept few and plain (as xdp-loader makes them) so they can be read against libxdp's API.
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { KbxError, UsageError, errnoName } from '@kbx/errors'
import { BpfObject, ensureBpffs, raiseMemlockLimit, xdpAttachmentOf } from '@kbx/bpf'
import type { XdpAttachMode } from '@kbx/bpf'
import { BPF_PROG_TYPE_XDP } from '@kbx/ffi'
import { readChain, stateRoot } from './chain.js'
import type { ComponentRequest } from './chain-load.js'
import { LIBXDP_DISPATCHER_PROG, LIBXDP_HINT } from './dispatcher-choice.js'
import type { Carried } from './dispatcher-choice.js'
import { XDP_MODE, XDP_MODE_NAMES, libxdp, libxdpReason, pointerOrErrno, takeLibxdpMessages } from './libxdp-binding.js'
import type { LibXdp } from './libxdp-binding.js'
import { checkInterface, checkObjectFile } from './load.js'
import { interfacePins } from './pins.js'

export interface LibxdpProgram {
  name: string
  id: number
  priority: number
}

/** libxdp's dispatcher on an interface, as xdp_multiprog__get_from_ifindex reads it. */
export interface LibxdpChain {
  mode: string
  /** A single program attached the old way (no dispatcher). */
  legacy: boolean
  programs: LibxdpProgram[]
}

/** What the interface carries: kbx's dispatcher, libxdp's (by its program name), something else, or nothing. */
export function carriedBy(iface: string): Carried {
  if (existsSync(interfacePins(iface).link)) return readChain(iface) ? 'kbx-dispatcher' : 'other'
  const programs = xdpAttachmentOf(iface).programs
  if (programs.some((p) => p.name === LIBXDP_DISPATCHER_PROG)) return 'libxdp-dispatcher'
  return programs.length > 0 ? 'other' : 'nothing'
}

function libxdpError(op: string, errno: number, hint?: string): KbxError {
  const reason = libxdpReason(takeLibxdpMessages())
  return new KbxError(`${op}: ${errnoName(errno)}${reason ? ` (libxdp: ${reason})` : ''}`, { op, errno, ...(hint ? { hint } : {}) })
}

/** Runs fn with the interface's multiprog from libxdp, closed afterwards. */
function withMultiprog<T>(ifindex: number, fn: (lib: LibXdp, mp: unknown) => T): T {
  const lib = libxdp()
  takeLibxdpMessages()
  const got = pointerOrErrno(lib, lib.xdp_multiprog__get_from_ifindex(ifindex))
  if ('errno' in got) throw libxdpError("read libxdp's dispatcher (xdp_multiprog__get_from_ifindex)", got.errno)
  try {
    return fn(lib, got.ptr)
  } finally {
    lib.xdp_multiprog__close(got.ptr)
  }
}

function programsOf(lib: LibXdp, mp: unknown): { prog: unknown; program: LibxdpProgram }[] {
  const out: { prog: unknown; program: LibxdpProgram }[] = []
  for (let p = lib.xdp_multiprog__next_prog(null, mp); p !== null; p = lib.xdp_multiprog__next_prog(p, mp)) {
    out.push({ prog: p, program: { name: lib.xdp_program__name(p), id: lib.xdp_program__id(p), priority: lib.xdp_program__run_prio(p) } })
  }
  return out
}

export function libxdpChain(ifindex: number): LibxdpChain {
  return withMultiprog(ifindex, (lib, mp) => ({
    mode: XDP_MODE_NAMES[lib.xdp_multiprog__attach_mode(mp)] ?? 'unknown',
    legacy: lib.xdp_multiprog__is_legacy(mp),
    programs: programsOf(lib, mp).map((p) => p.program),
  }))
}

/** kbx remembers the interfaces it loaded through libxdp, so `unload IFACE` removes those without --force. */
function recordFile(iface: string): string {
  return join(stateRoot(), 'libxdp', `${iface}.json`)
}

export function loadedByKbx(iface: string): boolean {
  return existsSync(recordFile(iface))
}

function sectionOf(object: string, prog: string | undefined): string {
  checkObjectFile(object)
  const obj = BpfObject.open(object)
  try {
    const program = prog === undefined ? obj.programs().find((p) => p.typeId === BPF_PROG_TYPE_XDP) : obj.program(prog)
    if (!program || program.typeId !== BPF_PROG_TYPE_XDP) throw new UsageError(`${object} has no XDP program${prog ? ` named ${prog}` : ''}`, { op: 'load' })
    return program.section
  } finally {
    obj.close()
  }
}

export interface LibxdpLoadResult {
  iface: string
  ifindex: number
  dispatcher: 'libxdp'
  mode: string
  added: string[]
  chain: LibxdpProgram[]
}

/**
 * Attaches the objects' programs through libxdp's dispatcher, as xdp-loader does: xdp_program__open_file
 * per object, run priorities set, one xdp_program__attach_multi (which adds them to a libxdp dispatcher
 * already there). libxdp pins its dispatcher under /sys/fs/bpf/xdp/; the programs' maps are not pinned by kbx.
 */
export function loadThroughLibxdp(opts: { iface: string; components: ComponentRequest[]; mode: XdpAttachMode }): LibxdpLoadResult {
  const ifindex = checkInterface(opts.iface)
  const sections = opts.components.map((c) => sectionOf(c.object, c.prog))
  ensureBpffs()
  raiseMemlockLimit()
  const lib = libxdp()
  takeLibxdpMessages()
  // Without --priority the programs run after those already in libxdp's dispatcher, 10 apart (as kbx's chain).
  const addsToExisting = opts.components.some((c) => c.priority === undefined) && carriedBy(opts.iface) === 'libxdp-dispatcher'
  let nextPriority = addsToExisting ? Math.max(0, ...libxdpChain(ifindex).programs.map((p) => p.priority)) : 0
  const programs: unknown[] = []
  try {
    opts.components.forEach((c, i) => {
      const opened = pointerOrErrno(lib, lib.xdp_program__open_file(c.object, sections[i]!, null))
      if ('errno' in opened) throw libxdpError(`open ${c.object} with libxdp (xdp_program__open_file)`, opened.errno)
      programs.push(opened.ptr)
      nextPriority = c.priority ?? nextPriority + 10
      if (nextPriority < 0) throw new UsageError(`libxdp's run priorities are not negative (${nextPriority})`, { op: 'load' })
      lib.xdp_program__set_run_prio(opened.ptr, nextPriority)
    })
    const ret = lib.xdp_program__attach_multi(programs, programs.length, ifindex, XDP_MODE[opts.mode], 0)
    if (ret < 0) throw libxdpError("attach through libxdp's dispatcher (xdp_program__attach_multi)", -ret, LIBXDP_HINT)
    const added = programs.map((p) => lib.xdp_program__name(p))
    mkdirSync(join(stateRoot(), 'libxdp'), { recursive: true })
    writeFileSync(recordFile(opts.iface), JSON.stringify({ iface: opts.iface, added }) + '\n')
    const chain = libxdpChain(ifindex)
    return { iface: opts.iface, ifindex, dispatcher: 'libxdp', mode: chain.mode, added, chain: chain.programs }
  } finally {
    // The attached programs stay: libxdp's dispatcher holds them and is pinned.
    for (const p of programs) lib.xdp_program__close(p)
  }
}

export interface LibxdpUnloadResult {
  iface: string
  dispatcher: 'libxdp'
  removed: string[]
  chain: LibxdpProgram[]
}

/**
 * `xdp-load unload IFACE [--prog NAME]` on libxdp's dispatcher: one program (xdp_program__detach, libxdp
 * rebuilds its dispatcher without it) or all of it (xdp_multiprog__detach, its pins too). NAME matches
 * libxdp's name for the program or the kernel's (15 characters).
 */
export function unloadThroughLibxdp(iface: string, prog?: string): LibxdpUnloadResult {
  const ifindex = checkInterface(iface)
  ensureBpffs()
  const removed = withMultiprog(ifindex, (lib, mp) => {
    const all = programsOf(lib, mp)
    if (prog === undefined) {
      const ret = lib.xdp_multiprog__detach(mp)
      if (ret < 0) throw libxdpError("detach libxdp's dispatcher (xdp_multiprog__detach)", -ret)
      return all.map((p) => p.program.name)
    }
    const found = all.find((p) => p.program.name === prog || p.program.name === prog.slice(0, 15))
    if (!found) throw new UsageError(`no program ${prog} in libxdp's dispatcher on ${iface}`, { op: 'unload', hint: `it runs: ${all.map((p) => p.program.name).join(', ')}` })
    const ret = lib.xdp_program__detach(found.prog, ifindex, lib.xdp_multiprog__attach_mode(mp), 0)
    if (ret < 0) throw libxdpError(`detach ${prog} from libxdp's dispatcher (xdp_program__detach)`, -ret)
    return [found.program.name]
  })
  const left = carriedBy(iface) === 'libxdp-dispatcher' ? libxdpChain(ifindex).programs : []
  if (left.length === 0) rmSync(recordFile(iface), { force: true })
  return { iface, dispatcher: 'libxdp', removed, chain: left }
}
