export { BpfObject, BpfProgram } from './object.js'
export { linkObjects } from './linker.js'
export { BpfMap, readCounters, numPossibleCpus, type UpdateFlag } from './map.js'
export {
  XdpLink,
  xdpAttachments,
  xdpAttachmentOf,
  xdpLinksOn,
  detachLinkById,
  type XdpMode,
  type XdpAttachMode,
  type XdpAttachedMode,
  type XdpAttachment,
  type InterfaceXdp,
} from './link.js'
export {
  progInfoById,
  mapInfoById,
  linkInfoById,
  progInfoByFd,
  mapInfoByFd,
  linkInfoByFd,
  linkInfoByPin,
  type ProgInfo,
  type MapInfo,
  type LinkInfo,
} from './info.js'
export {
  xdpVerdictName,
  XDP_ABORTED,
  XDP_DROP,
  XDP_PASS,
  XDP_TX,
  XDP_REDIRECT,
  type XdpVerdict,
  type TestRunOptions,
  type TestRunResult,
} from './testrun.js'
export {
  probeFeatures,
  queueCounts,
  type FeatureReport,
  type FeatureName,
  type FeatureFailure,
  type QueueCounts,
} from './features.js'
export { raiseMemlockLimit, memlockLimit, ensureBpffs, isBpffsMounted, resolveIfindex, ifnameOf, onCpu, unpinPath } from './system.js'
export { onLibbpfMessage, type LibbpfLevel, type LibbpfListener } from './libbpf-log.js'
export type { BtfField } from './btf.js'
