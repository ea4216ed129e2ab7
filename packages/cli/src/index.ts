export { addCommonOptions, commonOptions, latencyFileOptions, OUTPUT_OPTIONS } from './common.js'
export type { CommonOptions, CommonOptionName, LatencyFileOptions, OutputOptions } from './common.js'
export { OptionDecl, OptionTable, optionTable, flagOption, stringOption, valueOption, intOption, scaledIntOption, secondsOption, choiceOption } from './table.js'
export type { OptionsOf, OptionDecls } from './table.js'
export {
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
} from './options.js'
export type { XdpMode, IpPort } from './options.js'
export { requirePrivileges, effectiveCapabilities, missingCapabilities, CAP } from './privileges.js'
export type { PrivilegeOptions, CapabilityName } from './privileges.js'
export { runTool, formatExamples, EXIT_OK, EXIT_FAILURE, EXIT_USAGE } from './run.js'
export type { ToolContext, ToolSpec, Cleanup } from './run.js'
export { runLoop, runBatchLoop, settledOrAborted } from './loop.js'
export type { StopReason, LoopContext, RunLoopOptions, IntervalTick, BatchLoopOptions } from './loop.js'
export { Command, Option } from 'commander'
