// The XDP half of multicast channels: ab_arbitrate.bpf.c's `groups` map (which interface, group, port and
// source is which channel's line) and its per-channel counters. Layouts: bpf/include/ab_groups.h.
import type { BpfObject } from '@kbx/bpf'
import { readCounters } from '@kbx/bpf'
import { koffi } from '@kbx/ffi'
import { parseIPv4 } from '@kbx/net'
import { AB_MAX_CHANNELS, formatGroupSpec, type Channel, type GroupSpec } from './channels.js'

/** struct ab_group_key: ifindex, group and source in network order, port in host order. */
export const AbGroupKey = koffi.struct('ab_group_key', {
  ifindex: 'uint32_t',
  group: 'uint32_t',
  source: 'uint32_t',
  port: 'uint16_t',
  pad: 'uint16_t',
})

/** struct ab_group: the channel's index and the line (0 = A, 1 = B). */
export const AbGroup = koffi.struct('ab_group', {
  channel: 'uint32_t',
  line: 'uint32_t',
})

/** Fields of struct ab_channel_stats, all u64, in order. */
export const AB_CHANNEL_STATS_FIELDS = [
  'rx',
  'short_payload',
  'heartbeat',
  'end_of_session',
  'won_a',
  'won_b',
  'dup_a',
  'dup_b',
  'stale_a',
  'stale_b',
  'won_nosocket',
  'stream_table_full',
] as const
export type ChannelCounters = Record<(typeof AB_CHANNEL_STATS_FIELDS)[number], bigint>
export const AbChannelStats = koffi.struct('ab_channel_stats', Object.fromEntries(AB_CHANNEL_STATS_FIELDS.map((f) => [f, 'uint64_t'])))


const KEY = Object.fromEntries((['ifindex', 'group', 'source', 'port'] as const).map((f) => [f, koffi.offsetof(AbGroupKey, f)])) as Record<'ifindex' | 'group' | 'source' | 'port', number>
const VALUE = { channel: koffi.offsetof(AbGroup, 'channel'), line: koffi.offsetof(AbGroup, 'line') }

export interface GroupTableEntry {
  ifindex: number
  spec: GroupSpec
  channel: number
  line: 0 | 1
}

/** Every line of every channel: A's groups on line A's interface, B's on line B's. */
export function groupTableEntries(channels: Channel[], ifindexA: number, ifindexB: number): GroupTableEntry[] {
  return channels.flatMap((c, channel) => [
    { ifindex: ifindexA, spec: c.a, channel, line: 0 as const },
    { ifindex: ifindexB, spec: c.b, channel, line: 1 as const },
  ])
}

/** The map key of an entry (struct ab_group_key). */
export function groupKey(ifindex: number, spec: GroupSpec): Buffer {
  const key = Buffer.alloc(koffi.sizeof(AbGroupKey))
  key.writeUInt32LE(ifindex, KEY.ifindex)
  key.writeUInt32BE(parseIPv4(spec.group), KEY.group)
  key.writeUInt32BE(spec.source === undefined ? 0 : parseIPv4(spec.source), KEY.source)
  key.writeUInt16LE(spec.port, KEY.port)
  return key
}

/** Before load: steer by the group table (not the port range), sized for the channels. */
export function configureGroupTable(obj: BpfObject, channels: number, entries: number): void {
  if (channels < 1 || channels > AB_MAX_CHANNELS) throw new RangeError(`channels: 1..${AB_MAX_CHANNELS}, not ${channels}`)
  obj.setRodata('match_groups', 1)
  obj.setMaxEntries('groups', Math.max(1, entries))
  obj.setMaxEntries('channel_stats', channels)
}

/** After load: one map entry per line of every channel. */
export function fillGroupTable(obj: BpfObject, entries: GroupTableEntry[]): void {
  const map = obj.map('groups')
  for (const e of entries) {
    const value = Buffer.alloc(koffi.sizeof(AbGroup))
    value.writeUInt32LE(e.channel, VALUE.channel)
    value.writeUInt32LE(e.line, VALUE.line)
    map.update(groupKey(e.ifindex, e.spec), value, 'noexist')
  }
}

/** Counters of each channel (struct ab_channel_stats summed over CPUs), by channel index. */
export function readChannelCounters(obj: BpfObject, channels: number): ChannelCounters[] {
  const map = obj.map('channel_stats')
  return Array.from({ length: channels }, (_, i) => readCounters(map, i) as ChannelCounters)
}

/** One channel's counters as reported in the interval and end events. */
export function channelReport(c: Channel, n: ChannelCounters) {
  return {
    name: c.name,
    A: formatGroupSpec(c.a),
    B: formatGroupSpec(c.b),
    // Packets matched by one of the channel's groups, either line.
    packets: n.rx,
    won: { A: n.won_a, B: n.won_b },
    // First copies handed to an AF_XDP socket (won without a socket: passed to the kernel instead).
    steered: n.won_a + n.won_b - n.won_nosocket,
    duplicatesDropped: { A: n.dup_a, B: n.dup_b },
    stale: { A: n.stale_a, B: n.stale_b },
    shortPayload: n.short_payload,
    heartbeat: n.heartbeat,
    endOfSession: n.end_of_session,
    wonNoSocket: n.won_nosocket,
    streamTableFull: n.stream_table_full,
  }
}
