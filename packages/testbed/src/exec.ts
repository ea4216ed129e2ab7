import { execFile, execFileSync, spawn } from 'node:child_process'
import type { ChildProcess, SpawnOptions } from 'node:child_process'
import { NetError } from '@kbx/errors'

/** Where each namespace's persistent bpffs is mounted in the root mount namespace. */
export const BPFFS_BASE = '/run/kbx/bpffs'

/** The bpffs path for a namespace (see mountBpffs). */
export function bpffsPathFor(netns: string): string {
  return `${BPFFS_BASE}/${netns}`
}

// `ip netns exec` mounts a fresh sysfs on /sys for every command, so /sys/fs/bpf is empty there.
// This wrapper bind-mounts the namespace's persistent bpffs (or a fresh one) onto /sys/fs/bpf.
const BPFFS_WRAPPER = `dir=$1; shift
if ! mountpoint -q /sys/fs/bpf; then
  if mountpoint -q "$dir"; then mount --bind "$dir" /sys/fs/bpf; else mount -t bpf bpf /sys/fs/bpf; fi
fi
exec "$@"`

export interface InNamespaceOptions {
  /** Mount bpffs on /sys/fs/bpf for the command (inside a namespace only). */
  bpffs?: boolean
}

/** argv that runs `cmd args` inside `netns` (null = the current namespace). */
export function commandIn(netns: string | null, cmd: string, args: readonly string[] = [], options: InNamespaceOptions = {}): [string, string[]] {
  if (netns === null) return [cmd, [...args]]
  if (options.bpffs) {
    return ['ip', ['netns', 'exec', netns, 'sh', '-c', BPFFS_WRAPPER, 'kbx-netns-exec', bpffsPathFor(netns), cmd, ...args]]
  }
  return ['ip', ['netns', 'exec', netns, cmd, ...args]]
}

/** node with tsx and the kbx-source condition, for running TypeScript from the repo in a namespace. */
export function nodeCommand(script: string, args: readonly string[] = []): [string, string[]] {
  return [process.execPath, ['--import', 'tsx', '--conditions=kbx-source', script, ...args]]
}

export interface RunOptions extends InNamespaceOptions {
  input?: string
  timeoutMs?: number
  cwd?: string
}

/** Runs a command to completion (synchronously) and returns its stdout; NetError on failure. */
export function runIn(netns: string | null, cmd: string, args: readonly string[] = [], options: RunOptions = {}): string {
  const [file, argv] = commandIn(netns, cmd, args, options)
  try {
    return execFileSync(file, argv, {
      encoding: 'utf8',
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(options.input === undefined ? {} : { input: options.input }),
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      timeout: options.timeoutMs ?? 30_000,
    })
  } catch (err) {
    const e = err as { stderr?: string; status?: number | null; message: string }
    const where = netns === null ? '' : ` in netns ${netns}`
    const stderr = (e.stderr ?? '').trim()
    throw new NetError(`${[cmd, ...args].join(' ')}${where} failed${e.status == null ? '' : ` (exit ${e.status})`}: ${stderr || e.message}`, {
      op: `${cmd} ${args.join(' ')}`.trim(),
      cause: err,
    })
  }
}

export interface ExecResult {
  /** Exit code; null when killed by a signal. */
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/** Runs a command asynchronously; resolves with its exit status and output (never rejects on a non-zero exit). */
export function execIn(netns: string | null, cmd: string, args: readonly string[] = [], options: RunOptions = {}): Promise<ExecResult> {
  const [file, argv] = commandIn(netns, cmd, args, options)
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      argv,
      { encoding: 'utf8', timeout: options.timeoutMs ?? 30_000, maxBuffer: 64 * 1024 * 1024, ...(options.cwd === undefined ? {} : { cwd: options.cwd }) },
      (err, stdout, stderr) => {
        if (err && typeof (err as NodeJS.ErrnoException).code === 'string') {
          reject(new NetError(`cannot run ${file}: ${err.message}`, { op: `exec ${file}`, cause: err }))
          return
        }
        const code = err ? ((err as { code?: number | null }).code ?? null) : 0
        const signal = err ? ((err as { signal?: NodeJS.Signals | null }).signal ?? null) : null
        resolve({ code: signal === null ? code : null, signal, stdout, stderr })
      },
    )
    if (options.input !== undefined) child.stdin?.end(options.input)
  })
}

/** Starts a command inside `netns` (null = current) and returns the child. */
export function spawnIn(
  netns: string | null,
  cmd: string,
  args: readonly string[] = [],
  options: SpawnOptions & InNamespaceOptions = {},
): ChildProcess {
  const { bpffs, ...spawnOptions } = options
  const [file, argv] = commandIn(netns, cmd, args, { bpffs: bpffs ?? false })
  return spawn(file, argv, spawnOptions)
}
