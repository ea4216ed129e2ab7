import t from 'tap'
import * as ffi from './index.js'
import { compareLayouts, type LayoutTable } from './testing/index.js'

/** The AF_XDP core's layouts (native/include/kbx_xsk.h, bpf/include/kbx_xsk_steer.h) against libkbx.ts. */
const xskCore: LayoutTable = {
  headers: ['kbx_xsk.h', 'kbx_xsk_steer.h'],
  structs: [
    { c: 'kbx_desc', type: ffi.KbxDesc },
    { c: 'kbx_tx_batch', type: ffi.KbxTxBatchHeader, cOnly: { descs: 'flexible array after the header, read as KBX_DESC_SIZE-byte descriptors' } },
    { c: 'kbx_umem_config', type: ffi.KbxUmemConfig },
    { c: 'kbx_umem_accounting', type: ffi.KbxUmemAccounting },
    { c: 'kbx_xsk_config', type: ffi.KbxXskConfig },
    { c: 'kbx_xsk_info', type: ffi.KbxXskInfo },
    { c: 'kbx_xsk_stats', type: ffi.KbxXskStats },
    { c: 'kbx_xsk_slot_key', type: ffi.KbxXskSlotKey },
  ],
  constants: [
    { c: 'KBX_POLL_RX', value: ffi.KBX_POLL_RX },
    { c: 'KBX_POLL_TX', value: ffi.KBX_POLL_TX },
    { c: 'sizeof(struct kbx_desc)', value: ffi.KBX_DESC_SIZE },
    { c: 'sizeof(struct kbx_tx_batch)', value: ffi.KBX_TX_BATCH_HEADER_SIZE },
    { c: 'sizeof(struct kbx_xsk_stats)', value: ffi.KBX_XSK_STATS_SIZE },
  ],
  enums: [
    {
      c: 'kbx_frame_state',
      values: {
        KBX_FRAME_FREE: ffi.KBX_FRAME_FREE,
        KBX_FRAME_FILL: ffi.KBX_FRAME_FILL,
        KBX_FRAME_RX: ffi.KBX_FRAME_RX,
        KBX_FRAME_TX: ffi.KBX_FRAME_TX,
        KBX_FRAME_USER: ffi.KBX_FRAME_USER,
      },
      cOnly: ['KBX_FRAME_STATES'],
    },
    {
      c: 'kbx_zero_copy',
      values: { KBX_ZERO_COPY_NEVER: ffi.KBX_ZERO_COPY_NEVER, KBX_ZERO_COPY_TRY: ffi.KBX_ZERO_COPY_TRY, KBX_ZERO_COPY_REQUIRE: ffi.KBX_ZERO_COPY_REQUIRE },
    },
  ],
}

t.test('the AF_XDP core: every struct, member and constant agrees with the headers', async (t) => {
  const report = compareLayouts(xskCore)
  t.same(report.mismatches, [])
  // 8 structs with 2 checks per member (60 members) plus sizes and member lists, 5 constants, 2 enums.
  t.ok(report.checked > 130, `${report.checked} comparisons`)
})

t.test('an xsk_slots key is the struct kbx_xsk_slot_key the BPF programs look up', async (t) => {
  t.same([...ffi.encodeXskSlotKey(7, 3)], [7, 0, 0, 0, 3, 0, 0, 0])
})
