import { runTool } from '@kbx/cli'
import { buildArbitrateCommand, runArbitrate } from './arbitrate.js'
import type { ArbitrateOptions } from './arbitrate.js'

await runTool<ArbitrateOptions>({ tool: 'ab-arbitrate', description: 'arbitrate an A/B market-data feed in XDP', privileges: true, build: buildArbitrateCommand, run: runArbitrate })
