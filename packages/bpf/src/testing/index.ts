import type { BpfMap } from '../map.js'
import { readCounters } from '../map.js'
import type { BpfProgram } from '../object.js'
import type { TestRunOptions, XdpVerdict } from '../testrun.js'

/**
 * Katran-style fixtures for XDP programs: an input frame, the verdict it must get, the frame that must
 * come out (unchanged unless stated) and the counters it must move. Runs through BPF_PROG_TEST_RUN.
 * Import from '@kbx/bpf/testing'.
 */

export interface XdpFixture {
  name: string
  data: Uint8Array
  verdict: XdpVerdict
  /** The frame after the program; default: the input, byte for byte. 'any' skips the check. */
  dataOut?: Uint8Array | 'any'
  /** Context for the run (ingress ifindex / rx queue); default: the kernel's (lo, queue 0). */
  ctx?: TestRunOptions['ctx']
  /**
   * Expected change of every counter in the stats map that moves (counters not listed must not move),
   * on top of FixtureOptions.everyRun.
   */
  counters?: Record<string, bigint>
}

export interface FixtureOptions {
  /** The program's `stats` map (struct of u64 counters, see bpf/include/kbx_stats.h). */
  stats?: BpfMap
  /** Counter changes every frame causes, e.g. f => ({ rx: 1n, rx_bytes: BigInt(f.data.length) }). */
  everyRun?: (fixture: XdpFixture) => Record<string, bigint>
}

/** The subset of a node-tap Test the runner uses. */
export interface FixtureAssert {
  equal(found: unknown, wanted: unknown, message: string): unknown
  same(found: unknown, wanted: unknown, message: string): unknown
}

function counterDelta(before: Record<string, bigint>, after: Record<string, bigint>): Record<string, bigint> {
  const delta: Record<string, bigint> = {}
  for (const [name, value] of Object.entries(after)) {
    const change = value - (before[name] ?? 0n)
    if (change !== 0n) delta[name] = change
  }
  return delta
}

function addCounters(...sets: (Record<string, bigint> | undefined)[]): Record<string, bigint> {
  const total: Record<string, bigint> = {}
  for (const set of sets) {
    for (const [name, value] of Object.entries(set ?? {})) total[name] = (total[name] ?? 0n) + value
  }
  for (const name of Object.keys(total)) if (total[name] === 0n) delete total[name]
  return total
}

/** Run every fixture through the program and assert verdict, output bytes and counter changes. */
export function runFixtures(t: FixtureAssert, program: BpfProgram, fixtures: XdpFixture[], options: FixtureOptions = {}): void {
  for (const fixture of fixtures) {
    const before = options.stats ? readCounters(options.stats) : undefined
    const result = program.testRun({ data: fixture.data, ...(fixture.ctx ? { ctx: fixture.ctx } : {}) })
    t.equal(result.verdict, fixture.verdict, `${fixture.name}: verdict ${fixture.verdict}`)
    if (fixture.dataOut !== 'any') {
      const wanted = Buffer.from(fixture.dataOut ?? fixture.data).toString('hex')
      t.equal(result.dataOut.toString('hex'), wanted, `${fixture.name}: output frame ${fixture.dataOut ? 'as expected' : 'unchanged'}`)
    }
    if (options.stats && before) {
      const delta = counterDelta(before, readCounters(options.stats))
      const wanted = addCounters(options.everyRun?.(fixture), fixture.counters)
      t.same(delta, wanted, `${fixture.name}: counters`)
    }
  }
}
