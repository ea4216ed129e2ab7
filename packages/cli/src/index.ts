export {
  addCommonOptions,
  resolveLogLevel,
  parseIntOption,
  parseScaledInt,
  parseSeconds,
  parseChoice,
  parseMode,
  parseLogLevel,
  parseIPv4Option,
  parseIpPort,
  parseIpPortOption,
  parseInterfaceName,
  parseMacOption,
  XDP_MODES,
  OUTPUT_OPTIONS,
} from './options.js'
export type { CommonOptions, CommonOptionName, XdpMode, IpPort } from './options.js'
export { requirePrivileges, effectiveCapabilities, missingCapabilities, CAP } from './privileges.js'
export type { PrivilegeOptions, CapabilityName } from './privileges.js'
export { runTool, EXIT_OK, EXIT_FAILURE, EXIT_USAGE } from './run.js'
export type { ToolContext, ToolSpec, Cleanup } from './run.js'
export { runLoop, runBatchLoop } from './loop.js'
export type { StopReason, LoopContext, RunLoopOptions, IntervalTick, BatchLoopOptions } from './loop.js'
export { Command, Option } from 'commander'
