// Multicast channels of ab-arbitrate: a channel is a pair of (group, UDP port[, source]) lines, A and B.
// Parsed from --group-a/--group-b (channels ch1, ch2, … in the order given) or from a feeds file
// (feeds.ts). Usage errors only: nothing here touches the kernel.
import { stringOption, valueOption } from '@kbx/cli'
import { UsageError } from '@kbx/errors'
import { formatIPv4, isIPv4, parseIPv4 } from '@kbx/net'
import type { FeedFormat } from './format.js'

/** One line of a channel: a multicast group, the UDP destination port, and for a source-specific join its source. */
export interface GroupSpec {
  group: string
  port: number
  /** Source-specific (IGMPv3 INCLUDE) join when given; any source otherwise. */
  source?: string
}

export interface Channel {
  name: string
  a: GroupSpec
  b: GroupSpec
  /** The channel's feed format, when its definition names one (feeds files do). */
  format?: FeedFormat
}

/** 224.0.0.0/4: IPv4 multicast. */
export function isMulticastIPv4(address: string): boolean {
  return isIPv4(address) && parseIPv4(address) >>> 28 === 0xe
}

/** `GROUP:PORT[@SOURCE]` as text. */
export function formatGroupSpec(g: GroupSpec): string {
  return `${g.group}:${g.port}${g.source === undefined ? '' : `@${g.source}`}`
}

/**
 * `GROUP:PORT[@SOURCE]`: GROUP a multicast address outside 224.0.0.0/24 (local network control, which
 * no feed uses), PORT 1..65535, SOURCE a unicast address. `what` names the option or file line in errors.
 */
export function parseGroupSpec(text: string, what: string): GroupSpec {
  const m = /^([^:@\s]+):([^:@\s]+)(?:@([^:@\s]+))?$/.exec(text.trim())
  const usage = (problem: string, hint?: string) => new UsageError(`${what}: ${problem}`, { op: `parse ${what}`, hint: hint ?? 'write GROUP:PORT or GROUP:PORT@SOURCE, e.g. 233.54.12.1:15001 or 232.1.1.1:15001@10.9.9.9' })
  if (!m) throw usage(`expected GROUP:PORT[@SOURCE], got ${JSON.stringify(text)}`)
  const group = m[1]!
  const portText = m[2]!
  const source = m[3]
  if (!isIPv4(group)) throw usage(`${JSON.stringify(group)} is not an IPv4 address`)
  if (!isMulticastIPv4(group))
    throw usage(`${group} is a unicast address, not a multicast group`, 'a group lies in 224.0.0.0/4 (224.x–239.x); for a unicast feed leave out --group-a/--group-b and use --port')
  if (parseIPv4(group) >>> 8 === 0xe00000) throw usage(`${group} lies in 224.0.0.0/24 (local network control), which carries no feed`)
  if (!/^\d+$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) throw usage(`port ${JSON.stringify(portText)}: expected 1..65535`)
  const spec: GroupSpec = { group: formatIPv4(parseIPv4(group)), port: Number(portText) }
  if (source !== undefined) {
    if (!isIPv4(source)) throw usage(`source ${JSON.stringify(source)} is not an IPv4 address`)
    const s = parseIPv4(source)
    if (s === 0 || s === 0xffffffff || s >>> 28 >= 0xe || s >>> 24 === 127)
      throw usage(`source ${source} is not a unicast host address`, 'the source of a source-specific join is the address the venue sends from')
    spec.source = formatIPv4(s)
  }
  return spec
}

/** Commander accumulator for a repeatable group option. */
export function collectGroupSpec(option: string) {
  return (value: string, previous: GroupSpec[] | undefined): GroupSpec[] => [...(previous ?? []), parseGroupSpec(value, option)]
}

/** The channels of --group-a/--group-b: the n-th A with the n-th B, named ch1, ch2, … */
export function channelsFromOptions(a: GroupSpec[] = [], b: GroupSpec[] = []): Channel[] {
  if (a.length !== b.length)
    throw new UsageError(`--group-a given ${a.length} time(s), --group-b ${b.length}: every channel has a group on each line`, {
      op: 'parse --group-a/--group-b',
      hint: 'give them in pairs: --group-a A1 --group-b B1 --group-a A2 --group-b B2 (the n-th A and the n-th B are one channel), or use --feeds FILE',
    })
  return checkChannels(a.map((ga, i) => ({ name: `ch${i + 1}`, a: ga, b: b[i]! })), '--group-a/--group-b')
}

/** No two lines of the channels may steer the same (line, group, port, source). */
export function checkChannels(channels: Channel[], what: string): Channel[] {
  const seen = new Map<string, string>()
  for (const c of channels) {
    for (const [line, g] of [['A', c.a], ['B', c.b]] as const) {
      const key = `${line} ${formatGroupSpec(g)}`
      const other = seen.get(key)
      if (other !== undefined)
        throw new UsageError(`${what}: ${formatGroupSpec(g)} on line ${line} belongs to both ${other} and ${c.name}`, { op: `parse ${what}`, hint: 'a (group, port, source) of a line belongs to one channel' })
      seen.set(key, c.name)
    }
  }
  return channels
}

/** The one format of the channels: every channel that names one must agree with --format (one run arbitrates one format). */
export function checkChannelFormats(channels: Channel[], format: FeedFormat): void {
  for (const c of channels) {
    if (c.format !== undefined && c.format !== format)
      throw new UsageError(`channel ${c.name} is ${c.format} but the run arbitrates ${format}`, {
        op: 'check channel formats',
        hint: `one ab-arbitrate arbitrates one format: pass --format ${c.format} when every channel is ${c.format}, or run one ab-arbitrate per format`,
      })
  }
}

/** The options that define channels (channelOptions). */
export interface ChannelOptions {
  groupA?: GroupSpec[]
  groupB?: GroupSpec[]
  feeds?: string
}

/** --group-a, --group-b (repeatable) and --feeds, for ab-arbitrate's option table. */
export const channelOptions = {
  groupA: valueOption<GroupSpec[]>('--group-a <group:port[@source]>', 'a multicast group of line A, joined on line A\'s interface; @SOURCE: a source-specific join (repeatable: the n-th --group-a and the n-th --group-b are channel n)', collectGroupSpec('--group-a')),
  groupB: valueOption<GroupSpec[]>('--group-b <group:port[@source]>', 'the group of the same channel on line B (repeatable)', collectGroupSpec('--group-b')),
  feeds: stringOption('--feeds <file>', 'the channels from a file: name, line A GROUP:PORT[@SOURCE], line B GROUP:PORT[@SOURCE], format — one channel a line'),
}

/** The run's channels: none (a unicast feed on --port), from --group-a/--group-b, or from --feeds. */
export function resolveChannels(o: ChannelOptions, readFeeds: (file: string) => Channel[]): Channel[] {
  const fromOptions = (o.groupA?.length ?? 0) + (o.groupB?.length ?? 0) > 0
  if (o.feeds !== undefined && fromOptions)
    throw new UsageError('--feeds and --group-a/--group-b both define channels: give one of them', { op: 'parse --feeds' })
  const channels = o.feeds !== undefined ? readFeeds(o.feeds) : channelsFromOptions(o.groupA, o.groupB)
  if (channels.length > AB_MAX_CHANNELS) throw new UsageError(`${channels.length} channels: one run steers at most ${AB_MAX_CHANNELS}`, { op: 'parse channels' })
  return channels
}

/** Channels one program steers (AB_MAX_CHANNELS of bpf/include/ab_groups.h). */
export const AB_MAX_CHANNELS = 1024
