import { runTool } from '@kbx/cli'
import { buildFeedCommand, runFeed } from './feed.js'
import type { FeedOptions } from './feed.js'

await runTool<FeedOptions>({ tool: 'ab-feed', description: 'send a market-data feed on two lines (A/B) with deterministic impairments', privileges: true, build: buildFeedCommand, run: runFeed })
