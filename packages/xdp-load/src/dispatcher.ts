import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { KbxError, UsageError } from '@kbx/errors'
import { BpfObject, linkObjects } from '@kbx/bpf'
import { BPF_PROG_TYPE_XDP, bpfObjectPath } from '@kbx/ffi'
import { renameBtfGlobals } from './btf-rename.js'
import { elfLicense, elfSections, renameInPlace } from './elf.js'

/** The dispatcher's own program name (the one attached; its components are BPF-to-BPF calls). */
export const DISPATCHER_PROG = 'kbx_dispatcher'
/** bpf/Makefile builds kbx_dispatcher_1.o … kbx_dispatcher_8.o. */
export const MAX_COMPONENTS = 8

/** What a component is made of, as the chain records it. */
export interface ComponentSource {
  /** The program's name (its ELF function); components are named, and removed, by it. */
  name: string
  /** The object the user gave (for status), and the copy kbx keeps to rebuild the chain without the user's file. */
  object: string
  copy: string
  /** The program's section in the object (renamed to .text when linked). */
  section: string
  priority: number
  license: string
  /** Maps it declares (pinned under …/maps/NAME), by their names in the chain (after renames). */
  maps: string[]
  /** Globals renamed in this component (old → new), so two copies of one program can share a chain. */
  renames?: Record<string, string>
  /** .rodata values to set (by name in the chain, hex bytes): a kbx tool's per-run configuration. */
  rodata?: Record<string, string>
  /** The kbx tool process that added it (it removes it on exit; after a SIGKILL, `xdp-load unload --prog`). */
  owner?: { tool: string; pid: number }
}

/** Must match KBX_SLOT(n) in bpf/xdp_dispatcher.c. */
export function slotPlaceholder(slot: number): string {
  return `kbx_dispatch_slot_${slot}_${'x'.repeat(44)}`
}

/** The longest entry-function name a component may have (it replaces a placeholder in place). */
export const MAX_NAME_LENGTH = slotPlaceholder(0).length

/** Licenses the kernel counts as GPL-compatible (kernel/module license_is_gpl_compatible). */
const GPL_COMPATIBLE = new Set(['GPL', 'GPL v2', 'GPL and additional rights', 'Dual BSD/GPL', 'Dual MIT/GPL', 'Dual MPL/GPL'])

/**
 * One license for the linked program (the linker wants every "license" section identical): the common one
 * when all agree, "GPL" when all are GPL-compatible, else the first that is not (so GPL-only helpers stay
 * refused, as they would be for that component alone).
 */
export function combinedLicense(licenses: readonly string[]): string {
  const distinct = [...new Set(licenses)]
  if (distinct.length === 1) return distinct[0]!
  return distinct.find((l) => !GPL_COMPATIBLE.has(l)) ?? 'GPL'
}

/**
 * Reads what a component needs from its object: the XDP program (by name, or the first XDP program), its
 * section, license and maps. Usage errors (exit 2) for anything that cannot become a component.
 */
export function inspectComponent(object: string, prog: string | undefined): Omit<ComponentSource, 'copy' | 'priority'> {
  const obj = BpfObject.open(object)
  try {
    const xdpPrograms = obj.programs().filter((p) => p.typeId === BPF_PROG_TYPE_XDP)
    const program = prog === undefined ? xdpPrograms[0] : obj.program(prog)
    if (!program) throw new UsageError(`${object} has no XDP program (SEC("xdp"))`, { op: 'load', hint: `its programs: ${obj.programs().map((p) => `${p.name} (${p.section})`).join(', ') || '(none)'}` })
    if (program.typeId !== BPF_PROG_TYPE_XDP) throw new UsageError(`program ${program.name} of ${object} is not an XDP program (section ${program.section})`, { op: 'load' })
    if (program.name.length > MAX_NAME_LENGTH) {
      throw new UsageError(`program name ${program.name} is longer than ${MAX_NAME_LENGTH} characters`, { op: 'load', hint: 'the dispatcher calls components by name; rename the function' })
    }
    const bytes = readFileSync(object)
    const license = elfLicense(bytes, object)
    if (license === undefined) throw new UsageError(`${object} has no license section`, { op: 'load', hint: 'add: char LICENSE[] SEC("license") = "GPL";' })
    const text = elfSections(bytes, object).find((s) => s.name === '.text' && s.size > 0)
    if (text && program.section !== '.text') {
      throw new UsageError(`${object} has code in .text (subprograms) besides ${program.section}; a component needs its code in the program's section`, {
        op: 'load',
        hint: 'mark its helper functions static __always_inline (or link them into one section)',
      })
    }
    return { name: program.name, object, section: program.section, license, maps: obj.declaredMaps() }
  } finally {
    obj.close()
  }
}

function objcopy(args: string[]): void {
  try {
    execFileSync('llvm-objcopy', args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' })
  } catch (err) {
    const e = err as { code?: string; stderr?: string; errno?: number }
    if (e.code === 'ENOENT') {
      throw new KbxError('llvm-objcopy not found', { op: 'prepare dispatcher component', errno: 2, hint: 'install LLVM (Debian: apt install llvm)' })
    }
    throw new KbxError(`llvm-objcopy ${args.join(' ')} failed: ${e.stderr?.trim() ?? String(err)}`, { op: 'prepare dispatcher component' })
  }
}

/** A license section's bytes: the string, NUL-padded to `size` (every object of a link gets the same). */
function licenseBytes(license: string, size: number): Buffer {
  const bytes = Buffer.alloc(Math.max(size, license.length + 1))
  bytes.write(license, 'latin1')
  return bytes
}

/** llvm-objcopy arguments renaming a component's globals in its symbols and its BTF alike. */
function globalRenames(c: ComponentSource, workDir: string, slot: number): string[] {
  const renames = Object.entries(c.renames ?? {})
  if (renames.length === 0) return []
  const btfFile = join(workDir, `${slot}-btf`)
  writeFileSync(btfFile, renameBtfGlobals(readFileSync(c.copy), c.copy, new Map(renames)))
  return ['--update-section', `.BTF=${btfFile}`, ...renames.flatMap(([from, to]) => ['--redefine-sym', `${from}=${to}`])]
}

/**
 * Builds the dispatcher object for these components (in priority order) in workDir and returns its path:
 * the template's slots renamed to the components' entry functions; each component's program section
 * renamed to .text (a global subprogram now), its .BTF.ext dropped (it names the old section) and its
 * license made identical to the others'; then libbpf's static linker joins them.
 */
export function buildDispatcher(components: readonly ComponentSource[], workDir: string): string {
  if (components.length === 0 || components.length > MAX_COMPONENTS) {
    throw new UsageError(`a dispatcher chains 1 to ${MAX_COMPONENTS} programs, not ${components.length}`, { op: 'load' })
  }
  const license = combinedLicense(components.map((c) => c.license))
  const licenseSize = Math.max(license.length + 1, 4, ...components.map((c) => c.license.length + 1))
  const licenseFile = join(workDir, 'license')
  writeFileSync(licenseFile, licenseBytes(license, licenseSize))

  const template = readFileSync(bpfObjectPath(`kbx_dispatcher_${components.length}`))
  components.forEach((c, slot) => renameInPlace(template, slotPlaceholder(slot), c.name, 2))
  const dispatcher = join(workDir, 'dispatcher.o')
  writeFileSync(dispatcher, template)
  objcopy(['--update-section', `license=${licenseFile}`, dispatcher])

  const inputs = [dispatcher]
  components.forEach((c, slot) => {
    const out = join(workDir, `${slot}-${c.name}.o`)
    const rename = c.section === '.text' ? [] : ['--rename-section', `${c.section}=.text`]
    objcopy(['--strip-debug', ...rename, '--remove-section', '.BTF.ext', '--remove-section', '.rel.BTF.ext', '--update-section', `license=${licenseFile}`, c.copy, out])
    // A second pass: llvm-objcopy 14 leaves .rel.BTF pointing at .BTF's old index when one pass both
    // removes sections and replaces .BTF ("ELF relo section #9 points to missing section #18").
    const renames = globalRenames(c, workDir, slot)
    if (renames.length > 0) objcopy([...renames, out])
    inputs.push(out)
  })
  const combined = join(workDir, 'combined.o')
  try {
    linkObjects(combined, inputs)
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err)
    throw new KbxError(`cannot link ${components.map((c) => c.name).join(', ')} into one dispatcher: ${detail}`, {
      op: 'link dispatcher',
      ...(err instanceof KbxError && err.errno !== undefined ? { errno: err.errno } : {}),
      hint: /conflict|duplicate/i.test(detail)
        ? 'two components define a global (map, variable or function) of the same name; rename it in one of them'
        : /unresolved|find/i.test(detail)
          ? "a component's entry function must be global (not static)"
          : undefined,
      cause: err,
    })
  }
  return combined
}
