// The bindings of native.ts against the C headers they mirror (native/include/kbx_tcp.h, kbx_fix.h): a C
// program compiled here prints every size, offset, enum value and limit, so a field added, moved or renamed on
// one side only fails this test. The all-u64/u32 structs are checked field by field by name and by size (so
// the TS list has every field, in order).
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { koffi, repoRoot } from '@kbx/ffi'
import {
  KBX_FIX_REFLEX_COUNTER_FIELDS, KBX_FIX_REFLEX_IO, KBX_FIX_REFLEX_STAGE_NAMES, KBX_FIX_TIMING_NAMES, KBX_FIX_TIMING_RING, KBX_FIX_XDP_COUNTER_FIELDS,
  KBX_FIX_XDP_RESULT_FIELDS, KBX_TCP_CLOSE_REASONS, KBX_TCP_SEQ_FIELDS, KBX_TCP_STATE_NAMES, KBX_TCP_STATS_FIELDS, KbxFixXdpConfig, KbxTcpConfig,
} from './native.js'

const koffiStructs: [name: string, type: koffi.IKoffiCType, members: string[]][] = [
  ['kbx_tcp_config', KbxTcpConfig, ['local_mac', 'remote_mac', 'local_ip', 'remote_ip', 'local_port', 'remote_port', 'isn', 'mss', 'ecn', 'rcv_buf', 'snd_buf', 'rto_min_us', 'drop_tx_nth', 'keepalive_s']],
  ['kbx_fix_xdp_config', KbxFixXdpConfig, ['tcp', 'busy_poll']],
]
/** Structs read as arrays of one integer width: [C name, width in bytes, the TS field list]. */
const arrays: [name: string, width: number, fields: readonly string[]][] = [
  ['kbx_tcp_stats', 8, KBX_TCP_STATS_FIELDS],
  ['kbx_tcp_seq', 4, KBX_TCP_SEQ_FIELDS],
  ['kbx_fix_xdp_result', 4, KBX_FIX_XDP_RESULT_FIELDS],
  ['kbx_fix_xdp_counters', 8, KBX_FIX_XDP_COUNTER_FIELDS],
  ['kbx_fix_reflex_counters', 8, KBX_FIX_REFLEX_COUNTER_FIELDS],
]
const reflexIo: Record<Exclude<keyof typeof KBX_FIX_REFLEX_IO, 'msgMax' | 'size'>, string> = {
  armed: 'armed', clOrdId: 'cl_ord_id', expectSeq: 'expect_seq', nextSeq: 'next_seq', nextClOrdId: 'next_cl_ord_id', sentSeq: 'sent_seq',
  sentClOrdId: 'sent_cl_ord_id', sentNs: 'sent_ns', triggerSeq: 'trigger_seq', len: 'len', timeAt: 'time_at', bodyAt: 'body_at', bodyEnd: 'body_end', msg: 'msg',
}
const stateConstant = (name: string) => `KBX_TCP_${name.toUpperCase().replace(/-/g, '_')}`
const closeReasonConstants: Record<(typeof KBX_TCP_CLOSE_REASONS)[number], string> = {
  open: 'KBX_TCP_OPEN', closed: 'KBX_TCP_CLOSED_NORMALLY', reset: 'KBX_TCP_RESET', 'timed-out': 'KBX_TCP_TIMED_OUT', refused: 'KBX_TCP_REFUSED',
}

t.test('fix bindings: struct layouts, field lists, enum values and limits match the C headers', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kbx-fix-layout-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const lines = ['#include <stdio.h>', '#include <stddef.h>', '#include "kbx_fix.h"', 'int main(void) {']
  const print = (key: string, expr: string) => lines.push(`printf("${key} %lld\\n", (long long)(${expr}));`)
  for (const [name, , members] of koffiStructs) {
    print(`sizeof ${name}`, `sizeof(struct ${name})`)
    for (const m of members) print(`offsetof ${name} ${m}`, `offsetof(struct ${name}, ${m})`)
  }
  for (const [name, , fields] of arrays) {
    print(`sizeof ${name}`, `sizeof(struct ${name})`)
    for (const f of fields) print(`offsetof ${name} ${f}`, `offsetof(struct ${name}, ${f})`)
  }
  print('sizeof kbx_fix_reflex_io', 'sizeof(struct kbx_fix_reflex_io)')
  for (const c of Object.values(reflexIo)) print(`offsetof kbx_fix_reflex_io ${c}`, `offsetof(struct kbx_fix_reflex_io, ${c})`)
  for (const name of KBX_TCP_STATE_NAMES) print(`state ${name}`, stateConstant(name))
  for (const [name, c] of Object.entries(closeReasonConstants)) print(`close ${name}`, c)
  print('KBX_FIX_TIMING_RING', 'KBX_FIX_TIMING_RING')
  print('KBX_FIX_TIMINGS', 'KBX_FIX_TIMINGS')
  print('KBX_FIX_REFLEX_STAGES', 'KBX_FIX_REFLEX_STAGES')
  print('KBX_FIX_REFLEX_MSG_MAX', 'KBX_FIX_REFLEX_MSG_MAX')
  lines.push('return 0; }')
  writeFileSync(join(dir, 'layout.c'), lines.join('\n'))
  execFileSync('clang', ['-I', join(repoRoot, 'native/include'), '-o', join(dir, 'layout'), join(dir, 'layout.c')])
  const facts = new Map(
    execFileSync(join(dir, 'layout'), { encoding: 'utf8' }).trim().split('\n').map((line) => {
      const parts = line.split(' ')
      return [parts.slice(0, -1).join(' '), Number(parts.at(-1))] as const
    }),
  )
  for (const [name, type, members] of koffiStructs) {
    t.equal(koffi.sizeof(type), facts.get(`sizeof ${name}`), `sizeof ${name}`)
    for (const m of members) t.equal(koffi.offsetof(type, m), facts.get(`offsetof ${name} ${m}`), `${name}.${m}`)
  }
  for (const [name, width, fields] of arrays) {
    t.equal(fields.length * width, facts.get(`sizeof ${name}`), `${name}: ${fields.length} fields of ${width} bytes, none missing`)
    fields.forEach((f, i) => t.equal(i * width, facts.get(`offsetof ${name} ${f}`), `${name}.${f} is field ${i}`))
  }
  t.equal(KBX_FIX_REFLEX_IO.size, facts.get('sizeof kbx_fix_reflex_io'), 'sizeof kbx_fix_reflex_io')
  for (const [ts, c] of Object.entries(reflexIo)) t.equal(KBX_FIX_REFLEX_IO[ts as keyof typeof reflexIo], facts.get(`offsetof kbx_fix_reflex_io ${c}`), `kbx_fix_reflex_io.${c}`)
  KBX_TCP_STATE_NAMES.forEach((name, i) => t.equal(facts.get(`state ${name}`), i, `${stateConstant(name)} = ${i}`))
  KBX_TCP_CLOSE_REASONS.forEach((name, i) => t.equal(facts.get(`close ${name}`), i, `${closeReasonConstants[name]} = ${i}`))
  t.equal(KBX_FIX_TIMING_RING, facts.get('KBX_FIX_TIMING_RING'))
  t.equal(KBX_FIX_TIMING_NAMES.length, facts.get('KBX_FIX_TIMINGS'), 'one name per timing ring')
  t.equal(KBX_FIX_REFLEX_STAGE_NAMES.length, facts.get('KBX_FIX_REFLEX_STAGES'), 'one name per reflex stage')
  t.same(KBX_FIX_TIMING_NAMES.slice(-KBX_FIX_REFLEX_STAGE_NAMES.length - 1, -1), KBX_FIX_REFLEX_STAGE_NAMES.map((n) => `reflex${n[0]!.toUpperCase()}${n.slice(1)}`), 'the stage rings in stage order, then their sum')
  t.equal(KBX_FIX_REFLEX_IO.msgMax, facts.get('KBX_FIX_REFLEX_MSG_MAX'))
})
