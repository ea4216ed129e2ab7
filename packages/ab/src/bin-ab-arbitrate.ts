import { runTool } from '@kbx/cli'
import { arbitrateOptions, buildArbitrateCommand, runArbitrate } from './arbitrate.js'

await runTool({ tool: 'ab-arbitrate', description: 'arbitrate an A/B market-data feed in XDP', privileges: true, options: arbitrateOptions(), build: buildArbitrateCommand, run: runArbitrate,
  examples: [
    'sudo ab-arbitrate vethA_dst vethB_dst --duration 10 | jq -c \'select(.event=="end") | .data | {delivered, gaps, lost}\'',
    'sudo ab-arbitrate eth1 eth2 --group-a 233.54.12.1:15001 --group-b 233.54.12.2:15001 --out udp:127.0.0.1:9000',
    'sudo ab-arbitrate eth1 eth2 --format moldudp64 --rerequest 10.1.0.5:9000 --order sequence --out shm:feed',
  ],
})
