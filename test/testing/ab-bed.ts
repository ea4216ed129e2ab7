// The ab test bed of test/ab-*.test.ts: unique names, a namespace sending two lines (A and B) into the root
// namespace, where ab-arbitrate runs; and how the tests start the tools on it.
import { join } from 'node:path'
import { repoRoot } from '@kbx/ffi'
import { followTool, nodeCommand, waitUntil } from '@kbx/testbed'
import type { TestNet, ToolRun } from '@kbx/testbed'

export const AB_ARBITRATE = join(repoRoot, 'packages/ab/src/bin-ab-arbitrate.ts')
export const AB_FEED = join(repoRoot, 'packages/ab/src/bin-ab-feed.ts')

/** The `ab` topology: the sending namespace (ns, srcA/srcB) and the lines' ends in the root namespace (dstA/dstB). */
export function abBed(net: TestNet, queues = 1) {
  const ns = net.addNamespace()
  const a = net.addVethPair({ b: { netns: ns }, queues })
  const b = net.addVethPair({ b: { netns: ns }, queues })
  return { ns, dstA: a.a, srcA: a.b, dstB: b.a, srcB: b.b }
}
export type AbBed = ReturnType<typeof abBed>

/** ab-arbitrate on the bed's lines (interval stats every 0.2 s), once its start event is out. */
export async function startArbitrator(net: TestNet, bed: AbBed, args: string[]): Promise<ToolRun> {
  const [cmd, argv] = nodeCommand(AB_ARBITRATE, [bed.dstA.name, bed.dstB.name, '--interval', '0.2', ...args])
  const arb = followTool(net.spawn(null, cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] }))
  await waitUntil('ab-arbitrate to start', () => arb.events.some((e) => e.event === 'start') || arb.child.exitCode !== null)
  if (!arb.events.some((e) => e.event === 'start')) throw new Error(`ab-arbitrate did not start: ${arb.stderr()}`)
  return arb
}

/** ab-feed in the sending namespace, from line A and B's sources, run to its exit. */
export async function runFeedOnBed(net: TestNet, bed: AbBed, args: string[]): Promise<ToolRun> {
  const [cmd, argv] = nodeCommand(AB_FEED, [bed.srcA.name, bed.srcB.name, ...args])
  const run = followTool(net.spawn(bed.ns, cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] }))
  await run.exited
  return run
}
