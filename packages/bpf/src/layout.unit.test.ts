import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as ffi from '@kbx/ffi'
import { koffi } from '@kbx/ffi'

/** The koffi structs of @kbx/ffi against the C headers they mirror: sizes and every member offset. */

const structs: [name: string, type: koffi.IKoffiCType, members: [js: string, c: string][]][] = [
  ['bpf_test_run_opts', ffi.BpfTestRunOpts, ['sz', 'data_in', 'data_out', 'data_size_in', 'data_size_out', 'ctx_in', 'ctx_out', 'ctx_size_in', 'ctx_size_out', 'retval', 'repeat', 'duration', 'flags', 'cpu', 'batch_size'].map((m) => [m, m])],
  ['bpf_link_create_opts', ffi.BpfLinkCreateOpts, [['sz', 'sz'], ['flags', 'flags'], ['iter_info', 'iter_info'], ['iter_info_len', 'iter_info_len'], ['target_btf_id', 'target_btf_id'], ['target_union', 'perf_event']]],
  ['bpf_prog_load_opts', ffi.BpfProgLoadOpts, ['sz', 'attempts', 'expected_attach_type', 'prog_btf_fd', 'prog_flags', 'prog_ifindex', 'kern_version', 'attach_btf_id', 'attach_prog_fd', 'attach_btf_obj_fd', 'fd_array', 'func_info', 'func_info_cnt', 'func_info_rec_size', 'line_info', 'line_info_cnt', 'line_info_rec_size', 'log_level', 'log_size', 'log_buf'].map((m) => [m, m])],
  ['bpf_map_create_opts', ffi.BpfMapCreateOpts, ['sz', 'btf_fd', 'btf_key_type_id', 'btf_value_type_id', 'btf_vmlinux_value_type_id', 'inner_map_fd', 'map_flags', 'map_extra', 'numa_node', 'map_ifindex'].map((m) => [m, m])],
  ['bpf_prog_info', ffi.BpfProgInfo, ['type', 'id', 'tag', 'jited_prog_len', 'xlated_prog_len', 'jited_prog_insns', 'xlated_prog_insns', 'load_time', 'created_by_uid', 'nr_map_ids', 'map_ids', 'name', 'ifindex', 'netns_dev', 'netns_ino', 'nr_jited_ksyms', 'nr_jited_func_lens', 'jited_ksyms', 'jited_func_lens', 'btf_id', 'func_info_rec_size', 'func_info', 'nr_func_info', 'nr_line_info', 'line_info', 'jited_line_info', 'nr_jited_line_info', 'line_info_rec_size', 'jited_line_info_rec_size', 'nr_prog_tags', 'prog_tags', 'run_time_ns', 'run_cnt', 'recursion_misses', 'verified_insns', 'attach_btf_obj_id', 'attach_btf_id'].map((m) => [m, m])],
  ['bpf_map_info', ffi.BpfMapInfo, ['type', 'id', 'key_size', 'value_size', 'max_entries', 'map_flags', 'name', 'ifindex', 'btf_vmlinux_value_type_id', 'netns_dev', 'netns_ino', 'btf_id', 'btf_key_type_id', 'btf_value_type_id', 'map_extra'].map((m) => [m, m])],
  ['bpf_link_info', ffi.BpfLinkInfo, [['type', 'type'], ['id', 'id'], ['prog_id', 'prog_id'], ['union', 'xdp']]],
  ['xdp_md', ffi.XdpMd, ['data', 'data_end', 'data_meta', 'ingress_ifindex', 'rx_queue_index', 'egress_ifindex'].map((m) => [m, m])],
  ['btf_type', ffi.BtfTypeHeader, [['name_off', 'name_off'], ['info', 'info'], ['size_or_type', 'size']]],
  ['btf_member', ffi.BtfMember, ['name_off', 'type', 'offset'].map((m) => [m, m])],
  ['btf_var_secinfo', ffi.BtfVarSecinfo, ['type', 'offset', 'size'].map((m) => [m, m])],
]

const constants = [
  'BPF_XDP', 'BPF_PROG_TYPE_XDP', 'BPF_PROG_TYPE_EXT', 'BPF_PROG_TYPE_SOCKET_FILTER', 'BPF_MAP_TYPE_HASH', 'BPF_MAP_TYPE_ARRAY',
  'BPF_MAP_TYPE_PROG_ARRAY', 'BPF_MAP_TYPE_PERCPU_HASH', 'BPF_MAP_TYPE_PERCPU_ARRAY', 'BPF_MAP_TYPE_LRU_HASH',
  'BPF_MAP_TYPE_LRU_PERCPU_HASH', 'BPF_MAP_TYPE_XSKMAP', 'BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE', 'BPF_LINK_TYPE_XDP',
  'BPF_FUNC_map_lookup_elem', 'BPF_FUNC_tail_call', 'BPF_FUNC_spin_lock', 'BPF_FUNC_spin_unlock', 'XDP_FLAGS_SKB_MODE',
  'XDP_FLAGS_DRV_MODE', 'XDP_FLAGS_HW_MODE', 'XDP_FLAGS_REPLACE', 'XDP_FLAGS_UPDATE_IF_NOEXIST', 'XDP_ATTACHED_DRV',
  'XDP_ATTACHED_SKB', 'XDP_ATTACHED_HW', 'XDP_ATTACHED_MULTI', 'BPF_F_TEST_RUN_ON_CPU', 'BPF_F_TEST_XDP_LIVE_FRAMES',
  'BPF_ANY', 'BPF_NOEXIST', 'BPF_EXIST', 'BPF_OBJ_NAME_LEN', 'BPF_TAG_SIZE', 'BTF_KIND_STRUCT', 'BTF_KIND_DATASEC',
  'BTF_KIND_VAR', 'BTF_KIND_FUNC', 'BTF_INT_SIGNED', 'BTF_FUNC_GLOBAL', 'RLIMIT_MEMLOCK', 'CLONE_NEWNET',
]

t.test('struct layouts and constants match the C headers', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kbx-layout-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const lines = [
    '#define _GNU_SOURCE',
    '#include <stdio.h>',
    '#include <stddef.h>',
    '#include <sched.h>',
    '#include <sys/resource.h>',
    '#include <linux/bpf.h>',
    '#include <linux/btf.h>',
    '#include <linux/if_link.h>',
    '#include <bpf/bpf.h>',
    '#include <bpf/libbpf.h>',
    'int main(void) {',
  ]
  for (const [name, , members] of structs) {
    lines.push(`printf("sizeof ${name} %zu\\n", sizeof(struct ${name}));`)
    for (const [, c] of members) lines.push(`printf("offsetof ${name} ${c} %zu\\n", offsetof(struct ${name}, ${c}));`)
  }
  for (const c of constants) lines.push(`printf("const ${c} %lld\\n", (long long)(${c}));`)
  lines.push('return 0; }')
  writeFileSync(join(dir, 'layout.c'), lines.join('\n'))
  execFileSync('clang', ['-o', join(dir, 'layout'), join(dir, 'layout.c')])
  const facts = new Map(
    execFileSync(join(dir, 'layout'), { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map((line) => {
        const parts = line.split(' ')
        return [parts.slice(0, -1).join(' '), Number(parts.at(-1))] as const
      }),
  )
  for (const [name, type, members] of structs) {
    t.equal(koffi.sizeof(type), facts.get(`sizeof ${name}`), `sizeof ${name}`)
    for (const [js, c] of members) t.equal(koffi.offsetof(type, js), facts.get(`offsetof ${name} ${c}`), `${name}.${c}`)
  }
  for (const c of constants) t.equal((ffi as unknown as Record<string, number>)[c], facts.get(`const ${c}`), c)
})
