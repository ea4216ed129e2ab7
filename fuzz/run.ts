/**
 * `pnpm fuzz [target…] [--seconds N] [--seed S] [--keep-going] [--regress] [--list]`: runs the fuzz targets (see
 * fuzz/README.md). Without a target: every target, N seconds each (default 10). libFuzzer targets are
 * native/build/fuzz/<name> (built first with `make -C native fuzz`), run with the committed corpus
 * (read-only; new inputs go to a temporary directory) and dictionary; TypeScript targets run as child
 * processes. --keep-going: libFuzzer in fork mode, carrying on after a crash. --regress replays fuzz/findings/<target>/* instead of fuzzing: each must run clean.
 * stdout: one JSON line per target, {"event":"end","tool":"fuzz","data":{target, executions, coverage,
 * seconds, findings, artifacts, …}}; progress on stderr. Exit 1 when any target reports a finding, 2 on
 * usage errors.
 */
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const fuzzDir = dirname(fileURLToPath(import.meta.url))
const root = dirname(fuzzDir)

interface Target {
  name: string
  engine: 'libfuzzer' | 'ts'
  /** libFuzzer: the binary's name; ts: script and leading arguments. */
  command: string[]
}

const TARGETS: Target[] = [
  { name: 'fix-framer', engine: 'libfuzzer', command: ['fix_framer'] },
  { name: 'tcp-input', engine: 'libfuzzer', command: ['tcp_input'] },
  { name: 'ab-rx', engine: 'libfuzzer', command: ['ab_rx'] },
  { name: 'ab-recover', engine: 'libfuzzer', command: ['ab_recover'] },
  { name: 'frame-parse', engine: 'libfuzzer', command: ['frame_parse'] },
  { name: 'fix-codec', engine: 'ts', command: ['targets/fix-codec.ts'] },
  { name: 'capture', engine: 'ts', command: ['targets/capture.ts'] },
  ...['ab_arbitrate', 'fix_steer', 'xdp_xsk_redirect', 'xdp_pass', 'ab_lru_ref'].map(
    (p): Target => ({ name: `xdp-${p}`, engine: 'ts', command: ['targets/xdp.ts', p] }),
  ),
]

function usage(message?: string): never {
  if (message) process.stderr.write(`${message}\n`)
  process.stderr.write(
    `usage: pnpm fuzz [target…] [--seconds N] [--seed S] [--keep-going] [--regress] [--list]\ntargets: ${TARGETS.map((t) => t.name).join(', ')}\n`,
  )
  process.exit(message ? 2 : 0)
}

const argv = process.argv.slice(2)
let seconds = 10
let seed = Date.now() % 1_000_000_000
let regress = false
let keepGoing = false
const chosen: Target[] = []
for (let i = 0; i < argv.length; i++) {
  const a = argv[i]!
  if (a === '--seconds') {
    seconds = Number(argv[++i])
    if (!Number.isFinite(seconds) || seconds <= 0) usage(`--seconds must be a positive number, not ${argv[i]}`)
  } else if (a === '--seed') {
    seed = Number(argv[++i])
    if (!Number.isInteger(seed)) usage(`--seed must be an integer, not ${argv[i]}`)
  } else if (a === '--regress') regress = true
  else if (a === '--keep-going') keepGoing = true
  else if (a === '--list') {
    for (const t of TARGETS) process.stdout.write(`${JSON.stringify({ event: 'target', tool: 'fuzz', data: { target: t.name, engine: t.engine } })}\n`)
    process.exit(0)
  } else if (a === '--help' || a === '-h') usage()
  else if (a.startsWith('-')) usage(`unknown option: ${a}`)
  else {
    const t = TARGETS.find((x) => x.name === a)
    if (!t) usage(`unknown target: ${a}`)
    chosen.push(t)
  }
}
const targets = chosen.length ? chosen : TARGETS

const build = spawnSync('make', ['-s', '-C', join(root, 'native'), 'fuzz'], { stdio: ['ignore', 2, 2] })
if (build.status !== 0) {
  process.stderr.write('fuzz: `make -C native fuzz` failed (clang and libclang-rt-14-dev: bash scripts/bootstrap.sh build)\n')
  process.exit(1)
}

interface Outcome {
  executions: number
  coverage: Record<string, number>
  findings: number
  artifacts: string[]
  [key: string]: unknown
}

function files(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((f) => !f.startsWith('.') && !f.endsWith('.txt') && !f.endsWith('.md')).sort().map((f) => join(dir, f)) : []
}

function collect(child: ReturnType<typeof spawn>, onStderr: (line: string) => void): Promise<{ code: number; stdout: string }> {
  let stdout = ''
  let pending = ''
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr!.on('data', (d: Buffer) => {
    pending += d.toString()
    const lines = pending.split('\n')
    pending = lines.pop()!
    for (const line of lines) onStderr(line)
  })
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => child.kill(signal))
  return new Promise((resolve) => child.on('close', (code) => resolve({ code: code ?? 1, stdout })))
}

async function runLibFuzzer(t: Target, work: string): Promise<Outcome> {
  const binary = join(root, 'native/build/fuzz', t.command[0]!)
  const dict = join(fuzzDir, 'dict', `${t.name}.dict`)
  const artifacts = join(work, 'artifacts') + '/'
  spawnSync('mkdir', ['-p', artifacts, join(work, 'corpus')])
  const args = regress
    ? ['-runs=1', `-artifact_prefix=${artifacts}`, ...files(join(fuzzDir, 'findings', t.name))]
    : [
        `-max_total_time=${Math.ceil(seconds)}`,
        `-seed=${seed}`,
        `-artifact_prefix=${artifacts}`,
        '-print_final_stats=1',
        '-max_len=4096',
        ...(keepGoing ? ['-fork=1', '-ignore_crashes=1'] : []),
        ...(existsSync(dict) ? [`-dict=${dict}`] : []),
        join(work, 'corpus'),
        join(fuzzDir, 'corpus', t.name),
      ]
  if (regress && args.length === 2) return { executions: 0, coverage: {}, findings: 0, artifacts: [] }
  let cov = 0
  let ft = 0
  let executions = 0
  const reports: string[] = []
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  const { code } = await collect(child, (line) => {
    const m = /^#(\d+):?\s+(?:\w+\s+)?cov: (\d+) ft: (\d+)/.exec(line)
    if (m) {
      executions = Number(m[1])
      cov = Number(m[2])
      ft = Number(m[3])
      if (/DONE|pulse|^#\d+:/.test(line)) process.stderr.write(`${t.name}: ${line}\n`)
      return
    }
    const runs = /^stat::number_of_executed_units: (\d+)/.exec(line)
    if (runs) executions = Number(runs[1])
    if (regress && line.startsWith('Executed ')) executions++
    if (/invariant broken|ERROR: |SUMMARY: |Running: |Executed /.test(line)) {
      reports.push(line)
      process.stderr.write(`${t.name}: ${line}\n`)
    }
  })
  const found = files(artifacts.slice(0, -1)).filter((f) => /\/(crash|leak|timeout|oom|slow-unit)-/.test(f))
  const findings = found.length || (code !== 0 ? 1 : 0)
  // Fork mode keeps crash reports in its job logs: replay the first artifacts for their one-line reason.
  for (const artifact of found.slice(0, 5)) {
    const replay = spawnSync(binary, [artifact], { encoding: 'utf8' })
    const reason = /^.*(invariant broken|ERROR: AddressSanitizer|runtime error|SUMMARY: \w+Sanitizer).*$/m.exec(replay.stderr)
    if (reason && !reports.includes(reason[0])) reports.push(reason[0])
  }
  return { executions, coverage: { cov, ft }, findings, artifacts: found, reports: reports.filter((r) => /invariant|Sanitizer|runtime error/.test(r)) }
}

async function runTs(t: Target, work: string): Promise<Outcome> {
  const [script, ...lead] = t.command
  const common = ['--import', 'tsx', '--conditions=kbx-source', join(fuzzDir, script!), ...lead]
  const args = regress
    ? [...common, ...files(join(fuzzDir, 'findings', t.name)).flatMap((f) => ['--replay', f])]
    : [
        ...common,
        '--seconds', String(seconds),
        '--seed', String(seed),
        '--corpus', join(fuzzDir, 'corpus', t.name),
        '--dict', join(fuzzDir, 'dict', `${t.name}.dict`),
        '--artifacts', join(work, 'artifacts'),
      ]
  if (regress && !args.includes('--replay')) return { executions: 0, coverage: {}, findings: 0, artifacts: [] }
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: root })
  const { code, stdout } = await collect(child, (line) => process.stderr.write(`${line}\n`))
  const last = stdout.trim().split('\n').at(-1)
  if (code !== 0 || !last) return { executions: 0, coverage: {}, findings: 1, artifacts: [], error: `exit ${code}` }
  const r = JSON.parse(last) as Record<string, unknown>
  if (regress) return { executions: Number(r['replayed']), coverage: {}, findings: Number(r['findings']), artifacts: [], failures: r['failures'] }
  return r as unknown as Outcome
}

let total = 0
for (const t of targets) {
  const work = mkdtempSync(join(tmpdir(), `kbx-fuzz-${t.name}-`))
  process.stderr.write(`fuzz: ${t.name} (${t.engine}) ${regress ? 'replaying findings' : `for ${seconds} s`}, work dir ${work}\n`)
  const started = performance.now()
  const outcome = t.engine === 'libfuzzer' ? await runLibFuzzer(t, work) : await runTs(t, work)
  const elapsed = Math.round((performance.now() - started) / 10) / 100
  total += outcome.findings
  const data = { target: t.name, engine: t.engine, mode: regress ? 'regress' : 'fuzz', seed, ...outcome, seconds: elapsed }
  process.stdout.write(`${JSON.stringify({ event: 'end', tool: 'fuzz', data })}\n`)
}
process.exit(total > 0 ? 1 : 0)
