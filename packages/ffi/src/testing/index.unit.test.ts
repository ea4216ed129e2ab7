import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { koffi } from '../load.js'
import { compareLayouts, type LayoutTable } from './index.js'

/** compareLayouts against a header written here: it must see every kind of disagreement. */

const header = `
#include <stdint.h>
#define PROBE_LIMIT 4096
#define PROBE_BIG (1ULL << 40)
struct probe_pair { uint32_t a; uint32_t b; };
struct probe_flex { uint32_t count; uint32_t pad; uint64_t items[]; };
enum probe_state { PROBE_IDLE = 0, PROBE_BUSY = 1, PROBE_STATES = 2 };
`

function table(dir: string, parts: Partial<LayoutTable>): LayoutTable {
  return { headers: ['probe.h'], includeDirs: [dir], ...parts }
}

t.test('a faithful mirror passes; each kind of drift is named', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kbx-layout-probe-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'probe.h'), header)
  const pair = koffi.struct('probe_pair', { a: 'uint32_t', b: 'uint32_t' })
  const flex = koffi.struct('probe_flex', { count: 'uint32_t', pad: 'uint32_t' })

  const good = compareLayouts(
    table(dir, {
      structs: [
        { c: 'probe_pair', type: pair },
        { c: 'probe_flex', type: flex, cOnly: { items: 'flexible array' } },
      ],
      constants: [{ c: 'PROBE_LIMIT', value: 4096 }, { c: 'PROBE_BIG', value: 1n << 40n }],
      enums: [{ c: 'probe_state', values: { PROBE_IDLE: 0, PROBE_BUSY: 1 }, cOnly: ['PROBE_STATES'] }],
    }),
  )
  t.same(good.mismatches, [])
  t.ok(good.checked >= 14, `${good.checked} comparisons`)

  const drift = (parts: Partial<LayoutTable>) => compareLayouts(table(dir, parts)).mismatches
  t.match(drift({ structs: [{ c: 'probe_pair', type: koffi.struct('probe_pair_extra', { a: 'uint32_t', b: 'uint32_t', c: 'uint32_t' }) }] }), [
    /probe_pair members: C has \[a, b\], TypeScript has \[a, b, c\]/,
    /sizeof struct probe_pair: TypeScript says 12, C says 8/,
  ], 'a member only TypeScript has')
  t.match(drift({ structs: [{ c: 'probe_pair', type: koffi.struct('probe_pair_short', { a: 'uint32_t' }) }] })[0], /C has \[a, b\], TypeScript has \[a\]/, 'a member only C has')
  t.match(drift({ structs: [{ c: 'probe_pair', type: koffi.struct('probe_pair_swapped', { b: 'uint32_t', a: 'uint32_t' }) }] }), [/C has \[a, b\], TypeScript has \[b, a\]/, /offsetof probe_pair.b: TypeScript says 0, C says 4/], 'members in another order')
  t.match(drift({ structs: [{ c: 'probe_pair', type: koffi.struct('probe_pair_wide', { a: 'uint32_t', b: 'uint64_t' }) }] }), [/sizeof struct probe_pair/, /offsetof probe_pair.b: TypeScript says 8, C says 4/, /sizeof probe_pair.b: TypeScript says 8, C says 4/], 'a member of another width')
  t.match(drift({ structs: [{ c: 'probe_flex', type: flex }] })[0], /C has \[count, pad, items\]/, 'an undeclared C-only member')
  t.match(drift({ structs: [{ c: 'probe_gone', type: pair }] })[0], /struct probe_gone: not defined/, 'a struct C does not have')
  t.match(drift({ constants: [{ c: 'PROBE_LIMIT', value: 1024 }] })[0], /PROBE_LIMIT: TypeScript says 1024, C says 4096/, 'a copied limit')
  t.match(drift({ enums: [{ c: 'probe_state', values: { PROBE_IDLE: 0 }, cOnly: ['PROBE_STATES'] }] })[0], /enum probe_state: C has \[PROBE_IDLE, PROBE_BUSY\]/, 'an enum constant TypeScript lacks')
  t.match(drift({ enums: [{ c: 'probe_state', values: { PROBE_IDLE: 0, PROBE_BUSY: 2 }, cOnly: ['PROBE_STATES'] }] })[0], /PROBE_BUSY: TypeScript says 2, C says 1/, 'an enum value')
})

t.test('a constant the headers do not define fails with the compiler message', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kbx-layout-probe-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'probe.h'), header)
  t.throws(() => compareLayouts(table(dir, { constants: [{ c: 'PROBE_MISSING', value: 1 }] })), /does not compile[\s\S]*PROBE_MISSING/)
})
