import { KbxError } from '@kbx/errors'

export const DISPATCHER_KINDS = ['auto', 'kbx', 'libxdp'] as const
/** `xdp-load load --dispatcher KIND`. */
export type DispatcherKind = (typeof DISPATCHER_KINDS)[number]

/** The program name libxdp gives its dispatcher (xdp-loader's, or kbx's through libxdp). */
export const LIBXDP_DISPATCHER_PROG = 'xdp_dispatcher'

/** What an interface carries before a load. */
export type Carried = 'nothing' | 'kbx-dispatcher' | 'libxdp-dispatcher' | 'other'

/** The libxdp probe's answer, as the choice needs it. */
export interface ProbeVerdict {
  ok: boolean
  op?: string
  errno?: number
  code?: string
  /** libxdp's own words on why. */
  reason?: string
}

export type DispatcherChoice =
  /** One object and no dispatcher asked for: its own bpf_link, as before. */
  | { use: 'direct' }
  /** kbx's dispatcher; `whyNotLibxdp` is the line to log when auto probed libxdp's and it failed. */
  | { use: 'kbx'; whyNotLibxdp?: string }
  | { use: 'libxdp' }
  | { refuse: KbxError }

export interface ChoiceInput {
  iface: string
  /** --dispatcher KIND (a bare --dispatcher is auto); undefined when not given. */
  asked: DispatcherKind | undefined
  /** Several objects, --priority, or --dispatcher: the programs go through a dispatcher. */
  throughDispatcher: boolean
  carried: Carried
  /** Called at most once, only when libxdp's dispatcher is a candidate on a bare interface. */
  probe: () => ProbeVerdict
}

export const LIBXDP_HINT = '--dispatcher kbx (or auto) works without freplace'

function probeFailure(p: ProbeVerdict): string {
  const errno = p.errno === undefined ? '' : `${p.code ?? 'errno'} (errno ${p.errno})`
  return [errno, p.op ? `in ${p.op}` : '', p.reason ? `— libxdp: ${p.reason}` : ''].filter(Boolean).join(' ') || 'libxdp gave no reason'
}

/**
 * Which dispatcher a load uses. auto: an interface's dispatcher is kept (programs are added to it);
 * on a bare interface libxdp's is probed and used when it works, else kbx's (with the reason to log).
 * kbx: never probes; refuses to go on top of libxdp's. libxdp: only libxdp's, an error when it fails.
 */
export function chooseDispatcher(input: ChoiceInput): DispatcherChoice {
  const { iface, carried } = input
  const isDispatcher = carried === 'kbx-dispatcher' || carried === 'libxdp-dispatcher'
  if (!input.throughDispatcher && !isDispatcher) return { use: 'direct' }
  const kind = input.asked ?? 'auto'
  if (carried === 'libxdp-dispatcher') {
    if (kind !== 'kbx') return { use: 'libxdp' }
    return {
      refuse: new KbxError(`${iface} carries libxdp's dispatcher (${LIBXDP_DISPATCHER_PROG}, e.g. loaded by xdp-loader); kbx's dispatcher cannot go on top of it`, {
        op: 'load',
        errno: 16,
        hint: `add the programs to it with --dispatcher libxdp (or auto), or remove it first (xdp-loader unload ${iface} --all, or xdp-load unload ${iface} --force)`,
      }),
    }
  }
  if (carried === 'kbx-dispatcher') {
    if (kind !== 'libxdp') return { use: 'kbx' }
    return { refuse: new KbxError(`${iface} carries kbx's dispatcher; libxdp's cannot go on top of it`, { op: 'load', errno: 16, hint: `--dispatcher kbx (or auto) adds the programs to it, or xdp-load unload ${iface} first` }) }
  }
  if (carried === 'other') {
    // kbx's load refuses with the program's details; libxdp's would fail on it too.
    if (kind !== 'libxdp') return { use: 'kbx' }
    return { refuse: new KbxError(`${iface} already has an XDP program that is no dispatcher`, { op: 'load', errno: 16, hint: `remove it first (\`xdp-load unload ${iface} --force\` detaches it)` }) }
  }
  if (kind === 'kbx') return { use: 'kbx' }
  const probe = input.probe()
  if (probe.ok) return { use: 'libxdp' }
  if (kind === 'auto') return { use: 'kbx', whyNotLibxdp: `libxdp's dispatcher not used on ${iface}: ${probeFailure(probe)}; kbx's dispatcher runs the programs (it needs no freplace)` }
  return {
    refuse: new KbxError(`libxdp's dispatcher does not work on ${iface}: ${probeFailure(probe)}`, { op: probe.op ?? 'attach through libxdp', ...(probe.errno === undefined ? {} : { errno: probe.errno }), hint: LIBXDP_HINT }),
  }
}

/**
 * A bare `--dispatcher` (the form from before it took a kind) becomes `--dispatcher=auto`, so the word after
 * it stays an object: `xdp-load load IFACE --dispatcher other.o` keeps working.
 */
export function bareDispatcherAsAuto(argv: readonly string[]): string[] {
  return argv.map((arg, i) => (arg === '--dispatcher' && !(DISPATCHER_KINDS as readonly string[]).includes(argv[i + 1] ?? '') ? '--dispatcher=auto' : arg))
}
