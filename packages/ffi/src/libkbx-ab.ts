import { koffi, nativeLibraryPath, openLibrary } from './load.js'

/**
 * libkbx.so declarations used by @kbx/ab: the A/B arbitration receive loop (native/include/kbx_ab.h,
 * native/src/ab_rx.c). Control calls take a config struct; the per-batch call kbx_ab_rx_poll takes
 * every pointer as a uintptr_t address (see libkbx.ts on why: ~75 ns instead of ~1 µs a call).
 */

export type KbxAbRxPtr = { readonly __opaque: 'kbx_ab_rx' }

export const KbxAbRxConfig = koffi.struct('kbx_ab_rx_config', {
  format: 'uint32_t',
  window: 'uint32_t',
  max_streams: 'uint32_t',
  batch_size: 'uint32_t',
  reset_distance: 'uint64_t',
})

export interface KbxAbRxConfigValue {
  format: number
  window: number
  max_streams: number
  batch_size: number
  reset_distance: number | bigint
}

/** Fields of struct kbx_ab_rx_counters, all u64, in order. */
export const KBX_AB_RX_COUNTER_FIELDS = [
  'delivered',
  'delivered_a',
  'delivered_b',
  'bytes',
  'messages',
  'gaps',
  'gap_messages',
  'late_fills',
  'after_gap',
  'repeated',
  'resets',
  'not_feed',
  'untracked',
  'streams',
  'copy_truncated',
  'batches',
  'first_delivery_ns',
  'last_delivery_ns',
  'sessions_ended',
  'new_sessions',
  'old_epoch',
  'unplaced',
  'end_copies',
  'sessions_closed',
] as const
export const KBX_AB_RX_COUNTERS_SIZE = KBX_AB_RX_COUNTER_FIELDS.length * 8
/** struct kbx_ab_event: key[16], from u64, to u64, count u64, kind u32, reserved u32, previous[16]. */
export const KBX_AB_EVENT_SIZE = 64
/** enum kbx_ab_event_kind */
export const KBX_AB_EVENT_KIND = { gap: 0, restart: 1, newSession: 2, sessionEnd: 3, sessionClosed: 4 } as const

export const KbxAbLimits = koffi.struct('kbx_ab_limits', {
  min_window: 'uint32_t',
  max_window: 'uint32_t',
  default_streams: 'uint32_t',
  max_streams: 'uint32_t',
  default_reset_distance: 'uint64_t',
  max_reset_distance: 'uint64_t',
})

/** The limits of bpf/include/ab_arbitrate.h (kbx_ab_limits). */
export interface KbxAbLimitsValue {
  min_window: number
  max_window: number
  default_streams: number
  max_streams: number
  default_reset_distance: bigint
  max_reset_distance: bigint
}
/** struct kbx_ab_record before the frame: len u32, line u32, realtime_ns u64, sequence u64, key[16]. */
export const KBX_AB_RECORD_HEADER_SIZE = 40

koffi.opaque('kbx_ab_rx')

export interface LibKbxAb {
  kbx_ab_rx_create(config: KbxAbRxConfigValue, out: [KbxAbRxPtr | null]): number
  /** umem: the UMEM's address (Umem.address). */
  kbx_ab_rx_add_socket(rx: number, umem: number, fd: number, line: number): number
  kbx_ab_rx_destroy(rx: number): void
  /** All pointers as addresses; copy = 0 for no copies. Returns gap records written or -errno. */
  kbx_ab_rx_poll(rx: number, gaps: number, gapCapacity: number, copy: number, copyCapacity: number, copiedBytes: number, timeoutMs: number): number
  kbx_ab_rx_flush(rx: number, gaps: number, gapCapacity: number): number
  kbx_ab_rx_counters(rx: number, out: number): void
  /** One frame through the receive path without a socket (tests, fuzzers): 1 for feed data. */
  kbx_ab_rx_ingest(rx: number, frame: Uint8Array, len: number, line: number): number
  kbx_ab_rx_take_events(rx: number, events: number, capacity: number): number
  kbx_ab_limits(out: Partial<KbxAbLimitsValue>): void
}

let instance: LibKbxAb | undefined

/** The A/B receive loop's calls, bound on first use. */
export function libkbxAb(): LibKbxAb {
  if (instance) return instance
  const lib = openLibrary('libkbx', [nativeLibraryPath()], 'build the native helpers first: `make -C native`')
  const p = 'uintptr_t'
  instance = {
    kbx_ab_rx_create: lib.func('int kbx_ab_rx_create(const kbx_ab_rx_config *config, _Out_ kbx_ab_rx **out)'),
    kbx_ab_rx_add_socket: lib.func('kbx_ab_rx_add_socket', 'int', [p, p, 'int', 'uint32_t']),
    kbx_ab_rx_destroy: lib.func('kbx_ab_rx_destroy', 'void', [p]),
    kbx_ab_rx_poll: lib.func('kbx_ab_rx_poll', 'int', [p, p, 'uint32_t', p, 'uint32_t', p, 'int']),
    kbx_ab_rx_flush: lib.func('kbx_ab_rx_flush', 'int', [p, p, 'uint32_t']),
    kbx_ab_rx_counters: lib.func('kbx_ab_rx_counters', 'void', [p, p]),
    kbx_ab_rx_ingest: lib.func('kbx_ab_rx_ingest', 'int', [p, 'const uint8_t *', 'uint32_t', 'uint32_t']),
    kbx_ab_rx_take_events: lib.func('kbx_ab_rx_take_events', 'int', [p, p, 'uint32_t']),
    kbx_ab_limits: lib.func('void kbx_ab_limits(_Out_ kbx_ab_limits *out)'),
  }
  return instance
}
