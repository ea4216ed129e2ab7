// ab-arbitrate's bindings to libkbx.so: the A/B receive loop (native/include/kbx_ab.h, native/src/ab_rx.c)
// and the layouts it shares with TypeScript. The only place @kbx/ab reaches its C; native.unit.test.ts checks
// every struct and constant here against the headers. Control calls take a config struct; the per-batch
// call kbx_ab_rx_poll takes every pointer as a uintptr_t address (~75 ns instead of ~1 µs a call, see
// @kbx/ffi's libkbx.ts).
import { XskError } from '@kbx/errors'
import { kbxAddress, koffi, nativeError, nativeLibraryPath, openLibrary, readU64FieldsBig } from '@kbx/ffi'
import { LogLinearLayout } from '@kbx/stats'

export type KbxAbRxPtr = { readonly __opaque: 'kbx_ab_rx' }

export const KbxAbRxConfig = koffi.struct('kbx_ab_rx_config', {
  format: 'uint32_t',
  window: 'uint32_t',
  max_streams: 'uint32_t',
  batch_size: 'uint32_t',
  reset_distance: 'uint64_t',
  busy_poll_us: 'uint32_t',
  xdp_arrival: 'uint32_t',
})

export interface KbxAbRxConfigValue {
  format: number
  window: number
  max_streams: number
  batch_size: number
  reset_distance: number | bigint
  /** µs to spin on the RX rings before sleeping in poll() (0xffffffff: the whole timeout). */
  busy_poll_us?: number
  /** 1: the XDP program stamps first copies (arrival_stamp) and the loop reads the stamps. */
  xdp_arrival?: number
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
  'gaps_recovered',
  'gaps_unrecovered',
  'recovered_messages',
  'recovery_requests',
  'recovery_answers',
  'recovery_duplicates',
  'recovery_pending',
  'recovery_refused',
  'answers_malformed',
  'holes_expired',
  'late_line_fills',
  'late_line_dropped',
  'held',
  'held_now',
  'holes_skipped',
  'skipped_messages',
  'order_late',
  'hold_overflow',
  'order_unordered',
  'arrival_stamped',
  'arrival_unstamped',
] as const
export type KbxAbRxCounterField = (typeof KBX_AB_RX_COUNTER_FIELDS)[number]
export const KbxAbRxCounters = koffi.struct(
  'kbx_ab_rx_counters',
  Object.fromEntries(KBX_AB_RX_COUNTER_FIELDS.map((name) => [name, 'uint64_t'])),
)
export const KBX_AB_RX_COUNTERS_SIZE = koffi.sizeof(KbxAbRxCounters)


/** struct kbx_ab_rx_counters read from a Buffer the native call filled. */
export function readReceiveCounters(buffer: Buffer): Record<KbxAbRxCounterField, bigint> {
  return readU64FieldsBig(buffer, KBX_AB_RX_COUNTER_FIELDS)
}

/** struct ab_stream_key (bpf/include/ab_format.h): optiq {session_id, 0}, moldudp64 {session[0..8), session[8..10)}. */
export const AbStreamKey = koffi.struct('ab_stream_key', {
  id: 'uint64_t',
  id2: 'uint32_t',
  format: 'uint32_t',
})
export const AB_STREAM_KEY_SIZE = koffi.sizeof(AbStreamKey)

/** struct ab_optiq (bpf/include/ab_format.h, packed): one optiq record, every field little-endian. */
export const AbOptiq = koffi.pack('ab_optiq', {
  version: 'uint8_t',
  optiq_length: 'uint8_t',
  service_id: 'uint16_t',
  session_id: 'uint32_t',
  sequence_number: 'uint32_t',
  timestamp: 'uint64_t',
  message_type: 'uint16_t',
  quantity: 'uint16_t',
  price: 'uint32_t',
  order_id: 'uint64_t',
})

/** struct ab_mold_header (packed): the MoldUDP64 downstream header; sequence and count big-endian. */
export const AbMoldHeader = koffi.pack('ab_mold_header', {
  session: koffi.array('uint8_t', 10),
  sequence: koffi.array('uint8_t', 8),
  count: koffi.array('uint8_t', 2),
})

/** struct kbx_ab_event: a gap, restart or session end of one stream. */
export const KbxAbEvent = koffi.struct('kbx_ab_event', {
  key: koffi.array('uint8_t', AB_STREAM_KEY_SIZE),
  from: 'uint64_t',
  to: 'uint64_t',
  count: 'uint64_t',
  kind: 'uint32_t',
  outcome: 'uint32_t',
  previous: koffi.array('uint8_t', AB_STREAM_KEY_SIZE),
  recovery_ns: 'uint64_t',
})
export const KBX_AB_EVENT_SIZE = koffi.sizeof(KbxAbEvent)

/** enum kbx_ab_event_kind */
export const KBX_AB_EVENT_KIND = { gap: 0, restart: 1, newSession: 2, sessionEnd: 3, sessionClosed: 4 } as const

/** enum kbx_ab_gap_outcome */
export const KBX_AB_GAP_OUTCOME = { unrequested: 0, recovered: 1, lost: 2 } as const

/** KBX_AB_LINE_RECOVERY: a copy record's line for a message recovered from an answer. */
export const KBX_AB_LINE_RECOVERY = 2
/** KBX_AB_RECOVERY_DEFAULT_MAX_REQUEST, KBX_AB_RECOVERY_SLOTS, KBX_AB_RECOVERY_MAX_GAP, KBX_AB_MOLD_REQUEST_SIZE */
export const KBX_AB_RECOVERY_DEFAULT_MAX_REQUEST = 2000
export const KBX_AB_RECOVERY_SLOTS = 1024
export const KBX_AB_RECOVERY_MAX_GAP = 1 << 20
export const KBX_AB_MOLD_REQUEST_SIZE = 20

/** struct kbx_ab_recovery_config (kbx_ab_rx_enable_recovery). */
export const KbxAbRecoveryConfig = koffi.struct('kbx_ab_recovery_config', {
  server_ip: 'uint32_t',
  server_port: 'uint32_t',
  max_request: 'uint32_t',
  retries: 'uint32_t',
  wait_ns: 'uint64_t',
  timeout_ns: 'uint64_t',
})

export interface KbxAbRecoveryConfigValue {
  /** IPv4 in network order, as a u32 read little-endian from the 4 address bytes. */
  server_ip: number
  server_port: number
  max_request: number
  retries: number
  wait_ns: bigint
  timeout_ns: bigint
}

/** Sequence order's hold (native/include/kbx_ab.h): KBX_AB_DEFAULT_HOLD_MAX, KBX_AB_HOLD_FRAME_MAX, held times' histogram. */
export const KBX_AB_DEFAULT_HOLD_MAX = 8192
export const KBX_AB_HOLD_FRAME_MAX = 2048
export const KBX_AB_HOLD_LAYOUT = new LogLinearLayout(4, 40)

export const KbxAbOrderConfig = koffi.struct('kbx_ab_order_config', {
  hold_ns: 'uint64_t',
  hold_max: 'uint32_t',
  reserved: 'uint32_t',
})

export const KbxAbHoldStats = koffi.struct('kbx_ab_hold_stats', {
  count: 'uint64_t',
  min_ns: 'uint64_t',
  max_ns: 'uint64_t',
  sum_ns: 'uint64_t',
  buckets: koffi.array('uint64_t', KBX_AB_HOLD_LAYOUT.length),
})

/** struct kbx_ab_record: the header before each frame in the copy buffer. */
export const KbxAbRecord = koffi.struct('kbx_ab_record', {
  len: 'uint32_t',
  line: 'uint32_t',
  realtime_ns: 'uint64_t',
  sequence: 'uint64_t',
  key: koffi.array('uint8_t', AB_STREAM_KEY_SIZE),
})
export const KBX_AB_RECORD_HEADER_SIZE = koffi.sizeof(KbxAbRecord)

/** Skew histograms of bpf/include/ab_arbitrate.h: kbx_histogram.h buckets of ns below 2^AB_ARRIVAL_TIME_BITS. */
export const AB_SKEW_SUB_BITS = 3
export const AB_ARRIVAL_TIME_BITS = 47
export const AB_SKEW_LAYOUT = new LogLinearLayout(AB_SKEW_SUB_BITS, AB_ARRIVAL_TIME_BITS)
/** struct ab_skew, the value of the XDP program's per-CPU `skew` map. */
export const AbSkew = koffi.struct('ab_skew', {
  max_b_late: 'uint64_t',
  max_a_late: 'uint64_t',
  b_late: koffi.array('uint64_t', AB_SKEW_LAYOUT.length),
  a_late: koffi.array('uint64_t', AB_SKEW_LAYOUT.length),
})

export const KbxAbLimits = koffi.struct('kbx_ab_limits', {
  min_window: 'uint32_t',
  max_window: 'uint32_t',
  default_streams: 'uint32_t',
  max_streams: 'uint32_t',
  default_reset_distance: 'uint64_t',
  max_reset_distance: 'uint64_t',
  default_window: 'uint32_t',
  default_batch: 'uint32_t',
  default_skew_sample: 'uint32_t',
  max_skew_sample: 'uint32_t',
})

/** The limits and defaults of bpf/include/ab_arbitrate.h and kbx_ab.h (struct kbx_ab_limits). */
export interface KbxAbLimitsValue {
  min_window: number
  max_window: number
  default_streams: number
  max_streams: number
  default_reset_distance: bigint
  max_reset_distance: bigint
  default_window: number
  default_batch: number
  default_skew_sample: number
  max_skew_sample: number
}

/** struct kbx_ab_feed_config: how ab-feed's frames are built (native/src/ab_feed.c). */
export const KBX_AB_FEED_MAX_HEADER = 64
export const KbxAbFeedConfig = koffi.struct('kbx_ab_feed_config', {
  format: 'uint32_t',
  streams: 'uint32_t',
  payload_len: 'uint32_t',
  header_len: 'uint32_t',
  l3_offset: 'uint32_t',
  udp_checksum: 'uint32_t',
  start_seq: 'uint64_t',
  restart_seq: 'uint64_t',
  restart_every: 'uint64_t',
  header: koffi.array('uint8_t', KBX_AB_FEED_MAX_HEADER),
})

export interface KbxAbFeedConfigValue {
  format: number
  streams: number
  payload_len: number
  header_len: number
  l3_offset: number
  udp_checksum: number
  start_seq: bigint
  restart_seq: bigint
  restart_every: number
  header: Uint8Array
}

/** struct kbx_ab_feed_line: a line's place in its chunk's plan, read and advanced by kbx_ab_feed_fill. */
export const KbxAbFeedLine = koffi.struct('kbx_ab_feed_line', {
  entries: 'uint64_t',
  due: 'uint64_t',
  first_item: 'uint64_t',
  len: 'uint32_t',
  next: 'uint32_t',
  lag: 'uint32_t',
  up_to: 'uint32_t',
})

/** struct kbx_ab_replay_line (native/include/kbx_ab_replay.h). */
export const KbxAbReplayLine = koffi.struct('kbx_ab_replay_line', {
  frames: 'uint64_t',
  offsets: 'uint64_t',
  entries: 'uint64_t',
  due_ns: 'uint64_t',
  packets: 'uint32_t',
  len: 'uint32_t',
  next: 'uint32_t',
  reserved: 'uint32_t',
  up_to_ns: 'double',
  bytes: 'uint64_t',
})

/** struct kbx_ab_out_counters (native/include/kbx_ab_out.h): one output's counters. */
export const KbxAbOutCounters = koffi.struct('kbx_ab_out_counters', {
  kind: 'uint32_t',
  reserved: 'uint32_t',
  messages: 'uint64_t',
  bytes: 'uint64_t',
  errors: 'uint64_t',
  head: 'uint64_t',
})
export const KBX_AB_OUT_COUNTERS_SIZE = koffi.sizeof(KbxAbOutCounters)
/** enum kbx_ab_out_kind */
export const KBX_AB_OUT_KIND = { udp: 0, shm: 1 } as const
export const KBX_AB_OUT_MAX = 16

/** struct kbx_ab_shm_header (native/include/kbx_ab_shm.h): the ring file's first 128 bytes. */
export const KbxAbShmHeader = koffi.struct('kbx_ab_shm_header', {
  magic: 'uint64_t',
  version: 'uint32_t',
  header_size: 'uint32_t',
  slot_size: 'uint32_t',
  slot_count: 'uint32_t',
  format: 'uint32_t',
  reserved0: 'uint32_t',
  pad0: koffi.array('uint8_t', 32),
  head: 'uint64_t',
  state: 'uint32_t',
  reserved1: 'uint32_t',
  pad1: koffi.array('uint8_t', 48),
})
/** struct kbx_ab_shm_slot: the start of every slot, and of every message kbx_ab_shm_reader_read copies out. */
export const KbxAbShmSlot = koffi.struct('kbx_ab_shm_slot', {
  stamp: 'uint64_t',
  sequence: 'uint64_t',
  arrival_ns: 'uint64_t',
  key: koffi.array('uint8_t', AB_STREAM_KEY_SIZE),
  line: 'uint32_t',
  len: 'uint32_t',
})
export const KBX_AB_SHM_SLOT_SIZE = koffi.sizeof(KbxAbShmSlot)
export const KbxAbShmReaderStatus = koffi.struct('kbx_ab_shm_reader_status', {
  head: 'uint64_t',
  next: 'uint64_t',
  lost: 'uint64_t',
  state: 'uint32_t',
  slot_size: 'uint32_t',
  slot_count: 'uint32_t',
  format: 'uint32_t',
})
export const KBX_AB_SHM_READER_STATUS_SIZE = koffi.sizeof(KbxAbShmReaderStatus)
export const KBX_AB_SHM = { defaultSlots: 16384, defaultSlotSize: 256, running: 1, ended: 2, headerSize: 128, version: 1 } as const

koffi.opaque('kbx_ab_rx')
koffi.opaque('kbx_ab_out')
koffi.opaque('kbx_ab_shm_reader')

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
  /** config: the address of a struct kbx_ab_recovery_config. */
  kbx_ab_rx_enable_recovery(rx: number, config: number): number
  /** request: the 20-byte MoldUDP64 request; out: the answer. Returns its length, 0 for nothing, or -errno. */
  kbx_ab_feed_answer(config: number, request: Uint8Array, len: number, published: number | bigint, history: number | bigint, out: Uint8Array, capacity: number, messages: [number]): number
  /** config: the address of a struct kbx_ab_order_config. */
  kbx_ab_rx_enable_order(rx: number, config: number): number
  kbx_ab_rx_release_held(rx: number): void
  /** out: the address of a struct kbx_ab_hold_stats. */
  kbx_ab_rx_hold_stats(rx: number, out: number): void
  /** out: the address of a struct kbx_ab_hold_stats (XDP arrival to the RX ring). */
  kbx_ab_rx_arrival_stats(rx: number, out: number): void
  kbx_ab_limits(out: Partial<Record<keyof KbxAbLimitsValue, number | bigint>>): void
  /** Addresses of the config, UMEM, TX batch and line. Returns frames appended or -errno. */
  kbx_ab_feed_fill(config: number, umem: number, batch: number, line: number): number
  kbx_ab_feed_frame(config: number, firstItem: number, entry: number, out: Uint8Array, capacity: number): number
  /** Addresses of the UMEM, TX batch and replay line. Returns frames appended or -errno. */
  kbx_ab_replay_fill(umem: number, batch: number, line: number): number
  kbx_ab_rx_set_output(rx: number, out: number): void
  kbx_ab_out_create(out: [unknown]): number
  /** ip and port in network byte order (as uint32/uint16 values). */
  kbx_ab_out_add_udp(out: number, ipBe: number, portBe: number, ifindex: number, ttl: number): number
  kbx_ab_out_add_shm(out: number, name: string, slots: number, slotSize: number, format: number): number
  kbx_ab_out_counters(out: number, counters: number, capacity: number): number
  kbx_ab_out_destroy(out: number): void
  kbx_ab_shm_reader_open(name: string, out: [unknown]): number
  kbx_ab_shm_reader_read(reader: number, buf: number, capacity: number, max: number): number
  kbx_ab_shm_reader_status(reader: number, out: number): void
  kbx_ab_shm_reader_close(reader: number): void
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
    kbx_ab_rx_enable_recovery: lib.func('kbx_ab_rx_enable_recovery', 'int', [p, p]),
    kbx_ab_feed_answer: lib.func('kbx_ab_feed_answer', 'int', [p, 'const uint8_t *', 'uint32_t', 'uint64_t', 'uint64_t', 'uint8_t *', 'uint32_t', koffi.out(koffi.pointer('uint32_t'))]),
    kbx_ab_rx_enable_order: lib.func('kbx_ab_rx_enable_order', 'int', [p, p]),
    kbx_ab_rx_release_held: lib.func('kbx_ab_rx_release_held', 'void', [p]),
    kbx_ab_rx_hold_stats: lib.func('kbx_ab_rx_hold_stats', 'void', [p, p]),
    kbx_ab_rx_arrival_stats: lib.func('kbx_ab_rx_arrival_stats', 'void', [p, p]),
    kbx_ab_limits: lib.func('void kbx_ab_limits(_Out_ kbx_ab_limits *out)'),
    kbx_ab_feed_fill: lib.func('kbx_ab_feed_fill', 'int', [p, p, p, p]),
    kbx_ab_feed_frame: lib.func('kbx_ab_feed_frame', 'int', [p, 'uint64_t', 'uint32_t', 'uint8_t *', 'uint32_t']),
    kbx_ab_replay_fill: lib.func('kbx_ab_replay_fill', 'int', [p, p, p]),
    kbx_ab_rx_set_output: lib.func('kbx_ab_rx_set_output', 'void', [p, p]),
    kbx_ab_out_create: lib.func('int kbx_ab_out_create(_Out_ kbx_ab_out **out)'),
    kbx_ab_out_add_udp: lib.func('kbx_ab_out_add_udp', 'int', [p, 'uint32_t', 'uint16_t', 'uint32_t', 'uint32_t']),
    kbx_ab_out_add_shm: lib.func('kbx_ab_out_add_shm', 'int', [p, 'const char *', 'uint32_t', 'uint32_t', 'uint32_t']),
    kbx_ab_out_counters: lib.func('kbx_ab_out_counters', 'uint32_t', [p, p, 'uint32_t']),
    kbx_ab_out_destroy: lib.func('kbx_ab_out_destroy', 'void', [p]),
    kbx_ab_shm_reader_open: lib.func('int kbx_ab_shm_reader_open(const char *name, _Out_ kbx_ab_shm_reader **out)'),
    kbx_ab_shm_reader_read: lib.func('kbx_ab_shm_reader_read', 'int', [p, p, 'uint32_t', 'uint32_t']),
    kbx_ab_shm_reader_status: lib.func('kbx_ab_shm_reader_status', 'void', [p, p]),
    kbx_ab_shm_reader_close: lib.func('kbx_ab_shm_reader_close', 'void', [p]),
  }
  return instance
}

let limits: KbxAbLimitsValue | undefined

/** kbx_ab_limits(): the limits and defaults as the headers define them, written in one place only. */
export function abLimits(): KbxAbLimitsValue {
  if (limits) return limits
  const out: Partial<Record<keyof KbxAbLimitsValue, number | bigint>> = {}
  libkbxAb().kbx_ab_limits(out)
  const u32 = (name: keyof KbxAbLimitsValue): number => Number(out[name])
  limits = {
    min_window: u32('min_window'),
    max_window: u32('max_window'),
    default_streams: u32('default_streams'),
    max_streams: u32('max_streams'),
    default_reset_distance: BigInt(out.default_reset_distance!),
    max_reset_distance: BigInt(out.max_reset_distance!),
    default_window: u32('default_window'),
    default_batch: u32('default_batch'),
    default_skew_sample: u32('default_skew_sample'),
    max_skew_sample: u32('max_skew_sample'),
  }
  return limits
}

/** Creates a receive loop; its address for the batch calls. */
export function createReceiveLoop(config: KbxAbRxConfigValue): number {
  const out: [KbxAbRxPtr | null] = [null]
  const rc = libkbxAb().kbx_ab_rx_create({ busy_poll_us: 0, xdp_arrival: 0, ...config }, out)
  if (rc < 0 || !out[0]) throw abError(rc, 'create A/B receive loop')
  return Number(koffi.address(out[0]))
}

/** An XskError for a negative errno from the receive loop or the feed: what libkbx recorded about it. */
export function abError(rc: number, fallbackOp: string): XskError {
  return nativeError(rc, fallbackOp, { type: XskError })
}

/** The address of a typed array's elements, for the batch calls' line structs (an empty one: 0, never read). */
export function arrayAddress(a: Uint8Array | Uint32Array | Float64Array): number {
  if (a.length === 0) return 0
  return kbxAddress(Buffer.from(a.buffer, a.byteOffset, a.byteLength))
}
