#!/usr/bin/env node
import { runTool } from '@kbx/cli'
import { TOOL, fixTcpOptions, runFixTcp } from './client.js'

await runTool({
  tool: TOOL,
  description: 'A FIX session (FIX.4.4/4.2 initiator) sending limit orders and matching ExecutionReports; JSON stats on stdout',
  options: fixTcpOptions,
  run: runFixTcp,
})
