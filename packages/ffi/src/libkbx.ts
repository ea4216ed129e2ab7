import { koffi, nativeLibraryPath, openLibrary } from './load.js'

/**
 * libkbx.so (native/, built by `make -C native`) declarations used by @kbx/xsk.
 *
 * Layouts mirror native/include/kbx_xsk.h, which documents every call. Conventions: int-returning calls
 * return a count or 0, or a negative errno; nativeError (native-error.ts) then reads what failed. Descriptor
 * arrays are Buffers of KBX_DESC_SIZE-byte entries, so a whole batch is one call.
 *
 * Two views of the library: `libkbx()` for the control path, with typed handles and structs, and
 * `libkbxBatch()` for the batch path, where every pointer travels as an integer address (uintptr_t; the
 * same registers on LP64). koffi spends about 1 us on a Buffer or handle argument and about 75 ns on a
 * call with integers only. Addresses come from kbxAddress(); the caller keeps the memory alive.
 */

export type KbxUmemPtr = { readonly __opaque: 'kbx_umem' }
export type KbxXskPtr = { readonly __opaque: 'kbx_xsk' }
/** A raw pointer koffi returns for `void *` (pass it to koffi.view). */
export type KbxRawPtr = { readonly __opaque: 'pointer' }

/** struct kbx_desc (the kernel's struct xdp_desc). */
export const KbxDesc = koffi.struct('kbx_desc', {
  addr: 'uint64_t',
  len: 'uint32_t',
  options: 'uint32_t',
})
export const KBX_DESC_SIZE = koffi.sizeof(KbxDesc)

/** struct kbx_tx_batch up to its descriptors (the flexible array `descs` follows). */
export const KbxTxBatchHeader = koffi.struct('kbx_tx_batch', {
  count: 'uint32_t',
  capacity: 'uint32_t',
  sent: 'uint32_t',
  fresh: 'uint32_t',
})
export const KBX_TX_BATCH_HEADER_SIZE = koffi.sizeof(KbxTxBatchHeader)

/** struct kbx_xsk_slot_key of bpf/include/kbx_xsk_steer.h: the key of every program's xsk_slots map. */
export const KbxXskSlotKey = koffi.struct('kbx_xsk_slot_key', {
  ifindex: 'uint32_t',
  queue: 'uint32_t',
})

/** An xsk_slots key: the ingress interface and rx queue whose frames go to a socket. */
export function encodeXskSlotKey(ifindex: number, queue: number): Buffer {
  const key = Buffer.alloc(koffi.sizeof(KbxXskSlotKey))
  key.writeUInt32LE(ifindex, koffi.offsetof(KbxXskSlotKey, 'ifindex'))
  key.writeUInt32LE(queue, koffi.offsetof(KbxXskSlotKey, 'queue'))
  return key
}

/** enum kbx_frame_state */
export const KBX_FRAME_FREE = 0
export const KBX_FRAME_FILL = 1
export const KBX_FRAME_RX = 2
export const KBX_FRAME_TX = 3
export const KBX_FRAME_USER = 4

/** enum kbx_zero_copy */
export const KBX_ZERO_COPY_NEVER = 0
export const KBX_ZERO_COPY_TRY = 1
export const KBX_ZERO_COPY_REQUIRE = 2

export const KBX_POLL_RX = 1
export const KBX_POLL_TX = 2

export const KbxUmemConfig = koffi.struct('kbx_umem_config', {
  frame_count: 'uint32_t',
  frame_size: 'uint32_t',
  headroom: 'uint32_t',
  fill_size: 'uint32_t',
  comp_size: 'uint32_t',
})

export interface KbxUmemConfigValue {
  frame_count: number
  frame_size: number
  headroom: number
  fill_size: number
  comp_size: number
}

export const KbxUmemAccounting = koffi.struct('kbx_umem_accounting', {
  total: 'uint32_t',
  free: 'uint32_t',
  fill: 'uint32_t',
  rx: 'uint32_t',
  tx: 'uint32_t',
  user: 'uint32_t',
  parked: 'uint32_t',
  sockets: 'uint32_t',
})

export interface KbxUmemAccountingValue {
  total: number
  free: number
  fill: number
  rx: number
  tx: number
  user: number
  parked: number
  sockets: number
}

export const KbxXskConfig = koffi.struct('kbx_xsk_config', {
  queue: 'uint32_t',
  rx_size: 'uint32_t',
  tx_size: 'uint32_t',
  fill_frames: 'uint32_t',
  zero_copy: 'uint32_t',
  need_wakeup: 'uint32_t',
  bind_retries: 'uint32_t',
  retry_delay_ms: 'uint32_t',
  tx_budget: 'uint32_t',
})

export interface KbxXskConfigValue {
  queue: number
  rx_size: number
  tx_size: number
  fill_frames: number
  zero_copy: number
  need_wakeup: number
  bind_retries: number
  retry_delay_ms: number
  tx_budget: number
}

export const KbxXskInfo = koffi.struct('kbx_xsk_info', {
  fd: 'int32_t',
  ifindex: 'uint32_t',
  queue: 'uint32_t',
  zero_copy: 'uint32_t',
  need_wakeup: 'uint32_t',
  zero_copy_errno: 'int32_t',
  bind_attempts: 'uint32_t',
  shared: 'uint32_t',
  tx_budget: 'uint32_t',
  fill_frames: 'uint32_t',
})

export interface KbxXskInfoValue {
  fd: number
  ifindex: number
  queue: number
  zero_copy: number
  need_wakeup: number
  zero_copy_errno: number
  bind_attempts: number
  shared: number
  tx_budget: number
  fill_frames: number
}

/** Fields of struct kbx_xsk_stats, all u64, in order: read them from a Buffer of KBX_XSK_STATS_SIZE bytes. */
export const KBX_XSK_STATS_FIELDS = [
  'rx_dropped',
  'rx_invalid_descs',
  'tx_invalid_descs',
  'rx_ring_full',
  'rx_fill_ring_empty_descs',
  'tx_ring_empty_descs',
  'rx_packets',
  'rx_bytes',
  'tx_packets',
  'tx_bytes',
  'tx_completed',
  'kicks',
  'kick_errors',
  'fill_wakeups',
  'polls',
  'anomalies',
] as const
export type KbxXskStatsField = (typeof KBX_XSK_STATS_FIELDS)[number]
export const KbxXskStats = koffi.struct(
  'kbx_xsk_stats',
  Object.fromEntries(KBX_XSK_STATS_FIELDS.map((name) => [name, 'uint64_t'])),
)
export const KBX_XSK_STATS_SIZE = koffi.sizeof(KbxXskStats)

/** KBX_ERROR_OPERATION_MAX, KBX_ERROR_MESSAGE_MAX of native/include/kbx_error.h. */
export const KBX_ERROR_OPERATION_MAX = 64
export const KBX_ERROR_MESSAGE_MAX = 448

/** struct kbx_error (native/include/kbx_error.h): the failure every native module records. */
export const KbxErrorRecord = koffi.struct('kbx_error', {
  errnum: 'int32_t',
  operation: koffi.array('char', KBX_ERROR_OPERATION_MAX, 'String'),
  message: koffi.array('char', KBX_ERROR_MESSAGE_MAX, 'String'),
})

export interface KbxErrorRecordValue {
  errnum: number
  operation: string
  message: string
}

koffi.opaque('kbx_umem')
koffi.opaque('kbx_xsk')

/** The control path (setup, teardown, accounting); the batch calls are in LibKbxBatch. */
export interface LibKbx {
  kbx_address_of(p: Buffer): number | bigint
  /** Copies this thread's failure record into out and forgets it; returns its errno (0: none). */
  kbx_error_take(out: Partial<KbxErrorRecordValue>): number
  kbx_umem_create(config: KbxUmemConfigValue, out: [KbxUmemPtr | null]): number
  kbx_umem_destroy(umem: KbxUmemPtr): void
  kbx_umem_area(umem: KbxUmemPtr): KbxRawPtr
  kbx_umem_area_size(umem: KbxUmemPtr): number | bigint
  kbx_umem_take_area(umem: KbxUmemPtr): KbxRawPtr
  kbx_area_unmap(area: KbxRawPtr, size: number): void
  kbx_umem_get_config(umem: KbxUmemPtr, out: Partial<KbxUmemConfigValue>): void
  /** descs: Buffer of n descriptors. */
  kbx_umem_release(umem: KbxUmemPtr, descs: Buffer, n: number): number
  kbx_umem_accounting(umem: KbxUmemPtr, out: Partial<KbxUmemAccountingValue>): number
  kbx_umem_frame_state(umem: KbxUmemPtr, addr: number): number
  kbx_xsk_create(
    umem: KbxUmemPtr,
    ifname: string,
    config: KbxXskConfigValue,
    out: [KbxXskPtr | null],
    info: Partial<KbxXskInfoValue>,
  ): number
  kbx_xsk_close(xsk: KbxXskPtr): void
  kbx_xsk_fd(xsk: KbxXskPtr): number
  kbx_xsk_probe(ifname: string, queue: number, zeroCopy: number, info: Partial<KbxXskInfoValue>): number
}

let libkbxInstance: LibKbx | undefined
let libkbxLibrary: koffi.IKoffiLib | undefined

/** native/build/libkbx.so (or KBX_NATIVE_LIB), bound on first use. */
export function libkbx(): LibKbx {
  if (libkbxInstance) return libkbxInstance
  const lib = openLibrary(
    'libkbx',
    [nativeLibraryPath()],
    'build the native helpers first: `make -C native` (needs libxdp-dev and libbpf-dev)',
  )
  libkbxLibrary = lib
  libkbxInstance = {
    kbx_address_of: lib.func('uintptr_t kbx_address_of(const void *p)'),
    kbx_error_take: lib.func('int kbx_error_take(_Out_ kbx_error *out)'),
    kbx_umem_create: lib.func('int kbx_umem_create(const kbx_umem_config *config, _Out_ kbx_umem **out)'),
    kbx_umem_destroy: lib.func('void kbx_umem_destroy(kbx_umem *umem)'),
    kbx_umem_area: lib.func('void *kbx_umem_area(const kbx_umem *umem)'),
    kbx_umem_area_size: lib.func('uint64_t kbx_umem_area_size(const kbx_umem *umem)'),
    kbx_umem_take_area: lib.func('void *kbx_umem_take_area(kbx_umem *umem)'),
    kbx_area_unmap: lib.func('void kbx_area_unmap(void *area, uint64_t size)'),
    kbx_umem_get_config: lib.func('void kbx_umem_get_config(const kbx_umem *umem, _Out_ kbx_umem_config *out)'),
    kbx_umem_release: lib.func('int kbx_umem_release(kbx_umem *umem, const void *descs, uint32_t n)'),
    kbx_umem_accounting: lib.func(
      'int kbx_umem_accounting(const kbx_umem *umem, _Out_ kbx_umem_accounting *out)',
    ),
    kbx_umem_frame_state: lib.func('int kbx_umem_frame_state(const kbx_umem *umem, uint64_t addr)'),
    kbx_xsk_create: lib.func(
      'int kbx_xsk_create(kbx_umem *umem, const char *ifname, const kbx_xsk_config *config, _Out_ kbx_xsk **out, _Out_ kbx_xsk_info *info)',
    ),
    kbx_xsk_close: lib.func('void kbx_xsk_close(kbx_xsk *xsk)'),
    kbx_xsk_fd: lib.func('int kbx_xsk_fd(const kbx_xsk *xsk)'),
    kbx_xsk_probe: lib.func(
      'int kbx_xsk_probe(const char *ifname, uint32_t queue, uint32_t zero_copy, _Out_ kbx_xsk_info *info)',
    ),
  }
  return libkbxInstance
}

/**
 * The batch path, pointers as addresses (numbers): umem/xsk are kbxAddress(handle); descs/batch/out are
 * kbxAddress(buffer) of Buffers the caller keeps referenced. descs: KBX_DESC_SIZE-byte descriptors;
 * batch: a struct kbx_tx_batch (KBX_TX_BATCH_HEADER_SIZE-byte header, then descriptors); out: a struct
 * kbx_xsk_stats (KBX_XSK_STATS_SIZE bytes).
 */
export interface LibKbxBatch {
  kbx_umem_alloc(umem: number, descs: number, n: number): number
  kbx_umem_release(umem: number, descs: number, n: number): number
  kbx_xsk_receive(xsk: number, descs: number, max: number, release: number, timeoutMs: number): number
  kbx_xsk_send(xsk: number, descs: number, n: number): number
  kbx_xsk_send_batch(xsk: number, batch: number, refill: number, refillLength: number): number
  kbx_xsk_complete(xsk: number): number
  kbx_xsk_tx_pending(xsk: number): number
  kbx_xsk_rx_available(xsk: number): number
  kbx_xsk_wait(xsk: number, events: number, timeoutMs: number): number
  kbx_xsk_statistics(xsk: number, out: number): number
}

let batchInstance: LibKbxBatch | undefined

/** libkbx's batch calls (see LibKbxBatch), bound on first use. */
export function libkbxBatch(): LibKbxBatch {
  if (batchInstance) return batchInstance
  libkbx()
  const lib = libkbxLibrary!
  const p = 'uintptr_t'
  batchInstance = {
    kbx_umem_alloc: lib.func('kbx_umem_alloc', 'int', [p, p, 'uint32_t']),
    kbx_umem_release: lib.func('kbx_umem_release', 'int', [p, p, 'uint32_t']),
    kbx_xsk_receive: lib.func('kbx_xsk_receive', 'int', [p, p, 'uint32_t', 'uint32_t', 'int']),
    kbx_xsk_send: lib.func('kbx_xsk_send', 'int', [p, p, 'uint32_t']),
    kbx_xsk_send_batch: lib.func('kbx_xsk_send_batch', 'int', [p, p, 'uint32_t', 'uint32_t']),
    kbx_xsk_complete: lib.func('kbx_xsk_complete', 'int', [p]),
    kbx_xsk_tx_pending: lib.func('kbx_xsk_tx_pending', 'uint32_t', [p]),
    kbx_xsk_rx_available: lib.func('kbx_xsk_rx_available', 'uint32_t', [p]),
    kbx_xsk_wait: lib.func('kbx_xsk_wait', 'int', [p, 'uint32_t', 'int']),
    kbx_xsk_statistics: lib.func('kbx_xsk_statistics', 'int', [p, p]),
  }
  return batchInstance
}

/**
 * The address of a handle or of a Buffer's first byte, as a number for LibKbxBatch. A Buffer must own an
 * ArrayBuffer made with `new ArrayBuffer(n)` (V8 never moves those) and stay referenced while in use.
 */
export function kbxAddress(target: KbxUmemPtr | KbxXskPtr | Buffer): number {
  if (Buffer.isBuffer(target)) return Number(libkbx().kbx_address_of(target))
  return Number(koffi.address(target))
}

/** A zero-copy Buffer over native memory (e.g. the UMEM area); valid while that memory stays mapped. */
export function nativeView(pointer: KbxRawPtr, length: number): Buffer {
  return Buffer.from(koffi.view(pointer, length))
}
