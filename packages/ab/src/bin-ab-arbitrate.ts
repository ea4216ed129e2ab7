import { runTool } from '@kbx/cli'
import { arbitrateOptions, buildArbitrateCommand, runArbitrate } from './arbitrate.js'

await runTool({ tool: 'ab-arbitrate', description: 'arbitrate an A/B market-data feed in XDP', privileges: true, options: arbitrateOptions(), build: buildArbitrateCommand, run: runArbitrate })
