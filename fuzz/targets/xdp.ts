/**
 * Targets `xdp-<program>`: every XDP program in bpf/ through BPF_PROG_TEST_RUN (one run per frame: the
 * kernel's test run returns one verdict per call; live-frame batches return none) against its reference
 * model in fuzz/reference/<program>.ts. Each input is a few frames on line/interface A (lo, queue 0, with
 * an xsk_slots entry but no socket) or B (another interface of this namespace, no slot). Checked: the
 * verdict of every frame, and the change of every counter of the program's stats map over the input
 * (read before and after: two map reads per input). Program state (streams, LRU) is emptied between
 * inputs. Usage: xdp.ts <program> [engine options].
 */
import { readdirSync, readFileSync } from 'node:fs'
import { BpfObject, raiseMemlockLimit, readCounters, type BpfMap, type BpfProgram } from '@kbx/bpf'
import { bpfObjectPath } from '@kbx/ffi'
import { formatIPv4 } from '@kbx/net'
import { configureGroupTable, fillGroupTable, readChannelCounters } from '@kbx/ab'
import { FuzzFinding, targetMain, type Rng, type TargetHarness } from '../engine.js'
import { add, type Counters, type ReferenceModel } from '../reference/parse.js'
import * as abArbitrate from '../reference/ab_arbitrate.js'
import * as abLruRef from '../reference/ab_lru_ref.js'
import * as fixSteer from '../reference/fix_steer.js'
import * as xdpPass from '../reference/xdp_pass.js'
import * as xskRedirect from '../reference/xdp_xsk_redirect.js'
import { decodeInput, encodeInput, generateFrame, shiftSequence, type FrameInput } from './xdp-frames.js'

const LO = 1
/** Line B: another interface of this namespace (test runs need an existing ifindex with a queue 0). */
function otherIfindex(): number {
  for (const name of readdirSync('/sys/class/net').sort()) {
    if (name === 'lo') continue
    try {
      return Number(readFileSync(`/sys/class/net/${name}/ifindex`, 'utf8'))
    } catch {
      continue
    }
  }
  return LO
}

interface Variant {
  obj: BpfObject
  prog: BpfProgram
  model: ReferenceModel & { keys?(): Buffer[] }
  stateMap?: string
  /** ab_arbitrate's multicast channels: their counters (channel_stats) are checked too, as ch<N>_<field>. */
  channels?: number
}

function open(object: string, rodata: Record<string, number | bigint | Uint8Array>, beforeLoad?: (obj: BpfObject) => void): { obj: BpfObject; prog: BpfProgram } {
  const obj = BpfObject.open(bpfObjectPath(object))
  for (const [name, value] of Object.entries(rodata)) obj.setRodata(name, value)
  beforeLoad?.(obj)
  obj.load()
  try {
    const key = Buffer.alloc(8)
    key.writeUInt32LE(LO, 0)
    obj.map('xsk_slots').update(key, Buffer.alloc(4)) // (lo, queue 0) → slot 0, no socket in xsks
  } catch {
    /* no steering maps (xdp_pass, ab_lru_ref) */
  }
  return { obj, prog: obj.program() }
}

function variantsOf(program: string, lineB: number): () => Variant[] {
  switch (program) {
    case 'xdp_pass':
      return () => [{ ...open('xdp_pass', xdpPass.rodata), model: xdpPass.createModel() }]
    case 'xdp_xsk_redirect':
      return () => xskRedirect.configs.map((c) => ({ ...open('xdp_xsk_redirect', xskRedirect.rodataOf(c)), model: xskRedirect.createModel(c) }))
    case 'fix_steer':
      return () => [{ ...open('fix_steer', fixSteer.rodata), model: fixSteer.createModel() }]
    case 'ab_lru_ref':
      return () => [{ ...open('ab_lru_ref', abLruRef.rodata), model: abLruRef.createModel(), stateMap: 'seen' }]
    case 'ab_arbitrate':
      return () =>
        [
          ...([64n, 4096n] as const).flatMap((window) => (['optiq', 'moldudp64'] as const).map((format) => ({ format, window, resetDistance: 1n << 20n }))),
          // the smallest reset distance allowed (2 · window): restarts, the reserve and the window overlap
          ...(['optiq', 'moldudp64'] as const).map((format) => ({ format, window: 64n, resetDistance: 128n })),
        ].map(({ format, window, resetDistance }) => {
          const config = { format, portMin: 8080, portMax: 8081, window, resetDistance, skewMask: 7n }
          return { ...open('ab_arbitrate', abArbitrate.rodataOf(config, lineB)), model: abArbitrate.createModel(config), stateMap: 'streams' }
        })
        .concat(
          // multicast channels: the group table instead of the port range
          ([['optiq', 64n], ['moldudp64', 4096n]] as const).map(([format, window]) => {
            const config = { format, portMin: 8080, portMax: 8081, window, resetDistance: 1n << 20n, skewMask: 7n, groups: AB_GROUPS }
            const opened = open('ab_arbitrate', abArbitrate.rodataOf(config, lineB), (obj) => configureGroupTable(obj, 2, AB_GROUPS.length))
            const entries = AB_GROUPS.map((g) => ({ ifindex: g.lineB ? lineB : LO, spec: { group: formatIPv4(g.group), port: g.port, ...(g.source ? { source: formatIPv4(g.source) } : {}) }, channel: g.channel, line: g.lineB ? (1 as const) : (0 as const) }))
            fillGroupTable(opened.obj, entries)
            return { ...opened, model: abArbitrate.createModel(config), stateMap: 'streams', channels: 2 }
          }),
        )
    default:
      throw new Error(`no XDP program ${program}`)
  }
}

/** Channel 0: 233.54.12.1:8080 from any source on both lines; channel 1: 232.1.1.1:8081 from 10.0.1.1 on A, 10.0.1.2 on B. */
const AB_GROUPS: abArbitrate.AbGroupEntry[] = [
  { lineB: false, group: 0xe9360c01, source: 0, port: 8080, channel: 0 },
  { lineB: true, group: 0xe9360c01, source: 0, port: 8080, channel: 0 },
  { lineB: false, group: 0xe8010101, source: 0x0a000101, port: 8081, channel: 1 },
  { lineB: true, group: 0xe8010101, source: 0x0a000102, port: 8081, channel: 1 },
]

/** The program's counters, and with channels each channel's as ch<N>_<field>. */
function countersOf(v: Variant, stats: BpfMap | undefined): Counters {
  const out: Counters = stats ? readCounters(stats) : {}
  for (const [i, n] of (v.channels ? readChannelCounters(v.obj, v.channels) : []).entries()) for (const [k, value] of Object.entries(n)) out[`ch${i}_${k}`] = value
  return out
}

function describe(c: Counters): string {
  return Object.entries(c)
    .filter(([, v]) => v !== 0n)
    .map(([k, v]) => `${k}=${v}`)
    .sort()
    .join(' ')
}

export function createXdpHarness(program: string): TargetHarness {
  raiseMemlockLimit()
  const lineB = otherIfindex()
  const build = variantsOf(program, lineB)
  let variants = build()
  const reload = (): void => {
    for (const v of variants) v.obj.close()
    variants = build()
  }
  return {
    maxInputSize: 4096,
    execute(input) {
      const x = decodeInput(input)
      const v = variants[x.variant % variants.length]!
      let stats: ReturnType<typeof v.obj.map> | undefined
      try {
        stats = v.obj.map('stats')
      } catch {
        stats = undefined
      }
      const before = countersOf(v, stats)
      const expected: Counters = {}
      const paths: string[] = []
      try {
        for (const [i, r] of x.frames.entries()) {
          const want = v.model.classify({ frame: r.frame, lineB: r.lineB })
          add(expected, want.counters)
          paths.push(want.path)
          const got = v.prog.testRun({ data: r.frame, ctx: { ingressIfindex: r.lineB ? lineB : LO, rxQueueIndex: 0 } })
          if (got.verdict !== want.verdict) {
            throw new FuzzFinding(`verdict-${want.path}`, `frame ${i} (${r.lineB ? 'B' : 'A'}, ${r.frame.toString('hex')}): program ${got.verdict}, reference ${want.verdict} (${want.path})`)
          }
        }
        if (stats) {
          const after = countersOf(v, stats)
          const delta: Counters = {}
          for (const [k, value] of Object.entries(after)) delta[k] = value - (before[k] ?? 0n)
          if (describe(delta) !== describe(expected)) {
            throw new FuzzFinding('counters', `program ${describe(delta)}; reference ${describe(expected)} (paths ${paths.join(',')})`)
          }
        }
      } catch (e) {
        if (e instanceof FuzzFinding) reload()
        v.model.reset()
        throw e
      }
      if (v.stateMap && v.model.keys) for (const key of v.model.keys()) v.obj.map(v.stateMap).delete(key)
      v.model.reset()
      return `${x.variant % variants.length}:${[...new Set(paths)].sort().join(',')}:${paths.length > 1 ? paths.slice(0, 3).join('>') : ''}`
    },
    mutate(input, rng: Rng) {
      const x: FrameInput = decodeInput(input)
      const frames = x.frames
      const i = rng.int(frames.length)
      switch (rng.int(9)) {
        case 0:
        case 1:
          frames.splice(rng.int(frames.length + 1), 0, { lineB: rng.chance(0.5), frame: generateFrame(rng) })
          break
        case 2:
          if (frames[i]) frames.splice(rng.int(frames.length + 1), 0, { lineB: rng.chance(0.5), frame: Buffer.from(frames[i]!.frame) })
          break
        case 3:
          if (frames[i]) frames[i]!.frame = frames[i]!.frame.subarray(0, 14 + rng.int(frames[i]!.frame.length - 13))
          break
        case 4:
        case 5:
          if (frames[i]) frames.splice(rng.int(frames.length + 1), 0, { lineB: rng.chance(0.5), frame: shiftSequence(frames[i]!.frame, rng) })
          break
        case 6:
          if (frames[i]) frames[i]!.lineB = !frames[i]!.lineB
          break
        case 7:
          if (frames[i]) {
            const f = Buffer.from(frames[i]!.frame)
            const at = rng.int(f.length)
            f[at] = f[at]! ^ (1 << rng.int(8))
            frames[i]!.frame = f
          }
          break
        default:
          if (frames.length > 1 && rng.chance(0.7)) frames.splice(i, 1)
          else x.variant = rng.int(256)
      }
      return encodeInput(x)
    },
    *sweep(corpus) {
      // every truncation of every corpus frame, alone
      for (const input of corpus) {
        const x = decodeInput(input)
        for (const r of x.frames) {
          for (let len = 14; len < r.frame.length; len++) yield encodeInput({ variant: x.variant, frames: [{ lineB: r.lineB, frame: r.frame.subarray(0, len) }] })
        }
      }
    },
  }
}

const PROGRAMS = ['ab_arbitrate', 'fix_steer', 'xdp_xsk_redirect', 'xdp_pass', 'ab_lru_ref']
const USAGE = `usage: xdp.ts <${PROGRAMS.join('|')}> [--seconds N] [--seed S] [--corpus DIR] [--dict FILE] [--artifacts DIR] [--replay FILE]…
  fuzz the program for N seconds (default 10) from the corpus, or replay the given inputs; one JSON line on stdout
`
const [program, ...rest] = process.argv.slice(2)
if (program === '--help' || rest.includes('--help')) {
  process.stdout.write(USAGE)
  process.exit(0)
}
if (!program || !PROGRAMS.includes(program)) {
  process.stderr.write(`xdp.ts: ${program ? `no XDP program ${program}` : 'no program given'}\n${USAGE}`)
  process.exit(2)
}
targetMain(`xdp-${program}`, createXdpHarness(program), rest)
