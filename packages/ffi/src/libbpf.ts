import { koffi, openLibrary } from './load.js'

/**
 * libbpf 1.x (libbpf.so.1) declarations used by @kbx/bpf.
 *
 * Error conventions of libbpf 1.x: int-returning calls return a negative errno (and set errno);
 * pointer-returning calls return NULL and set errno. Some errors are libbpf's own codes
 * (LIBBPF_ERRNO__START = 4000 and up): libbpf_strerror() names them.
 *
 * Struct layouts mirror /usr/include/bpf/{bpf,libbpf}.h and /usr/include/linux/bpf.h (x86-64);
 * packages/bpf/src/layout.unit.test.ts compiles a C program against those headers and compares offsets.
 */

// ---- constants (linux/bpf.h, linux/if_link.h, linux/btf.h) ----

export const BPF_ANY = 0
export const BPF_NOEXIST = 1
export const BPF_EXIST = 2

export const BPF_PROG_TYPE_SOCKET_FILTER = 1
export const BPF_PROG_TYPE_XDP = 6
export const BPF_PROG_TYPE_EXT = 28

export const BPF_MAP_TYPE_HASH = 1
export const BPF_MAP_TYPE_ARRAY = 2
export const BPF_MAP_TYPE_PROG_ARRAY = 3
export const BPF_MAP_TYPE_PERCPU_HASH = 5
export const BPF_MAP_TYPE_PERCPU_ARRAY = 6
export const BPF_MAP_TYPE_LRU_HASH = 9
export const BPF_MAP_TYPE_LRU_PERCPU_HASH = 10
export const BPF_MAP_TYPE_XSKMAP = 17
export const BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE = 21

/** enum bpf_attach_type */
export const BPF_XDP = 37

export const BPF_LINK_TYPE_XDP = 6

export const BPF_FUNC_map_lookup_elem = 1
export const BPF_FUNC_tail_call = 12
export const BPF_FUNC_spin_lock = 93
export const BPF_FUNC_spin_unlock = 94

export const XDP_FLAGS_UPDATE_IF_NOEXIST = 1
export const XDP_FLAGS_SKB_MODE = 2
export const XDP_FLAGS_DRV_MODE = 4
export const XDP_FLAGS_HW_MODE = 8
export const XDP_FLAGS_REPLACE = 16

/** IFLA_XDP_ATTACHED values, as `ip -d link` reports them in xdp.mode. */
export const XDP_ATTACHED_NONE = 0
export const XDP_ATTACHED_DRV = 1
export const XDP_ATTACHED_SKB = 2
export const XDP_ATTACHED_HW = 3
export const XDP_ATTACHED_MULTI = 4

export const BPF_F_TEST_RUN_ON_CPU = 1
export const BPF_F_TEST_XDP_LIVE_FRAMES = 2

export const BPF_OBJ_NAME_LEN = 16
export const BPF_TAG_SIZE = 8

export const BTF_KIND_INT = 1
export const BTF_KIND_PTR = 2
export const BTF_KIND_ARRAY = 3
export const BTF_KIND_STRUCT = 4
export const BTF_KIND_UNION = 5
export const BTF_KIND_ENUM = 6
export const BTF_KIND_TYPEDEF = 8
export const BTF_KIND_VOLATILE = 9
export const BTF_KIND_CONST = 10
export const BTF_KIND_FUNC = 12
export const BTF_KIND_FUNC_PROTO = 13
export const BTF_KIND_VAR = 14
export const BTF_KIND_DATASEC = 15
export const BTF_INT_SIGNED = 1
export const BTF_FUNC_GLOBAL = 1

export const LIBBPF_WARN = 0
export const LIBBPF_INFO = 1
export const LIBBPF_DEBUG = 2

// ---- opaque handles ----

const BpfObjectType = koffi.opaque('bpf_object')
const BpfProgramType = koffi.opaque('bpf_program')
const BpfMapType = koffi.opaque('bpf_map')
const BtfType = koffi.opaque('btf')
const BpfLinkerType = koffi.opaque('bpf_linker')
void BpfObjectType, BpfProgramType, BpfMapType, BtfType, BpfLinkerType

/** Pointers handed out by libbpf; only ever passed back to it. */
export type BpfObjectPtr = { readonly __opaque: 'bpf_object' }
export type BpfProgramPtr = { readonly __opaque: 'bpf_program' }
export type BpfMapPtr = { readonly __opaque: 'bpf_map' }
export type BtfPtr = { readonly __opaque: 'btf' }
export type BpfLinkerPtr = { readonly __opaque: 'bpf_linker' }
/** A raw C pointer (koffi external) to memory libbpf owns. */
export type RawPtr = { readonly __opaque: 'pointer' }

// ---- structs ----

/** struct bpf_test_run_opts (bpf/bpf.h), 80 bytes. */
export const BpfTestRunOpts = koffi.struct('bpf_test_run_opts', {
  sz: 'size_t',
  data_in: 'void *',
  data_out: 'void *',
  data_size_in: 'uint32_t',
  data_size_out: 'uint32_t',
  ctx_in: 'void *',
  ctx_out: 'void *',
  ctx_size_in: 'uint32_t',
  ctx_size_out: 'uint32_t',
  retval: 'uint32_t',
  repeat: 'int',
  duration: 'uint32_t',
  flags: 'uint32_t',
  cpu: 'uint32_t',
  batch_size: 'uint32_t',
})

export interface BpfTestRunOptsValue {
  sz: number
  data_in: Uint8Array | null
  data_out: Uint8Array | null
  data_size_in: number
  data_size_out: number
  ctx_in: Uint8Array | null
  ctx_out: Uint8Array | null
  ctx_size_in: number
  ctx_size_out: number
  retval: number
  repeat: number
  duration: number
  flags: number
  cpu: number
  batch_size: number
}

/** struct xdp_md (linux/bpf.h): the context testRun may pass in and get back. */
export const XdpMd = koffi.struct('xdp_md', {
  data: 'uint32_t',
  data_end: 'uint32_t',
  data_meta: 'uint32_t',
  ingress_ifindex: 'uint32_t',
  rx_queue_index: 'uint32_t',
  egress_ifindex: 'uint32_t',
})

/** struct bpf_link_create_opts (bpf/bpf.h), 64 bytes; only sz and flags matter for XDP. */
export const BpfLinkCreateOpts = koffi.struct('bpf_link_create_opts', {
  sz: 'size_t',
  flags: 'uint32_t',
  iter_info: 'void *',
  iter_info_len: 'uint32_t',
  target_btf_id: 'uint32_t',
  target_union: koffi.array('uint64_t', 4),
})

/** struct bpf_prog_load_opts (bpf/bpf.h), 104 bytes. */
export const BpfProgLoadOpts = koffi.struct('bpf_prog_load_opts', {
  sz: 'size_t',
  attempts: 'int',
  expected_attach_type: 'uint32_t',
  prog_btf_fd: 'uint32_t',
  prog_flags: 'uint32_t',
  prog_ifindex: 'uint32_t',
  kern_version: 'uint32_t',
  attach_btf_id: 'uint32_t',
  attach_prog_fd: 'uint32_t',
  attach_btf_obj_fd: 'uint32_t',
  fd_array: 'void *',
  func_info: 'void *',
  func_info_cnt: 'uint32_t',
  func_info_rec_size: 'uint32_t',
  line_info: 'void *',
  line_info_cnt: 'uint32_t',
  line_info_rec_size: 'uint32_t',
  log_level: 'uint32_t',
  log_size: 'uint32_t',
  log_buf: 'void *',
})

export interface BpfProgLoadOptsValue {
  expected_attach_type?: number
  prog_btf_fd?: number
  prog_flags?: number
  attach_btf_id?: number
  attach_prog_fd?: number
  func_info?: Uint8Array | null
  func_info_cnt?: number
  func_info_rec_size?: number
  log_level?: number
  log_size?: number
  log_buf?: Uint8Array | null
}

/** struct bpf_map_create_opts (bpf/bpf.h), 48 bytes. */
export const BpfMapCreateOpts = koffi.struct('bpf_map_create_opts', {
  sz: 'size_t',
  btf_fd: 'uint32_t',
  btf_key_type_id: 'uint32_t',
  btf_value_type_id: 'uint32_t',
  btf_vmlinux_value_type_id: 'uint32_t',
  inner_map_fd: 'uint32_t',
  map_flags: 'uint32_t',
  map_extra: 'uint64_t',
  numa_node: 'uint32_t',
  map_ifindex: 'uint32_t',
})

export interface BpfMapCreateOptsValue {
  btf_fd?: number
  btf_key_type_id?: number
  btf_value_type_id?: number
  map_flags?: number
}

/** struct bpf_prog_info (linux/bpf.h), 232 bytes. Pointer fields are __aligned_u64 addresses. */
export const BpfProgInfo = koffi.struct('bpf_prog_info', {
  type: 'uint32_t',
  id: 'uint32_t',
  tag: koffi.array('uint8_t', BPF_TAG_SIZE),
  jited_prog_len: 'uint32_t',
  xlated_prog_len: 'uint32_t',
  jited_prog_insns: 'uint64_t',
  xlated_prog_insns: 'uint64_t',
  load_time: 'uint64_t',
  created_by_uid: 'uint32_t',
  nr_map_ids: 'uint32_t',
  map_ids: 'uint64_t',
  name: koffi.array('char', BPF_OBJ_NAME_LEN),
  ifindex: 'uint32_t',
  gpl_compatible: 'uint32_t', // bit 0; the other 31 bits pad
  netns_dev: 'uint64_t',
  netns_ino: 'uint64_t',
  nr_jited_ksyms: 'uint32_t',
  nr_jited_func_lens: 'uint32_t',
  jited_ksyms: 'uint64_t',
  jited_func_lens: 'uint64_t',
  btf_id: 'uint32_t',
  func_info_rec_size: 'uint32_t',
  func_info: 'uint64_t',
  nr_func_info: 'uint32_t',
  nr_line_info: 'uint32_t',
  line_info: 'uint64_t',
  jited_line_info: 'uint64_t',
  nr_jited_line_info: 'uint32_t',
  line_info_rec_size: 'uint32_t',
  jited_line_info_rec_size: 'uint32_t',
  nr_prog_tags: 'uint32_t',
  prog_tags: 'uint64_t',
  run_time_ns: 'uint64_t',
  run_cnt: 'uint64_t',
  recursion_misses: 'uint64_t',
  verified_insns: 'uint32_t',
  attach_btf_obj_id: 'uint32_t',
  attach_btf_id: 'uint32_t',
  pad: 'uint32_t',
})

/** struct bpf_map_info (linux/bpf.h), 88 bytes. */
export const BpfMapInfo = koffi.struct('bpf_map_info', {
  type: 'uint32_t',
  id: 'uint32_t',
  key_size: 'uint32_t',
  value_size: 'uint32_t',
  max_entries: 'uint32_t',
  map_flags: 'uint32_t',
  name: koffi.array('char', BPF_OBJ_NAME_LEN),
  ifindex: 'uint32_t',
  btf_vmlinux_value_type_id: 'uint32_t',
  netns_dev: 'uint64_t',
  netns_ino: 'uint64_t',
  btf_id: 'uint32_t',
  btf_key_type_id: 'uint32_t',
  btf_value_type_id: 'uint32_t',
  pad: 'uint32_t',
  map_extra: 'uint64_t',
})

/** struct bpf_link_info (linux/bpf.h), 48 bytes; the union is read per link type. */
export const BpfLinkInfo = koffi.struct('bpf_link_info', {
  type: 'uint32_t',
  id: 'uint32_t',
  prog_id: 'uint32_t',
  union: koffi.union('bpf_link_info_union', {
    xdp: koffi.struct({ ifindex: 'uint32_t' }),
    tracing: koffi.struct({ attach_type: 'uint32_t', target_obj_id: 'uint32_t', target_btf_id: 'uint32_t' }),
    netns: koffi.struct({ netns_ino: 'uint32_t', attach_type: 'uint32_t' }),
    raw: koffi.array('uint64_t', 4),
  }),
})

/** struct btf_type (linux/btf.h): name_off, info (vlen:16, kind:5 at bit 24, kind_flag at bit 31), size or type. */
export const BtfTypeHeader = koffi.struct('btf_type', {
  name_off: 'uint32_t',
  info: 'uint32_t',
  size_or_type: 'uint32_t',
})
/** struct btf_member: follows a STRUCT/UNION btf_type, vlen times. */
export const BtfMember = koffi.struct('btf_member', { name_off: 'uint32_t', type: 'uint32_t', offset: 'uint32_t' })
/** struct btf_var_secinfo: follows a DATASEC btf_type, vlen times. */
export const BtfVarSecinfo = koffi.struct('btf_var_secinfo', { type: 'uint32_t', offset: 'uint32_t', size: 'uint32_t' })

/** libbpf_print_fn_t: va_list arrives as a pointer (x86-64 __va_list_tag[1] decays to a pointer). */
export const LibbpfPrintFn = koffi.proto('int kbx_libbpf_print_fn(int level, const char *format, void *args)')

// ---- functions ----

export interface LibBpf {
  libbpf_version_string(): string
  libbpf_strerror(err: number, buf: Buffer, size: number): number
  libbpf_set_print(fn: unknown): unknown
  libbpf_num_possible_cpus(): number
  libbpf_probe_bpf_prog_type(progType: number, opts: null): number
  libbpf_probe_bpf_map_type(mapType: number, opts: null): number
  libbpf_probe_bpf_helper(progType: number, helperId: number, opts: null): number
  libbpf_bpf_prog_type_str(t: number): string | null
  libbpf_bpf_map_type_str(t: number): string | null
  libbpf_bpf_link_type_str(t: number): string | null
  libbpf_bpf_attach_type_str(t: number): string | null

  bpf_object__open_file(path: string, opts: null): BpfObjectPtr | null
  bpf_object__load(obj: BpfObjectPtr): number
  bpf_object__close(obj: BpfObjectPtr): void
  bpf_object__name(obj: BpfObjectPtr): string
  bpf_object__find_program_by_name(obj: BpfObjectPtr, name: string): BpfProgramPtr | null
  bpf_object__next_program(obj: BpfObjectPtr, prev: BpfProgramPtr | null): BpfProgramPtr | null
  bpf_object__find_map_by_name(obj: BpfObjectPtr, name: string): BpfMapPtr | null
  bpf_object__next_map(obj: BpfObjectPtr, prev: BpfMapPtr | null): BpfMapPtr | null
  bpf_object__btf(obj: BpfObjectPtr): BtfPtr | null

  bpf_program__name(prog: BpfProgramPtr): string
  bpf_program__section_name(prog: BpfProgramPtr): string
  bpf_program__fd(prog: BpfProgramPtr): number
  bpf_program__type(prog: BpfProgramPtr): number
  bpf_program__set_log_buf(prog: BpfProgramPtr, buf: Buffer | null, size: number): number
  bpf_program__set_log_level(prog: BpfProgramPtr, level: number): number
  bpf_program__log_level(prog: BpfProgramPtr): number
  bpf_program__set_autoload(prog: BpfProgramPtr, autoload: boolean): number

  /** libbpf's static linker (what `bpftool gen object` runs): objects in, one object file out. */
  bpf_linker__new(filename: string, opts: null): BpfLinkerPtr | null
  bpf_linker__add_file(linker: BpfLinkerPtr, filename: string, opts: null): number
  bpf_linker__finalize(linker: BpfLinkerPtr): number
  bpf_linker__free(linker: BpfLinkerPtr): void

  bpf_map__name(map: BpfMapPtr): string
  bpf_map__fd(map: BpfMapPtr): number
  bpf_map__type(map: BpfMapPtr): number
  bpf_map__key_size(map: BpfMapPtr): number
  bpf_map__value_size(map: BpfMapPtr): number
  bpf_map__max_entries(map: BpfMapPtr): number
  bpf_map__set_max_entries(map: BpfMapPtr, maxEntries: number): number
  bpf_map__map_flags(map: BpfMapPtr): number
  bpf_map__is_internal(map: BpfMapPtr): boolean
  bpf_map__btf_key_type_id(map: BpfMapPtr): number
  bpf_map__btf_value_type_id(map: BpfMapPtr): number
  /** size receives the bytes of the region; returns a pointer into libbpf's copy of the section (writable before load). */
  bpf_map__initial_value(map: BpfMapPtr, size: [number]): RawPtr | null
  /** Use an existing map (e.g. a pinned one) instead of creating this one at load. */
  bpf_map__reuse_fd(map: BpfMapPtr, fd: number): number

  btf__new_empty(): BtfPtr | null
  btf__free(btf: BtfPtr): void
  btf__fd(btf: BtfPtr): number
  btf__load_into_kernel(btf: BtfPtr): number
  btf__load_from_kernel_by_id(id: number): BtfPtr | null
  btf__type_cnt(btf: BtfPtr): number
  btf__find_by_name_kind(btf: BtfPtr, name: string, kind: number): number
  btf__type_by_id(btf: BtfPtr, id: number): RawPtr | null
  btf__name_by_offset(btf: BtfPtr, offset: number): string | null
  btf__resolve_size(btf: BtfPtr, id: number): bigint | number
  btf__resolve_type(btf: BtfPtr, id: number): number
  btf__add_int(btf: BtfPtr, name: string, size: number, encoding: number): number
  btf__add_struct(btf: BtfPtr, name: string, size: number): number
  btf__add_field(btf: BtfPtr, name: string, typeId: number, bitOffset: number, bitSize: number): number
  btf__add_ptr(btf: BtfPtr, refTypeId: number): number
  btf__add_func_proto(btf: BtfPtr, retTypeId: number): number
  btf__add_func_param(btf: BtfPtr, name: string, typeId: number): number
  btf__add_func(btf: BtfPtr, name: string, linkage: number, protoTypeId: number): number

  bpf_link_create(progFd: number, targetFd: number, attachType: number, opts: object | null): number
  bpf_link_detach(linkFd: number): number
  /** Atomically replace the program of a link (BPF_LINK_UPDATE). */
  bpf_link_update(linkFd: number, newProgFd: number, opts: null): number
  bpf_obj_pin(fd: number, path: string): number
  bpf_obj_get(path: string): number
  bpf_obj_get_info_by_fd(fd: number, info: Buffer, infoLen: [number]): number
  bpf_prog_get_fd_by_id(id: number): number
  bpf_map_get_fd_by_id(id: number): number
  bpf_link_get_fd_by_id(id: number): number
  bpf_link_get_next_id(startId: number, nextId: [number]): number

  bpf_map_create(
    mapType: number,
    name: string | null,
    keySize: number,
    valueSize: number,
    maxEntries: number,
    opts: object | null,
  ): number
  bpf_map_lookup_elem(fd: number, key: Uint8Array, value: Uint8Array): number
  bpf_map_update_elem(fd: number, key: Uint8Array, value: Uint8Array, flags: number | bigint): number
  bpf_map_delete_elem(fd: number, key: Uint8Array): number
  bpf_map_get_next_key(fd: number, key: Uint8Array | null, nextKey: Uint8Array): number

  bpf_prog_load(
    progType: number,
    name: string | null,
    license: string,
    insns: Uint8Array,
    insnCount: number,
    opts: object | null,
  ): number
  bpf_prog_test_run_opts(progFd: number, opts: object): number
}

let libbpfInstance: LibBpf | undefined

/** libbpf.so.1, bound on first use. */
export function libbpf(): LibBpf {
  if (libbpfInstance) return libbpfInstance
  const lib = openLibrary(
    'libbpf',
    ['libbpf.so.1', '/usr/lib/x86_64-linux-gnu/libbpf.so.1', '/usr/lib64/libbpf.so.1'],
    'install libbpf 1.x (Debian/Ubuntu: apt install libbpf1; Fedora: dnf install libbpf)',
  )
  const f = (proto: string) => lib.func(proto)
  libbpfInstance = {
    libbpf_version_string: f('const char *libbpf_version_string()'),
    libbpf_strerror: f('int libbpf_strerror(int err, uint8_t *buf, size_t size)'),
    libbpf_set_print: f('kbx_libbpf_print_fn *libbpf_set_print(kbx_libbpf_print_fn *fn)'),
    libbpf_num_possible_cpus: f('int libbpf_num_possible_cpus()'),
    libbpf_probe_bpf_prog_type: f('int libbpf_probe_bpf_prog_type(int prog_type, const void *opts)'),
    libbpf_probe_bpf_map_type: f('int libbpf_probe_bpf_map_type(int map_type, const void *opts)'),
    libbpf_probe_bpf_helper: f('int libbpf_probe_bpf_helper(int prog_type, int helper_id, const void *opts)'),
    libbpf_bpf_prog_type_str: f('const char *libbpf_bpf_prog_type_str(int t)'),
    libbpf_bpf_map_type_str: f('const char *libbpf_bpf_map_type_str(int t)'),
    libbpf_bpf_link_type_str: f('const char *libbpf_bpf_link_type_str(int t)'),
    libbpf_bpf_attach_type_str: f('const char *libbpf_bpf_attach_type_str(int t)'),

    bpf_object__open_file: f('bpf_object *bpf_object__open_file(const char *path, const void *opts)'),
    bpf_object__load: f('int bpf_object__load(bpf_object *obj)'),
    bpf_object__close: f('void bpf_object__close(bpf_object *obj)'),
    bpf_object__name: f('const char *bpf_object__name(const bpf_object *obj)'),
    bpf_object__find_program_by_name: f(
      'bpf_program *bpf_object__find_program_by_name(const bpf_object *obj, const char *name)',
    ),
    bpf_object__next_program: f('bpf_program *bpf_object__next_program(const bpf_object *obj, bpf_program *prev)'),
    bpf_object__find_map_by_name: f('bpf_map *bpf_object__find_map_by_name(const bpf_object *obj, const char *name)'),
    bpf_object__next_map: f('bpf_map *bpf_object__next_map(const bpf_object *obj, const bpf_map *prev)'),
    bpf_object__btf: f('btf *bpf_object__btf(const bpf_object *obj)'),

    bpf_program__name: f('const char *bpf_program__name(const bpf_program *prog)'),
    bpf_program__section_name: f('const char *bpf_program__section_name(const bpf_program *prog)'),
    bpf_program__fd: f('int bpf_program__fd(const bpf_program *prog)'),
    bpf_program__type: f('int bpf_program__type(const bpf_program *prog)'),
    bpf_program__set_log_buf: f('int bpf_program__set_log_buf(bpf_program *prog, uint8_t *log_buf, size_t log_size)'),
    bpf_program__set_log_level: f('int bpf_program__set_log_level(bpf_program *prog, uint32_t log_level)'),
    bpf_program__log_level: f('uint32_t bpf_program__log_level(const bpf_program *prog)'),
    bpf_program__set_autoload: f('int bpf_program__set_autoload(bpf_program *prog, bool autoload)'),

    bpf_map__name: f('const char *bpf_map__name(const bpf_map *map)'),
    bpf_map__fd: f('int bpf_map__fd(const bpf_map *map)'),
    bpf_map__type: f('int bpf_map__type(const bpf_map *map)'),
    bpf_map__key_size: f('uint32_t bpf_map__key_size(const bpf_map *map)'),
    bpf_map__value_size: f('uint32_t bpf_map__value_size(const bpf_map *map)'),
    bpf_map__max_entries: f('uint32_t bpf_map__max_entries(const bpf_map *map)'),
    bpf_map__set_max_entries: f('int bpf_map__set_max_entries(bpf_map *map, uint32_t max_entries)'),
    bpf_map__map_flags: f('uint32_t bpf_map__map_flags(const bpf_map *map)'),
    bpf_map__is_internal: f('bool bpf_map__is_internal(const bpf_map *map)'),
    bpf_map__btf_key_type_id: f('uint32_t bpf_map__btf_key_type_id(const bpf_map *map)'),
    bpf_map__btf_value_type_id: f('uint32_t bpf_map__btf_value_type_id(const bpf_map *map)'),
    bpf_map__reuse_fd: f('int bpf_map__reuse_fd(bpf_map *map, int fd)'),
    bpf_map__initial_value: f('void *bpf_map__initial_value(bpf_map *map, _Out_ size_t *psize)'),

    btf__new_empty: f('btf *btf__new_empty()'),
    btf__free: f('void btf__free(btf *btf)'),
    btf__fd: f('int btf__fd(const btf *btf)'),
    btf__load_into_kernel: f('int btf__load_into_kernel(btf *btf)'),
    btf__load_from_kernel_by_id: f('btf *btf__load_from_kernel_by_id(uint32_t id)'),
    btf__type_cnt: f('uint32_t btf__type_cnt(const btf *btf)'),
    btf__find_by_name_kind: f('int btf__find_by_name_kind(const btf *btf, const char *name, uint32_t kind)'),
    btf__type_by_id: f('const void *btf__type_by_id(const btf *btf, uint32_t id)'),
    btf__name_by_offset: f('const char *btf__name_by_offset(const btf *btf, uint32_t offset)'),
    btf__resolve_size: f('int64_t btf__resolve_size(const btf *btf, uint32_t type_id)'),
    btf__resolve_type: f('int btf__resolve_type(const btf *btf, uint32_t type_id)'),
    btf__add_int: f('int btf__add_int(btf *btf, const char *name, size_t byte_sz, int encoding)'),
    btf__add_struct: f('int btf__add_struct(btf *btf, const char *name, uint32_t sz)'),
    btf__add_field: f(
      'int btf__add_field(btf *btf, const char *name, int field_type_id, uint32_t bit_offset, uint32_t bit_size)',
    ),
    btf__add_ptr: f('int btf__add_ptr(btf *btf, int ref_type_id)'),
    btf__add_func_proto: f('int btf__add_func_proto(btf *btf, int ret_type_id)'),
    btf__add_func_param: f('int btf__add_func_param(btf *btf, const char *name, int type_id)'),
    btf__add_func: f('int btf__add_func(btf *btf, const char *name, int linkage, int proto_type_id)'),

    bpf_link_create: f(
      'int bpf_link_create(int prog_fd, int target_fd, int attach_type, const bpf_link_create_opts *opts)',
    ),
    bpf_link_detach: f('int bpf_link_detach(int link_fd)'),
    bpf_link_update: f('int bpf_link_update(int link_fd, int new_prog_fd, const void *opts)'),
    bpf_linker__new: f('bpf_linker *bpf_linker__new(const char *filename, const void *opts)'),
    bpf_linker__add_file: f('int bpf_linker__add_file(bpf_linker *linker, const char *filename, const void *opts)'),
    bpf_linker__finalize: f('int bpf_linker__finalize(bpf_linker *linker)'),
    bpf_linker__free: f('void bpf_linker__free(bpf_linker *linker)'),
    bpf_obj_pin: f('int bpf_obj_pin(int fd, const char *pathname)'),
    bpf_obj_get: f('int bpf_obj_get(const char *pathname)'),
    bpf_obj_get_info_by_fd: f('int bpf_obj_get_info_by_fd(int bpf_fd, void *info, _Inout_ uint32_t *info_len)'),
    bpf_prog_get_fd_by_id: f('int bpf_prog_get_fd_by_id(uint32_t id)'),
    bpf_map_get_fd_by_id: f('int bpf_map_get_fd_by_id(uint32_t id)'),
    bpf_link_get_fd_by_id: f('int bpf_link_get_fd_by_id(uint32_t id)'),
    bpf_link_get_next_id: f('int bpf_link_get_next_id(uint32_t start_id, _Out_ uint32_t *next_id)'),

    bpf_map_create: f(
      'int bpf_map_create(int map_type, const char *map_name, uint32_t key_size, uint32_t value_size, uint32_t max_entries, const bpf_map_create_opts *opts)',
    ),
    bpf_map_lookup_elem: f('int bpf_map_lookup_elem(int fd, const void *key, void *value)'),
    bpf_map_update_elem: f('int bpf_map_update_elem(int fd, const void *key, const void *value, uint64_t flags)'),
    bpf_map_delete_elem: f('int bpf_map_delete_elem(int fd, const void *key)'),
    bpf_map_get_next_key: f('int bpf_map_get_next_key(int fd, const void *key, void *next_key)'),

    bpf_prog_load: f(
      'int bpf_prog_load(int prog_type, const char *prog_name, const char *license, const void *insns, size_t insn_cnt, const bpf_prog_load_opts *opts)',
    ),
    bpf_prog_test_run_opts: f('int bpf_prog_test_run_opts(int prog_fd, _Inout_ bpf_test_run_opts *opts)'),
  } as LibBpf
  return libbpfInstance
}
