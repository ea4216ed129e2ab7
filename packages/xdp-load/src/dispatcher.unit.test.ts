import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { bpfObjectPath } from '@kbx/ffi'
import { renameBtfGlobals } from './btf-rename.js'
import { parseComponentArg } from './chain-load.js'
import { ordered } from './chain.js'
import { combinedLicense, slotPlaceholder, MAX_NAME_LENGTH } from './dispatcher.js'
import type { ComponentSource } from './dispatcher.js'
import { elfLicense, renameInPlace } from './elf.js'

t.test('combinedLicense: one license the kernel judges as it would each program alone', async (t) => {
  t.equal(combinedLicense(['GPL', 'GPL']), 'GPL')
  t.equal(combinedLicense(['Dual BSD/GPL']), 'Dual BSD/GPL', 'one program keeps its own')
  t.equal(combinedLicense(['Dual BSD/GPL', 'GPL', 'Dual MIT/GPL']), 'GPL', 'all GPL-compatible: GPL')
  t.equal(combinedLicense(['GPL', 'Proprietary', 'MIT']), 'Proprietary', 'else the first that is not GPL-compatible')
})

t.test('parseComponentArg: OBJECT.o[:PROG]', async (t) => {
  t.same(parseComponentArg('a.o'), { object: 'a.o' })
  t.same(parseComponentArg('dir/a.o:xdp_count'), { object: 'dir/a.o', prog: 'xdp_count' })
  t.same(parseComponentArg('/x:y/a.o'), { object: '/x:y/a.o' }, 'a colon inside a directory name is no program')
})

t.test('ordered: lower priority first, equal priorities keep their order', async (t) => {
  const c = (name: string, priority: number) => ({ name, priority }) as ComponentSource
  t.same(ordered([c('b', 20), c('a', 10), c('c', 20), c('d', 5)]).map((x) => x.name), ['d', 'a', 'b', 'c'])
})

t.test('placeholders: every slot of every template, each once in .strtab and once in the BTF strings', async (t) => {
  t.equal(MAX_NAME_LENGTH, 64, 'an entry function name may be as long as a placeholder')
  for (let slots = 1; slots <= 8; slots++) {
    const template = readFileSync(bpfObjectPath(`kbx_dispatcher_${slots}`))
    for (let slot = 0; slot < slots; slot++) t.equal(renameInPlace(template, slotPlaceholder(slot), `prog_${slot}`, 2), 2)
    t.throws(() => renameInPlace(template, slotPlaceholder(slots), 'x', 2), /found 0 times/, `no slot ${slots} in kbx_dispatcher_${slots}`)
  }
  t.throws(() => renameInPlace(Buffer.alloc(8), 'ab', 'abc', 0), /longer than/)
  t.equal(elfLicense(readFileSync(bpfObjectPath('test_foreign_pass')), 'test_foreign_pass.o'), 'GPL')
  t.equal(elfLicense(readFileSync(bpfObjectPath('test_count_udp_drop')), 'test_count_udp_drop.o'), 'Dual BSD/GPL')
})

t.test('renameBtfGlobals: VARs and FUNCs renamed in BTF, as bpftool reads it back', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kbx-btf-rename-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const source = bpfObjectPath('xdp_xsk_redirect')
  const btf = renameBtfGlobals(readFileSync(source), source, new Map([['stats', 'k1_stats'], ['kbx_xsk_redirect', 'kbx_xsk_redirect_k1'], ['match_proto', 'k1_match_proto']]))
  writeFileSync(join(dir, 'btf'), btf)
  const out = join(dir, 'renamed.o')
  execFileSync('llvm-objcopy', ['--update-section', `.BTF=${join(dir, 'btf')}`, '--redefine-sym', 'stats=k1_stats', source, out])
  const dump = execFileSync('bpftool', ['btf', 'dump', 'file', out], { encoding: 'utf8' })
  t.match(dump, /VAR 'k1_stats'/)
  t.match(dump, /FUNC 'kbx_xsk_redirect_k1'/)
  t.match(dump, /VAR 'k1_match_proto'/)
  t.notMatch(dump, /VAR 'stats'/)
  t.match(dump, /VAR 'xsks'/, 'the others untouched')
  t.throws(() => renameBtfGlobals(readFileSync(source), source, new Map([['nosuch', 'x']])), /no BTF variable or function named nosuch/)
  t.throws(() => renameBtfGlobals(readFileSync(source), source, new Map([['stats', 'not-an-identifier']])), /not a C identifier/)
})
