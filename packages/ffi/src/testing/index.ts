import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { koffi, repoRoot } from '../load.js'

/**
 * Checks that the TypeScript side of a C↔TS boundary agrees with the C headers, from the headers
 * themselves: clang lists every struct's members and every enum's constants (its AST, as JSON), and a
 * small program compiled from the same headers prints sizeof, offsetof and the size of each member and
 * the value of each constant. Import from '@kbx/ffi/testing'.
 *
 * Adding a struct (in a package's `native.unit.test.ts`, beside its bindings): one row in its table,
 *   { c: 'kbx_x_config', type: KbxXConfig }
 * with `rename` where a koffi member is named differently and `cOnly` for C members the koffi type leaves
 * out on purpose (a flexible array); every other member, on either side, must be on both. A constant:
 *   { c: 'KBX_X_LIMIT', value: X_LIMIT }
 * An enum, whose constants must all be listed (or named in cOnly):
 *   { c: 'kbx_x_state', values: { KBX_X_IDLE: X_STATE.idle, … } }
 * Headers are found in native/include and bpf/include unless includeDirs says otherwise.
 */

export interface StructMirror {
  /** The struct's tag in C (without `struct`). */
  c: string
  /** The koffi type that mirrors it. */
  type: koffi.IKoffiCType
  /** koffi member name → C member name, where they differ. */
  rename?: Record<string, string>
  /** C members the koffi type leaves out on purpose, each with the reason. */
  cOnly?: Record<string, string>
}

export interface ConstantMirror {
  /** A #define or enum constant visible after the headers. */
  c: string
  value: number | bigint
}

export interface EnumMirror {
  /** The enum's tag in C (without `enum`). */
  c: string
  /** Every constant of the enum and the value the TypeScript side uses for it. */
  values: Record<string, number>
  /** Constants the TypeScript side has no use for (a count such as KBX_FRAME_STATES). */
  cOnly?: string[]
}

export interface LayoutTable {
  /** Headers to include, as `#include "…"` names. */
  headers: string[]
  /** Default: native/include and bpf/include of the repository. */
  includeDirs?: string[]
  structs?: StructMirror[]
  constants?: ConstantMirror[]
  enums?: EnumMirror[]
}

export interface LayoutReport {
  /** Every disagreement, one sentence each; empty when both sides agree. */
  mismatches: string[]
  /** Comparisons made (so a test can tell that it checked something). */
  checked: number
}

interface CDeclarations {
  structs: Map<string, string[]>
  enums: Map<string, string[]>
}

interface AstNode {
  kind?: string
  name?: string
  tagUsed?: string
  completeDefinition?: boolean
  inner?: AstNode[]
}

/** Member lists of every named struct and constants of every named enum the headers define. */
function declarationsOf(ast: AstNode): CDeclarations {
  const out: CDeclarations = { structs: new Map(), enums: new Map() }
  const visit = (node: AstNode): void => {
    if (node.kind === 'RecordDecl' && node.tagUsed === 'struct' && node.name && node.completeDefinition) {
      out.structs.set(node.name, (node.inner ?? []).filter((n) => n.kind === 'FieldDecl').map((n) => n.name ?? ''))
    } else if (node.kind === 'EnumDecl' && node.name && node.inner) {
      out.enums.set(node.name, node.inner.filter((n) => n.kind === 'EnumConstantDecl').map((n) => n.name ?? ''))
    }
    for (const child of node.inner ?? []) visit(child)
  }
  visit(ast)
  return out
}

/** The koffi type's members, in order, each with the C member it mirrors. */
function mirroredMembers(s: StructMirror): [ts: string, c: string][] {
  return Object.keys(koffi.introspect(s.type).members ?? {}).map((ts) => [ts, s.rename?.[ts] ?? ts])
}

/** C's side of the table: member lists from clang's AST, sizes and values from a compiled program. */
function readC(table: LayoutTable, dir: string): { declarations: CDeclarations; facts: Map<string, bigint> } {
  const includeDirs = table.includeDirs ?? [join(repoRoot, 'native/include'), join(repoRoot, 'bpf/include')]
  const flags = ['-std=gnu11', ...includeDirs.map((d) => `-I${d}`)]
  const source = join(dir, 'layout.c')
  const head = ['#include <stdio.h>', '#include <stddef.h>', ...table.headers.map((h) => `#include "${h}"`)]
  writeFileSync(source, head.join('\n') + '\n')
  const ast = JSON.parse(
    execFileSync('clang', [...flags, '-fsyntax-only', '-Xclang', '-ast-dump=json', source], { encoding: 'utf8', maxBuffer: 1 << 28 }),
  ) as AstNode
  const declarations = declarationsOf(ast)

  const print = (label: string, expr: string) => `printf("${label} %llu\\n", (unsigned long long)(${expr}));`
  const body: string[] = []
  for (const s of table.structs ?? []) {
    if (!declarations.structs.has(s.c)) continue
    body.push(print(`sizeof ${s.c}`, `sizeof(struct ${s.c})`))
    const mirrored = new Set(mirroredMembers(s).map(([, c]) => c))
    for (const member of declarations.structs.get(s.c) ?? []) {
      body.push(print(`offsetof ${s.c}.${member}`, `offsetof(struct ${s.c}, ${member})`))
      // Members TypeScript leaves out (a flexible array, whose size C cannot take) are only located.
      if (mirrored.has(member)) body.push(print(`sizeof ${s.c}.${member}`, `sizeof(((struct ${s.c} *)0)->${member})`))
    }
  }
  for (const k of table.constants ?? []) body.push(print(`value ${k.c}`, k.c))
  for (const e of table.enums ?? []) for (const name of declarations.enums.get(e.c) ?? []) body.push(print(`value ${name}`, name))
  writeFileSync(source, [...head, 'int main(void) {', ...body, 'return 0; }'].join('\n') + '\n')
  const binary = join(dir, 'layout')
  try {
    execFileSync('clang', [...flags, '-o', binary, source], { stdio: ['ignore', 'ignore', 'pipe'] })
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? ''
    throw new Error(`the layout program does not compile (a constant the headers do not define?):\n${stderr}`, { cause: err })
  }
  const facts = new Map<string, bigint>()
  for (const line of execFileSync(binary, { encoding: 'utf8' }).trim().split('\n')) {
    const cut = line.lastIndexOf(' ')
    facts.set(line.slice(0, cut), BigInt(line.slice(cut + 1)))
  }
  return { declarations, facts }
}

/** Compares a table of TypeScript mirrors with the C headers (needs clang). */
export function compareLayouts(table: LayoutTable): LayoutReport {
  const dir = mkdtempSync(join(tmpdir(), 'kbx-layout-'))
  try {
    const { declarations, facts } = readC(table, dir)
    const mismatches: string[] = []
    let checked = 0
    const expect = (what: string, ts: bigint, c: bigint | undefined) => {
      checked++
      if (c === undefined) mismatches.push(`${what}: not found in C`)
      else if (ts !== c) mismatches.push(`${what}: TypeScript says ${ts}, C says ${c}`)
    }
    for (const s of table.structs ?? []) {
      const cMembers = declarations.structs.get(s.c)
      if (!cMembers) {
        mismatches.push(`struct ${s.c}: not defined by ${table.headers.join(', ')}`)
        continue
      }
      const members = koffi.introspect(s.type).members ?? {}
      const mirrored = mirroredMembers(s)
      const expected = cMembers.filter((m) => s.cOnly?.[m] === undefined)
      const actual = mirrored.map(([, c]) => c)
      checked++
      if (expected.join(',') !== actual.join(','))
        mismatches.push(`struct ${s.c} members: C has [${expected.join(', ')}], TypeScript has [${actual.join(', ')}]`)
      for (const m of Object.keys(s.cOnly ?? {})) if (!cMembers.includes(m)) mismatches.push(`struct ${s.c}: cOnly member ${m} is not in C`)
      expect(`sizeof struct ${s.c}`, BigInt(koffi.sizeof(s.type)), facts.get(`sizeof ${s.c}`))
      for (const [ts, c] of mirrored) {
        if (!cMembers.includes(c)) continue
        expect(`offsetof ${s.c}.${c}`, BigInt(members[ts]!.offset), facts.get(`offsetof ${s.c}.${c}`))
        expect(`sizeof ${s.c}.${c}`, BigInt(koffi.sizeof(members[ts]!.type)), facts.get(`sizeof ${s.c}.${c}`))
      }
    }
    for (const k of table.constants ?? []) expect(k.c, BigInt.asUintN(64, BigInt(k.value)), facts.get(`value ${k.c}`))
    for (const e of table.enums ?? []) {
      const cNames = declarations.enums.get(e.c)
      if (!cNames) {
        mismatches.push(`enum ${e.c}: not defined by ${table.headers.join(', ')}`)
        continue
      }
      const expected = cNames.filter((n) => !e.cOnly?.includes(n))
      checked++
      if ([...expected].sort().join(',') !== Object.keys(e.values).sort().join(','))
        mismatches.push(`enum ${e.c}: C has [${expected.join(', ')}], TypeScript has [${Object.keys(e.values).join(', ')}]`)
      for (const [name, value] of Object.entries(e.values)) expect(name, BigInt.asUintN(64, BigInt(value)), facts.get(`value ${name}`))
    }
    return { mismatches, checked }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** What logLinearProbes needs of a TypeScript decoder of kbx_histogram.h (@kbx/stats' LogLinearLayout). */
export interface LogLinearLayoutMirror {
  readonly subBits: number
  readonly valueBits: number
  readonly length: number
  index(value: bigint): number
  lower(index: number): bigint
  upper(index: number): bigint
}

/**
 * Constant rows that hold a TypeScript decoder to bpf/include/kbx_histogram.h for one layout, whose
 * sub-bucket bits C names `cSubBits` (and value bits `cValueBits`): the bucket count, the bucket of the
 * values around every power of two and of the largest one, and the bounds of buckets spread over the range.
 */
export function logLinearProbes(cSubBits: string, cValueBits: string, layout: LogLinearLayoutMirror): ConstantMirror[] {
  const rows: ConstantMirror[] = [
    { c: cSubBits, value: layout.subBits },
    { c: cValueBits, value: layout.valueBits },
    { c: `KBX_HIST_BUCKETS(${cSubBits}, ${cValueBits})`, value: layout.length },
  ]
  const largest = (1n << BigInt(layout.valueBits)) - 1n
  const values = new Set<bigint>([0n, 1n, largest])
  for (let bit = 1; bit < layout.valueBits; bit++) {
    const p = 1n << BigInt(bit)
    for (const v of [p - 1n, p, p + 1n, p + p / 3n]) values.add(v)
  }
  for (const v of values) rows.push({ c: `kbx_hist_index(${v}ULL, ${cSubBits})`, value: layout.index(v) })
  const step = Math.max(1, Math.floor(layout.length / 97))
  for (let i = 0; i < layout.length; i += i < 2 ** (layout.subBits + 2) ? 1 : step) {
    rows.push({ c: `kbx_hist_lower(${i}, ${cSubBits})`, value: layout.lower(i) })
    rows.push({ c: `kbx_hist_upper(${i}, ${cSubBits})`, value: layout.upper(i) })
  }
  rows.push({ c: `kbx_hist_upper(${layout.length - 1}, ${cSubBits})`, value: layout.upper(layout.length - 1) })
  return rows
}
