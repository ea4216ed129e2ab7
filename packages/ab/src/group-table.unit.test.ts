import t from 'tap'
import { compareLayouts } from '@kbx/ffi/testing'
import { AB_MAX_CHANNELS } from './channels.js'
import { AbChannelStats, AbGroup, AbGroupKey, groupKey, groupTableEntries } from './group-table.js'
import { parseGroupSpec } from './channels.js'

t.test('the group table and channel counters agree with bpf/include/ab_groups.h', async (t) => {
  const report = compareLayouts({
    headers: ['ab_groups.h'],
    structs: [
      { c: 'ab_group_key', type: AbGroupKey },
      { c: 'ab_group', type: AbGroup },
      { c: 'ab_channel_stats', type: AbChannelStats },
    ],
    constants: [{ c: 'AB_MAX_CHANNELS', value: AB_MAX_CHANNELS }],
  })
  t.same(report.mismatches, [])
  t.ok(report.checked > 20, `${report.checked} comparisons`)
})

t.test('keys: ifindex, group and source in network order, port in host order', async (t) => {
  t.equal(groupKey(7, parseGroupSpec('233.54.12.1:15001@10.9.9.9', 'x')).toString('hex'), '07000000' + 'e9360c01' + '0a090909' + '993a' + '0000')
  t.equal(groupKey(7, parseGroupSpec('233.54.12.1:15001', 'x')).toString('hex'), '07000000e9360c0100000000993a0000', 'any source: 0')
  const e = groupTableEntries([{ name: 'c', a: parseGroupSpec('233.1.1.1:1', 'x'), b: parseGroupSpec('233.1.1.2:1', 'x') }], 3, 4)
  t.same(e.map((x) => [x.ifindex, x.spec.group, x.channel, x.line]), [[3, '233.1.1.1', 0, 0], [4, '233.1.1.2', 0, 1]], "A's group on line A's interface, B's on B's")
})
