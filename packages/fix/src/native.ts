// fix-tcp's bindings to libkbx.so: the userspace TCP (native/include/kbx_tcp.h), the AF_XDP batch loop and the
// native reflex (native/include/kbx_fix.h). Loading and the AF_XDP core (kbx_xsk, which the
// kbx_fix_xdp_create declaration names) come from @kbx/ffi.
import { koffi, nativeLibraryPath, openLibrary } from '@kbx/ffi'

/** The userspace TCP, for the control path and tests: frames as Buffers. */

export type KbxTcpPtr = { readonly __opaque: 'kbx_tcp' }

export const KbxTcpConfig = koffi.struct('kbx_tcp_config', {
  local_mac: koffi.array('uint8_t', 6),
  remote_mac: koffi.array('uint8_t', 6),
  local_ip: 'uint32_t',
  remote_ip: 'uint32_t',
  local_port: 'uint16_t',
  remote_port: 'uint16_t',
  isn: 'uint32_t',
  mss: 'uint16_t',
  ecn: 'uint16_t',
  rcv_buf: 'uint32_t',
  snd_buf: 'uint32_t',
  rto_min_us: 'uint32_t',
  drop_tx_nth: 'uint32_t',
  keepalive_s: 'uint32_t',
})

export interface KbxTcpConfigValue {
  local_mac: number[]
  remote_mac: number[]
  /** Network byte order, as a u32 read in host (little-endian) order. */
  local_ip: number
  remote_ip: number
  local_port: number
  remote_port: number
  isn: number
  mss: number
  ecn: number
  rcv_buf: number
  snd_buf: number
  rto_min_us: number
  drop_tx_nth: number
  /** 0: no keep-alives. */
  keepalive_s: number
}

/** struct kbx_tcp_stats: all u64, in this order. */
export const KBX_TCP_STATS_FIELDS = [
  'state',
  'close_reason',
  'segs_in',
  'segs_out',
  'bytes_in',
  'bytes_out',
  'retransmits',
  'fast_retransmits',
  'timeouts',
  'dup_acks',
  'ooo_overflows',
  'bad_checksum',
  'malformed',
  'out_of_window',
  'challenge_acks',
  'rst_in',
  'rst_out',
  'ecn_ce_in',
  'ecn_ece_in',
  'cwnd_reductions',
  'arp_replies',
  'not_ours',
  'tx_queue_full',
  'tx_dropped_by_hook',
  'ooo_held',
  'ooo_reassembled_bytes',
  'zero_window_probes',
  'keepalives',
  'cwnd',
  'snd_wnd',
  'srtt_us',
  'rto_us',
  'unacked',
  'unsent',
  'readable',
  'ecn',
] as const

export const KBX_TCP_STATE_NAMES = ['closed', 'syn-sent', 'established', 'fin-wait-1', 'fin-wait-2', 'closing', 'time-wait', 'close-wait', 'last-ack'] as const
export const KBX_TCP_CLOSE_REASONS = ['open', 'closed', 'reset', 'timed-out', 'refused'] as const

export interface LibKbxTcp {
  kbx_tcp_create: (config: KbxTcpConfigValue) => KbxTcpPtr | null
  kbx_tcp_destroy: (c: KbxTcpPtr) => void
  kbx_tcp_connect: (c: KbxTcpPtr, nowNs: bigint) => number
  kbx_tcp_input: (c: KbxTcpPtr, frame: Uint8Array, len: number, nowNs: bigint) => number
  kbx_tcp_poll: (c: KbxTcpPtr, nowNs: bigint) => void
  kbx_tcp_write: (c: KbxTcpPtr, data: Uint8Array, len: number) => number
  kbx_tcp_read: (c: KbxTcpPtr, out: Uint8Array, cap: number) => number
  kbx_tcp_shutdown: (c: KbxTcpPtr) => void
  kbx_tcp_abort: (c: KbxTcpPtr) => void
  kbx_tcp_next_frame: (c: KbxTcpPtr, out: Uint8Array, cap: number) => number
  kbx_tcp_hold_ack: (c: KbxTcpPtr, hold: number) => void
  kbx_tcp_get_stats: (c: KbxTcpPtr, out: Uint8Array) => void
  /** out: struct kbx_tcp_seq, 8 × u32 (KBX_TCP_SEQ_FIELDS). */
  kbx_tcp_get_seq: (c: KbxTcpPtr, out: Uint8Array) => void
}

/** struct kbx_tcp_seq (native/include/kbx_tcp.h), all u32, in this order. */
export const KBX_TCP_SEQ_FIELDS = ['iss', 'snd_una', 'snd_nxt', 'snd_max', 'irs', 'rcv_nxt', 'fin_sent', 'fin_received'] as const

koffi.opaque('kbx_tcp')

let instance: LibKbxTcp | undefined

export function libkbxTcp(): LibKbxTcp {
  if (instance) return instance
  const lib = openLibrary('libkbx', [nativeLibraryPath()], 'build it with `make -C native`')
  instance = {
    kbx_tcp_create: lib.func('kbx_tcp *kbx_tcp_create(const kbx_tcp_config *config)'),
    kbx_tcp_destroy: lib.func('void kbx_tcp_destroy(kbx_tcp *c)'),
    kbx_tcp_connect: lib.func('int kbx_tcp_connect(kbx_tcp *c, uint64_t now_ns)'),
    kbx_tcp_input: lib.func('int kbx_tcp_input(kbx_tcp *c, const uint8_t *frame, uint32_t len, uint64_t now_ns)'),
    kbx_tcp_poll: lib.func('void kbx_tcp_poll(kbx_tcp *c, uint64_t now_ns)'),
    kbx_tcp_write: lib.func('int kbx_tcp_write(kbx_tcp *c, const uint8_t *data, uint32_t len)'),
    kbx_tcp_read: lib.func('int kbx_tcp_read(kbx_tcp *c, _Out_ uint8_t *out, uint32_t cap)'),
    kbx_tcp_shutdown: lib.func('void kbx_tcp_shutdown(kbx_tcp *c)'),
    kbx_tcp_abort: lib.func('void kbx_tcp_abort(kbx_tcp *c)'),
    kbx_tcp_next_frame: lib.func('int kbx_tcp_next_frame(kbx_tcp *c, _Out_ uint8_t *out, uint32_t cap)'),
    kbx_tcp_hold_ack: lib.func('void kbx_tcp_hold_ack(kbx_tcp *c, int hold)'),
    kbx_tcp_get_stats: lib.func('void kbx_tcp_get_stats(kbx_tcp *c, _Out_ uint8_t *out)'),
    kbx_tcp_get_seq: lib.func('void kbx_tcp_get_seq(kbx_tcp *c, _Out_ uint8_t *out)'),
  } as LibKbxTcp
  return instance
}

/**
 * fix-tcp --io xdp: the AF_XDP batch loop around the connection (native/include/kbx_fix.h).
 * kbx_fix_xdp_step is the per-batch call: every pointer as an address (kbxAddress), integers only.
 */
export type KbxFixXdpPtr = { readonly __opaque: 'kbx_fix_xdp' }

export const KbxFixXdpConfig = koffi.struct('kbx_fix_xdp_config', {
  tcp: KbxTcpConfig,
  busy_poll: 'uint32_t',
})

export interface KbxFixXdpConfigValue {
  tcp: KbxTcpConfigValue
  busy_poll: number
}

/** struct kbx_fix_xdp_result: all u32, in this order. */
export const KBX_FIX_XDP_RESULT_FIELDS = ['rx_bytes', 'tx_accepted', 'frames_in', 'frames_out', 'state', 'more', 'timings', 'reflex_sent'] as const
/** struct kbx_fix_xdp_counters: all u64, in this order. */
export const KBX_FIX_XDP_COUNTER_FIELDS = ['steps', 'frames_in', 'frames_out', 'not_ours', 'tx_ring_full', 'tx_errors', 'timings_lost'] as const
/** KBX_FIX_TIMING_RING: samples each internal-timing ring holds (kbx_fix.h). */
export const KBX_FIX_TIMING_RING = 65536
/** The internal-timing rings, in kbx_fix_xdp_drain_timings order. */
export const KBX_FIX_TIMING_NAMES = ['response', 'native', 'kick', 'reflex', 'reflexKick', 'reflexClock', 'reflexTcpIn', 'reflexParse', 'reflexBuild', 'reflexTcpOut', 'reflexSubmit', 'reflexWindow'] as const
/** The reflex's stages (KBX_FIX_REFLEX_STAGES, kbx_fix.h), in ring order: disjoint, they add up to its internal time. */
export const KBX_FIX_REFLEX_STAGE_NAMES = ['clock', 'tcpIn', 'parse', 'build', 'tcpOut', 'submit'] as const

/**
 * struct kbx_fix_reflex_io (kbx_fix.h): the block TypeScript shares with the reflex. Byte offsets; u64 fields
 * little-endian, then four u32, then the message.
 */
export const KBX_FIX_REFLEX_IO = {
  armed: 0,
  clOrdId: 8,
  expectSeq: 16,
  nextSeq: 24,
  nextClOrdId: 32,
  sentSeq: 40,
  sentClOrdId: 48,
  sentNs: 56,
  triggerSeq: 64,
  len: 72,
  timeAt: 76,
  bodyAt: 80,
  bodyEnd: 84,
  msg: 88,
  msgMax: 1024,
  size: 88 + 1024,
} as const
/** struct kbx_fix_reflex_counters: all u64, in this order. */
export const KBX_FIX_REFLEX_COUNTER_FIELDS = ['messages', 'garbage_bytes', 'bad_checksum', 'bad_body_length', 'bad_header', 'armed', 'sent', 'deferred', 'disarmed'] as const

export type KbxFixReflexPtr = { readonly __opaque: 'kbx_fix_reflex' }

export interface LibKbxFixReflex {
  kbx_fix_reflex_create: () => KbxFixReflexPtr | null
  kbx_fix_reflex_destroy: (r: KbxFixReflexPtr) => void
  /** pre, post: bytes; io: the address of a KBX_FIX_REFLEX_IO.size block the caller keeps alive. */
  kbx_fix_reflex_configure: (r: KbxFixReflexPtr, beginString: string, sender: string, target: string, msgType: string, pre: Uint8Array, preLen: number, timeTag: number, post: Uint8Array, postLen: number, io: number) => number
  kbx_fix_reflex_set_header: (r: KbxFixReflexPtr, fields: Uint8Array, len: number) => number
  kbx_fix_reflex_feed_armed: (r: KbxFixReflexPtr, bytes: Uint8Array, len: number) => number
  kbx_fix_reflex_counters: (r: KbxFixReflexPtr, out: Uint8Array) => void
}

koffi.opaque('kbx_fix_reflex')

let reflexInstance: LibKbxFixReflex | undefined

export function libkbxFixReflex(): LibKbxFixReflex {
  if (reflexInstance) return reflexInstance
  const lib = openLibrary('libkbx', [nativeLibraryPath()], 'build it with `make -C native`')
  reflexInstance = {
    kbx_fix_reflex_create: lib.func('kbx_fix_reflex *kbx_fix_reflex_create()'),
    kbx_fix_reflex_destroy: lib.func('void kbx_fix_reflex_destroy(kbx_fix_reflex *r)'),
    kbx_fix_reflex_configure: lib.func('int kbx_fix_reflex_configure(kbx_fix_reflex *r, const char *begin, const char *sender, const char *target, const char *msg_type, const uint8_t *pre, uint32_t pre_len, uint32_t time_tag, const uint8_t *post, uint32_t post_len, uintptr_t io)'),
    kbx_fix_reflex_set_header: lib.func('int kbx_fix_reflex_set_header(kbx_fix_reflex *r, const uint8_t *fields, uint32_t len)'),
    kbx_fix_reflex_feed_armed: lib.func('int kbx_fix_reflex_feed_armed(kbx_fix_reflex *r, const uint8_t *bytes, uint32_t len)'),
    kbx_fix_reflex_counters: lib.func('void kbx_fix_reflex_counters(kbx_fix_reflex *r, _Out_ uint8_t *out)'),
  } as LibKbxFixReflex
  return reflexInstance
}

export interface LibKbxFixXdp {
  /** xsk: the address of an @kbx/xsk socket (XskSocket.address), which stays open until after destroy. */
  kbx_fix_xdp_create: (xsk: number, config: KbxFixXdpConfigValue, out: [KbxFixXdpPtr | null]) => number
  kbx_fix_xdp_destroy: (x: KbxFixXdpPtr) => void
  kbx_fix_xdp_connect: (x: KbxFixXdpPtr) => number
  kbx_fix_xdp_reconnect: (x: KbxFixXdpPtr, jitter: number) => number
  /** x, txData, rxBuf, result: addresses. */
  kbx_fix_xdp_step: (x: number, txData: number, txLen: number, rxBuf: number, rxCap: number, timeoutMs: number, result: number) => number
  kbx_fix_xdp_shutdown: (x: KbxFixXdpPtr) => void
  kbx_fix_xdp_abort: (x: KbxFixXdpPtr) => void
  kbx_fix_xdp_tcp_stats: (x: KbxFixXdpPtr, out: Uint8Array) => void
  kbx_fix_xdp_counters: (x: KbxFixXdpPtr, out: Uint8Array) => void
  /** x, out (KBX_FIX_TIMINGS × cap u32), counts (KBX_FIX_TIMINGS u32): addresses. */
  kbx_fix_xdp_drain_timings: (x: number, out: number, counts: number, cap: number) => void
  kbx_fix_xdp_reflex: (x: KbxFixXdpPtr) => KbxFixReflexPtr
}

koffi.opaque('kbx_fix_xdp')

let xdpInstance: LibKbxFixXdp | undefined

export function libkbxFixXdp(): LibKbxFixXdp {
  if (xdpInstance) return xdpInstance
  const lib = openLibrary('libkbx', [nativeLibraryPath()], 'build it with `make -C native`')
  const p = 'uintptr_t'
  xdpInstance = {
    kbx_fix_xdp_create: lib.func('int kbx_fix_xdp_create(uintptr_t xsk, const kbx_fix_xdp_config *config, _Out_ kbx_fix_xdp **out)'),
    kbx_fix_xdp_destroy: lib.func('void kbx_fix_xdp_destroy(kbx_fix_xdp *x)'),
    kbx_fix_xdp_connect: lib.func('int kbx_fix_xdp_connect(kbx_fix_xdp *x)'),
    kbx_fix_xdp_reconnect: lib.func('int kbx_fix_xdp_reconnect(kbx_fix_xdp *x, uint32_t jitter)'),
    kbx_fix_xdp_step: lib.func('kbx_fix_xdp_step', 'int', [p, p, 'uint32_t', p, 'uint32_t', 'int', p]),
    kbx_fix_xdp_shutdown: lib.func('void kbx_fix_xdp_shutdown(kbx_fix_xdp *x)'),
    kbx_fix_xdp_abort: lib.func('void kbx_fix_xdp_abort(kbx_fix_xdp *x)'),
    kbx_fix_xdp_tcp_stats: lib.func('void kbx_fix_xdp_tcp_stats(kbx_fix_xdp *x, _Out_ uint8_t *out)'),
    kbx_fix_xdp_counters: lib.func('void kbx_fix_xdp_counters(kbx_fix_xdp *x, _Out_ uint8_t *out)'),
    kbx_fix_xdp_drain_timings: lib.func('kbx_fix_xdp_drain_timings', 'void', [p, p, p, 'uint32_t']),
    kbx_fix_xdp_reflex: lib.func('kbx_fix_reflex *kbx_fix_xdp_reflex(kbx_fix_xdp *x)'),
  } as LibKbxFixXdp
  return xdpInstance
}

/** Paced runs (native/src/fix_wait.c, kbx_fix_xdp_set_times): waits that end at a deadline to the microsecond. */
export interface LibKbxFixPacing {
  /** The calling thread's timer slack to 1 ns; 0 or -errno. */
  kbx_fix_precise_timers: () => number
  /** x: the connection; times: the address of 4 u64 (wake_at_ns in; tx_ns, rx_ns out; spin_after_send_ns in), kept until destroy. */
  kbx_fix_xdp_set_times: (x: KbxFixXdpPtr, times: number) => void
  /** Until fd is readable, wakeAtNs (0: none) or timeoutMs; asleep in ppoll() or spinning (busy): 1, 0 or -errno. */
  kbx_fix_wait_fd: (fd: number, wakeAtNs: bigint, timeoutMs: number, busy: number) => number
}

let pacingInstance: LibKbxFixPacing | undefined

export function libkbxFixPacing(): LibKbxFixPacing {
  if (pacingInstance) return pacingInstance
  const lib = openLibrary('libkbx', [nativeLibraryPath()], 'build it with `make -C native`')
  libkbxFixXdp()
  pacingInstance = {
    kbx_fix_precise_timers: lib.func('int kbx_fix_precise_timers()'),
    kbx_fix_xdp_set_times: lib.func('void kbx_fix_xdp_set_times(kbx_fix_xdp *x, uintptr_t times)'),
    kbx_fix_wait_fd: lib.func('int kbx_fix_wait_fd(int fd, uint64_t wake_at_ns, int timeout_ms, int busy)'),
  } as LibKbxFixPacing
  return pacingInstance
}
