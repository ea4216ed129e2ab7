import t from 'tap'
import { thrown } from '@kbx/errors/testing'
import { XskError, errnoOf } from '@kbx/errors'
import { compareLayouts, logLinearProbes, type LayoutTable } from '@kbx/ffi/testing'
import { FORMAT_CODE, MOLD_END_OF_SESSION, MOLD_HEADER_SIZE, MOLD_HEARTBEAT, OPTIQ_SIZE } from './format.js'
import * as native from './native.js'
import { END_OF_SESSION } from './plan.js'

/**
 * ab-arbitrate's C↔TS boundary against its headers (native/include/kbx_ab.h, bpf/include/ab_arbitrate.h,
 * ab_format.h, kbx_histogram.h): every struct native.ts mirrors, the enums, the skew histogram's layout
 * against its decoder (@kbx/stats LogLinearLayout), and the limits and defaults — those as
 * libkbx.so's kbx_ab_limits() reports them, which is where the CLI takes them from.
 */
function table(): LayoutTable {
  const limits = native.abLimits()
  return {
    headers: ['kbx_ab.h', 'kbx_ab_replay.h', 'kbx_ab_out.h', 'kbx_ab_shm.h'],
    structs: [
      { c: 'kbx_ab_rx_config', type: native.KbxAbRxConfig },
      { c: 'kbx_ab_limits', type: native.KbxAbLimits },
      { c: 'kbx_ab_rx_counters', type: native.KbxAbRxCounters },
      { c: 'kbx_ab_event', type: native.KbxAbEvent },
      { c: 'kbx_ab_record', type: native.KbxAbRecord },
      { c: 'kbx_ab_recovery_config', type: native.KbxAbRecoveryConfig },
      { c: 'kbx_ab_order_config', type: native.KbxAbOrderConfig },
      { c: 'kbx_ab_hold_stats', type: native.KbxAbHoldStats },
      { c: 'ab_stream_key', type: native.AbStreamKey },
      { c: 'ab_skew', type: native.AbSkew },
      { c: 'ab_optiq', type: native.AbOptiq },
      { c: 'ab_mold_header', type: native.AbMoldHeader },
      { c: 'kbx_ab_feed_config', type: native.KbxAbFeedConfig },
      { c: 'kbx_ab_feed_line', type: native.KbxAbFeedLine },
      { c: 'kbx_ab_replay_line', type: native.KbxAbReplayLine },
      { c: 'kbx_ab_out_counters', type: native.KbxAbOutCounters },
      { c: 'kbx_ab_shm_header', type: native.KbxAbShmHeader },
      { c: 'kbx_ab_shm_slot', type: native.KbxAbShmSlot },
      { c: 'kbx_ab_shm_reader_status', type: native.KbxAbShmReaderStatus },
    ],
    constants: [
      { c: 'AB_MIN_WINDOW', value: limits.min_window },
      { c: 'AB_MAX_WINDOW', value: limits.max_window },
      { c: 'AB_DEFAULT_WINDOW', value: limits.default_window },
      { c: 'AB_DEFAULT_STREAMS', value: limits.default_streams },
      { c: 'AB_MAX_STREAMS_LIMIT', value: limits.max_streams },
      { c: 'AB_DEFAULT_RESET_DISTANCE', value: limits.default_reset_distance },
      { c: 'AB_MAX_RESET_DISTANCE', value: limits.max_reset_distance },
      { c: 'AB_DEFAULT_SKEW_SAMPLE', value: limits.default_skew_sample },
      { c: 'AB_MAX_SKEW_SAMPLE', value: limits.max_skew_sample },
      { c: 'KBX_AB_DEFAULT_BATCH', value: limits.default_batch },
      { c: 'AB_SKEW_BUCKETS', value: native.AB_SKEW_LAYOUT.length },
      ...logLinearProbes('AB_SKEW_SUB_BITS', 'AB_ARRIVAL_TIME_BITS', native.AB_SKEW_LAYOUT),
      { c: 'sizeof(struct kbx_ab_event)', value: native.KBX_AB_EVENT_SIZE },
      { c: 'sizeof(struct kbx_ab_record)', value: native.KBX_AB_RECORD_HEADER_SIZE },
      { c: 'sizeof(struct kbx_ab_rx_counters)', value: native.KBX_AB_RX_COUNTERS_SIZE },
      { c: 'AB_OPTIQ_SIZE', value: OPTIQ_SIZE },
      { c: 'AB_MOLD_HEADER_SIZE', value: MOLD_HEADER_SIZE },
      { c: 'AB_MOLD_HEARTBEAT', value: MOLD_HEARTBEAT },
      { c: 'AB_MOLD_END_OF_SESSION', value: MOLD_END_OF_SESSION },
      { c: 'KBX_AB_FEED_MAX_HEADER', value: native.KBX_AB_FEED_MAX_HEADER },
      { c: 'KBX_AB_FEED_END_OF_SESSION', value: END_OF_SESSION },
      { c: 'KBX_AB_OUT_MAX', value: native.KBX_AB_OUT_MAX },
      { c: 'sizeof(struct kbx_ab_out_counters)', value: native.KBX_AB_OUT_COUNTERS_SIZE },
      { c: 'KBX_AB_SHM_DEFAULT_SLOTS', value: native.KBX_AB_SHM.defaultSlots },
      { c: 'KBX_AB_SHM_DEFAULT_SLOT_SIZE', value: native.KBX_AB_SHM.defaultSlotSize },
      { c: 'KBX_AB_SHM_RUNNING', value: native.KBX_AB_SHM.running },
      { c: 'KBX_AB_SHM_ENDED', value: native.KBX_AB_SHM.ended },
      { c: 'KBX_AB_SHM_HEADER_SIZE', value: native.KBX_AB_SHM.headerSize },
      { c: 'sizeof(struct kbx_ab_shm_header)', value: native.KBX_AB_SHM.headerSize },
      { c: 'KBX_AB_SHM_VERSION', value: native.KBX_AB_SHM.version },
      { c: 'sizeof(struct kbx_ab_shm_slot)', value: native.KBX_AB_SHM_SLOT_SIZE },
      { c: 'KBX_AB_LINE_RECOVERY', value: native.KBX_AB_LINE_RECOVERY },
      { c: 'KBX_AB_RECOVERY_DEFAULT_MAX_REQUEST', value: native.KBX_AB_RECOVERY_DEFAULT_MAX_REQUEST },
      { c: 'KBX_AB_RECOVERY_SLOTS', value: native.KBX_AB_RECOVERY_SLOTS },
      { c: 'KBX_AB_RECOVERY_MAX_GAP', value: native.KBX_AB_RECOVERY_MAX_GAP },
      { c: 'KBX_AB_MOLD_REQUEST_SIZE', value: native.KBX_AB_MOLD_REQUEST_SIZE },
      { c: 'KBX_AB_DEFAULT_HOLD_MAX', value: native.KBX_AB_DEFAULT_HOLD_MAX },
      { c: 'KBX_AB_HOLD_FRAME_MAX', value: native.KBX_AB_HOLD_FRAME_MAX },
      { c: 'KBX_AB_HOLD_BUCKETS', value: native.KBX_AB_HOLD_LAYOUT.length },
      { c: 'KBX_AB_HOLD_SUB_BITS', value: native.KBX_AB_HOLD_LAYOUT.subBits },
      { c: 'KBX_AB_HOLD_VALUE_BITS', value: native.KBX_AB_HOLD_LAYOUT.valueBits },
    ],
    enums: [
      {
        c: 'kbx_ab_event_kind',
        values: {
          KBX_AB_EVENT_GAP: native.KBX_AB_EVENT_KIND.gap,
          KBX_AB_EVENT_RESTART: native.KBX_AB_EVENT_KIND.restart,
          KBX_AB_EVENT_NEW_SESSION: native.KBX_AB_EVENT_KIND.newSession,
          KBX_AB_EVENT_SESSION_END: native.KBX_AB_EVENT_KIND.sessionEnd,
          KBX_AB_EVENT_SESSION_CLOSED: native.KBX_AB_EVENT_KIND.sessionClosed,
        },
      },
      { c: 'kbx_ab_out_kind', values: { KBX_AB_OUT_UDP: native.KBX_AB_OUT_KIND.udp, KBX_AB_OUT_SHM: native.KBX_AB_OUT_KIND.shm } },
      {
        c: 'kbx_ab_gap_outcome',
        values: { KBX_AB_GAP_UNREQUESTED: native.KBX_AB_GAP_OUTCOME.unrequested, KBX_AB_GAP_RECOVERED: native.KBX_AB_GAP_OUTCOME.recovered, KBX_AB_GAP_LOST: native.KBX_AB_GAP_OUTCOME.lost },
      },
      { c: 'ab_format', values: { AB_FORMAT_OPTIQ: FORMAT_CODE.optiq, AB_FORMAT_MOLDUDP64: FORMAT_CODE.moldudp64 } },
    ],
  }
}

t.test('the A/B receive loop: every struct, member, enum and limit agrees with the headers', async (t) => {
  const report = compareLayouts(table())
  t.same(report.mismatches, [])
  t.ok(report.checked > 150, `${report.checked} comparisons`)
})

t.test('the receive loop refuses what the limits refuse, and takes what they allow', async (t) => {
  const limits = native.abLimits()
  const config = { format: 0, window: limits.default_window, max_streams: limits.default_streams, batch_size: limits.default_batch, reset_distance: limits.default_reset_distance }
  native.libkbxAb().kbx_ab_rx_destroy(native.createReceiveLoop(config))
  native.libkbxAb().kbx_ab_rx_destroy(native.createReceiveLoop({ ...config, window: limits.min_window, reset_distance: BigInt(2 * limits.min_window) }))
  for (const bad of [
    { window: limits.min_window / 2 },
    { window: limits.max_window * 2 },
    { max_streams: limits.max_streams + 1 },
    { reset_distance: limits.max_reset_distance + 1n },
    { reset_distance: BigInt(2 * limits.default_window - 1) },
  ]) {
    const what = JSON.stringify(bad, (_, v) => (typeof v === 'bigint' ? `${v}` : v))
    t.throws(() => native.createReceiveLoop({ ...config, ...bad }), XskError, `refused: ${what}`)
    t.equal((thrown(() => native.createReceiveLoop({ ...config, ...bad })) as XskError).errno, errnoOf('EINVAL'), `EINVAL: ${what}`)
  }
})

t.test('a failing receive-loop call surfaces operation, errno and particulars through the one reader', async (t) => {
  const limits = native.abLimits()
  const config = { format: 0, window: 32, max_streams: limits.default_streams, batch_size: limits.default_batch, reset_distance: limits.default_reset_distance }
  const err = thrown(() => native.createReceiveLoop(config)) as XskError
  t.type(err, XskError)
  t.equal(err.op, 'create A/B receive loop')
  t.equal(err.code, 'EINVAL')
  t.match(err.message, /^create A\/B receive loop failed: EINVAL \(window 32 must be a power of two from 64 to \d+/)
  t.ok(err.hint, 'with a hint')
})

