import { runTool } from '@kbx/cli'
import { buildFeedCommand, feedOptions, runFeed } from './feed.js'

await runTool({ tool: 'ab-feed', description: 'send a market-data feed on two lines (A/B) with deterministic impairments', privileges: true, options: feedOptions, build: buildFeedCommand, run: runFeed,
  examples: [
    'sudo ip netns exec feed ab-feed vethA_src vethB_src --count 20000 --rate 10000 --loss-a 0.02 --loss-b 0.02',
    'sudo ip netns exec feed ab-feed vethA_src vethB_src --format moldudp64 --gap 0.001 --serve-rerequests 10.0.1.1:9000',
    'sudo ip netns exec feed ab-feed vethA_src vethB_src --replay a.pcap --replay b.pcap --speed 2',
  ],
})
