#!/usr/bin/env node
import { runTool } from '@kbx/cli'
import { TOOL, fixTcpOptions, runFixTcp } from './client.js'

await runTool({
  tool: TOOL,
  description: 'A FIX session (FIX.4.4/4.2 initiator) sending limit orders and matching ExecutionReports; JSON stats on stdout',
  options: fixTcpOptions,
  run: runFixTcp,
  examples: [
    'sudo fix-tcp --iface fix0 --connect 10.0.3.2:9878 --orders 2000 --reset',
    'sudo fix-tcp --iface fix0 --connect 10.0.3.2:9878 --orders 10000 --rate 2000 --io socket --reset',
    'sudo fix-tcp --iface eth1 --connect 192.0.2.10:9878 --sender FIRM1 --target VENUE --credentials ~/.venue-uat --linger 60',
  ],
})
