export { Arbitrator, abPinDirectory, readEvents, streamKeyName, type ArbitratorOptions, type DeliveredBatch, type DeliveredPacket, type Gap, type ReceiveCounters, type StreamEvent } from './arbitrator.js'
export {
  FEED_FORMATS,
  decodePayload,
  encodeFeedPayload,
  encodeMold,
  encodeOptiq,
  parseFormat,
  sequenceBits,
  streamName,
  type Decoded,
  type FeedFormat,
  type MoldPacket,
  type OptiqMessage,
} from './format.js'
export { makePlan, partialTruth, withheldRanges, itemSequence, NO_IMPAIRMENTS, type Plan, type PlanOptions, type LineImpairments } from './plan.js'
export {
  abLimits,
  loadArbitratorProgram,
  readArbitratorCounters,
  readSkew,
  skewSince,
  summarizeSkew,
  type Skew,
  type SkewSummary,
} from './program.js'
export { ReceiveTracker, type ReceiveTrackerOptions } from './tracker.js'
export { checkChannels, formatGroupSpec, isMulticastIPv4, parseGroupSpec, type Channel, type GroupSpec } from './channels.js'
export { parseFeeds, readFeeds } from './feeds.js'
export { configureGroupTable, fillGroupTable, groupKey, readChannelCounters, type ChannelCounters, type GroupTableEntry } from './group-table.js'
export { GroupMemberships, membershipsOf, type Membership } from './multicast.js'
export { NativeOutputs, checkOutputs, describeOutput, parseOutput, type OutputCounters, type OutputSpec } from './outputs.js'
export { ShmReader, type ShmMessage, type ShmStatus } from './shm-reader.js'
