import { runTool } from '@kbx/cli'
import { buildFeedCommand, feedOptions, runFeed } from './feed.js'

await runTool({ tool: 'ab-feed', description: 'send a market-data feed on two lines (A/B) with deterministic impairments', privileges: true, options: feedOptions, build: buildFeedCommand, run: runFeed })
