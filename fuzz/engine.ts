/**
 * The mutation loop of the TypeScript targets (fix-codec, xdp-*): inputs from the committed corpus,
 * mutated with the target's dictionary and its own structure-aware mutator, each executed once; an input
 * whose behaviour signature is new joins the in-memory corpus ("coverage" = distinct signatures). A
 * finding is an input whose execution threw FuzzFinding: saved as <artifacts>/<target>-<sha1> (and hex),
 * counted, and the loop goes on (at most maxFindings).
 */
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export class FuzzFinding extends Error {
  constructor(readonly kind: string, detail: string) {
    super(`${kind}: ${detail}`)
  }
}

/** xorshift128+: reproducible runs from --seed. */
export class Rng {
  private a: bigint
  private b: bigint
  constructor(seed: number) {
    this.a = BigInt(seed) * 0x9e3779b97f4a7c15n + 1n
    this.b = (this.a ^ 0xdeadbeefcafebaben) & 0xffffffffffffffffn
  }
  u64(): bigint {
    let x = this.a
    const y = this.b
    this.a = y
    x ^= (x << 23n) & 0xffffffffffffffffn
    this.b = x ^ y ^ (x >> 17n) ^ (y >> 26n)
    return (this.b + y) & 0xffffffffffffffffn
  }
  int(n: number): number {
    return n <= 0 ? 0 : Number(this.u64() % BigInt(n))
  }
  chance(p: number): boolean {
    return this.int(1_000_000) < p * 1_000_000
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!
  }
}

/** libFuzzer/AFL dictionary format: name="value" with \xNN, \\ and \" escapes; # comments. */
export function loadDictionary(path: string): Buffer[] {
  if (!existsSync(path)) return []
  const tokens: Buffer[] = []
  for (const line of readFileSync(path, 'latin1').split('\n')) {
    const m = /^\s*(?:[A-Za-z0-9_]+\s*=\s*)?"(.*)"\s*$/.exec(line)
    if (!m || line.trimStart().startsWith('#')) continue
    const bytes: number[] = []
    const s = m[1]!
    for (let i = 0; i < s.length; i++) {
      if (s[i] === '\\' && s[i + 1] === 'x') {
        bytes.push(parseInt(s.slice(i + 2, i + 4), 16))
        i += 3
      } else if (s[i] === '\\') {
        bytes.push(s.charCodeAt(++i))
      } else bytes.push(s.charCodeAt(i))
    }
    tokens.push(Buffer.from(bytes))
  }
  return tokens
}

export function loadCorpus(dir: string): Buffer[] {
  if (!existsSync(dir)) return []
  return readdirSync(dir)
    .sort()
    .map((file) => readFileSync(join(dir, file)))
}

/** Generic byte-level mutations (the target's own mutator comes on top). */
export function mutateBytes(input: Buffer, rng: Rng, dict: Buffer[], corpus: Buffer[]): Buffer {
  let out = Buffer.from(input)
  const rounds = 1 + rng.int(4)
  for (let r = 0; r < rounds; r++) {
    const at = rng.int(out.length + 1)
    switch (rng.int(8)) {
      case 0:
        if (out.length) {
          const i = rng.int(out.length)
          out[i] = out[i]! ^ (1 << rng.int(8))
        }
        break
      case 1:
        if (out.length) out[rng.int(out.length)] = rng.int(256)
        break
      case 2: {
        const n = rng.int(Math.min(16, out.length - at) + 1)
        out = Buffer.concat([out.subarray(0, at), out.subarray(at + n)])
        break
      }
      case 3:
      case 4:
        if (dict.length) out = Buffer.concat([out.subarray(0, at), rng.pick(dict), out.subarray(at)])
        break
      case 5: {
        const from = rng.int(out.length + 1)
        const n = rng.int(Math.min(64, out.length - from) + 1)
        out = Buffer.concat([out.subarray(0, at), out.subarray(from, from + n), out.subarray(at)])
        break
      }
      case 6:
        if (corpus.length) {
          const other = rng.pick(corpus)
          const from = rng.int(other.length + 1)
          out = Buffer.concat([out.subarray(0, at), other.subarray(from, from + rng.int(256))])
        }
        break
      case 7:
        out = out.subarray(0, at)
        break
    }
  }
  return out
}

export interface TargetHarness {
  /** Executes one input; returns its behaviour signature, throws FuzzFinding when an invariant breaks. */
  execute(input: Buffer): string
  /** Structure-aware mutation (optional); the engine alternates it with mutateBytes. */
  mutate?(input: Buffer, rng: Rng, dict: Buffer[], corpus: Buffer[]): Buffer
  /** Inputs to run once before mutating (e.g. every truncation of every seed). */
  sweep?(corpus: Buffer[]): Iterable<Buffer>
  maxInputSize?: number
}

export interface FuzzOptions {
  target: string
  seconds: number
  corpusDir: string
  dictPath: string
  artifactsDir: string
  seed: number
  maxFindings?: number
  log: (message: string) => void
}

export interface FuzzResult {
  executions: number
  coverage: { signatures: number }
  corpus: number
  seconds: number
  findings: number
  artifacts: string[]
  kinds: string[]
}

export function runHarness(harness: TargetHarness, options: FuzzOptions): FuzzResult {
  const rng = new Rng(options.seed)
  const dict = loadDictionary(options.dictPath)
  const seeds = loadCorpus(options.corpusDir)
  const queue: Buffer[] = seeds.length ? [...seeds] : [Buffer.alloc(0)]
  const signatures = new Set<string>()
  const artifacts: string[] = []
  const kinds = new Set<string>()
  const maxFindings = options.maxFindings ?? 20
  const start = performance.now()
  const deadline = start + options.seconds * 1000
  let executions = 0
  let lastReport = start

  const run = (input: Buffer): void => {
    executions++
    try {
      const sig = harness.execute(input)
      if (!signatures.has(sig)) {
        signatures.add(sig)
        queue.push(input)
      }
    } catch (e) {
      if (!(e instanceof FuzzFinding)) throw e
      if (kinds.has(e.kind) && artifacts.length >= 3) return // the same kind again: counted once it is saved
      kinds.add(e.kind)
      mkdirSync(options.artifactsDir, { recursive: true })
      const path = join(options.artifactsDir, `${options.target}-${createHash('sha1').update(input).digest('hex').slice(0, 16)}`)
      writeFileSync(path, input)
      writeFileSync(`${path}.txt`, `${e.message}\n${input.toString('hex')}\n`)
      artifacts.push(path)
      options.log(`finding: ${e.message} (saved ${path})`)
    }
  }

  for (const input of seeds) run(input)
  for (const input of harness.sweep?.(seeds) ?? []) {
    if (performance.now() > deadline || artifacts.length >= maxFindings) break
    run(input)
  }
  while (performance.now() < deadline && artifacts.length < maxFindings) {
    for (let i = 0; i < 64; i++) {
      const base = rng.pick(queue)
      let input = harness.mutate && rng.chance(0.7) ? harness.mutate(base, rng, dict, queue) : mutateBytes(base, rng, dict, queue)
      if (harness.maxInputSize && input.length > harness.maxInputSize) input = input.subarray(0, harness.maxInputSize)
      run(input)
    }
    const now = performance.now()
    if (now - lastReport > 5000) {
      lastReport = now
      options.log(`#${executions} signatures: ${signatures.size} corpus: ${queue.length} findings: ${artifacts.length}`)
    }
  }
  return {
    executions,
    coverage: { signatures: signatures.size },
    corpus: queue.length,
    seconds: Math.round((performance.now() - start) / 10) / 100,
    findings: artifacts.length,
    artifacts,
    kinds: [...kinds],
  }
}

/** A target file run as a child: `node … target.ts --seconds N --corpus DIR --dict FILE --artifacts DIR --seed S [--replay FILE…]`. */
export function parseTargetArgs(argv: string[]): { options: Omit<FuzzOptions, 'target' | 'log'>; replay: string[]; rest: string[] } {
  const get = (name: string, fallback: string): string => {
    const i = argv.indexOf(name)
    return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback
  }
  const replay: string[] = []
  const rest: string[] = []
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--replay') replay.push(argv[++i]!)
    else if (argv[i]!.startsWith('--')) i++
    else rest.push(argv[i]!)
  }
  return {
    options: {
      seconds: Number(get('--seconds', '10')),
      corpusDir: get('--corpus', ''),
      dictPath: get('--dict', ''),
      artifactsDir: get('--artifacts', '/tmp'),
      seed: Number(get('--seed', String(Date.now() % 1e9))),
    },
    replay,
    rest,
  }
}

/** Child side of a TS target: fuzz (or replay given inputs) and print one JSON result line on stdout. */
export function targetMain(target: string, harness: TargetHarness, argv: string[]): void {
  const { options, replay } = parseTargetArgs(argv)
  const log = (message: string): void => void process.stderr.write(`${target}: ${message}\n`)
  if (replay.length) {
    const failures: string[] = []
    for (const file of replay) {
      try {
        harness.execute(readFileSync(file))
      } catch (e) {
        if (!(e instanceof FuzzFinding)) throw e
        failures.push(`${file}: ${e.message}`)
        log(`reproduces: ${file}: ${e.message}`)
      }
    }
    process.stdout.write(`${JSON.stringify({ replayed: replay.length, findings: failures.length, failures })}\n`)
    return
  }
  const result = runHarness(harness, { ...options, target, log })
  process.stdout.write(`${JSON.stringify(result)}\n`)
}
