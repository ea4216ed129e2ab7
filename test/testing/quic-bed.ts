// The quic tests' tools on a bed: quic-sink in a namespace (started once its start event is out, or its
// exit), quic-flood from the root namespace, and the sink's end event.
import { join } from 'node:path'
import { repoRoot } from '@kbx/ffi'
import { followTool, nodeCommand, waitUntil } from '@kbx/testbed'
import type { TestNet, ToolRun } from '@kbx/testbed'

export const QUIC_FLOOD = join(repoRoot, 'packages/quic/src/bin-quic-flood.ts')
export const QUIC_SINK = join(repoRoot, 'packages/quic/src/bin-quic-sink.ts')

/** quic-sink listening on `listen` in netns (interval stats every 0.5 s): once it started, or exited. */
export async function startSink(net: TestNet, netns: string, listen: string, args: string[] = []): Promise<ToolRun> {
  const [cmd, argv] = nodeCommand(QUIC_SINK, ['--listen', listen, '--interval', '0.5', ...args])
  const sink = followTool(net.spawn(netns, cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] }))
  await waitUntil(`the sink on ${listen} to start`, () => sink.events.some((e) => e.event === 'start') || sink.child.exitCode !== null, 60_000)
  return sink
}

/** quic-flood from the root namespace. */
export function runFlood(net: TestNet, args: string[]): ToolRun {
  const [cmd, argv] = nodeCommand(QUIC_FLOOD, args)
  return followTool(net.spawn(null, cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] }))
}

/** Stops the sink (SIGINT); its end event's data. */
export async function stopSink(sink: ToolRun): Promise<Record<string, any> | undefined> {
  sink.child.kill('SIGINT')
  await sink.exited
  return sink.events.find((e) => e.event === 'end')?.data
}
