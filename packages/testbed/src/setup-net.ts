import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { NetError } from '@kbx/errors'

/** scripts/setup_net.sh (same depth from src/ and dist/). */
export const SETUP_NET_SCRIPT = fileURLToPath(new URL('../../../scripts/setup_net.sh', import.meta.url))

export type Topology = 'quic' | 'ab' | 'fix'
export type SetupNetAction = 'up' | 'down' | 'status'

export interface SetupNetLinkStatus {
  name: string
  netns: string | null
  exists: boolean
  veth: boolean
  operstate: string | null
  mac: string | null
  queues: number | null
  address: string
  hasAddress: boolean
  txChecksumming: string | null
  neighbour: { ip: string; state: string; mac: string } | null
  neighbourOk: boolean
}

export interface SetupNetStatus {
  topology: Topology
  state: 'up' | 'down' | 'partial'
  up: boolean
  namespaces: Array<{ name: string; exists: boolean; createdBySetupNet: boolean; bpffs: string; bpffsMounted: boolean }>
  links: SetupNetLinkStatus[]
}

export interface SetupNetResult {
  code: number
  stdout: string
  stderr: string
  /** Parsed for `status`. */
  status?: SetupNetStatus
}

/**
 * Runs scripts/setup_net.sh. `up`/`down` throw a NetError unless they exit 0; `status` returns
 * the parsed JSON (exit 0 = fully up, 3 = down or partial).
 */
export function setupNet(action: SetupNetAction, topology: Topology = 'quic', options: { queues?: number } = {}): SetupNetResult {
  const args = [SETUP_NET_SCRIPT, action, topology, ...(options.queues === undefined ? [] : ['--queues', String(options.queues)])]
  const r = spawnSync('bash', args, { encoding: 'utf8', timeout: 60_000 })
  if (r.error) throw new NetError(`cannot run setup_net.sh: ${r.error.message}`, { op: `setup_net.sh ${action}`, cause: r.error })
  const result: SetupNetResult = { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr }
  if (action === 'status' && (result.code === 0 || result.code === 3)) {
    result.status = JSON.parse(r.stdout) as SetupNetStatus
    return result
  }
  if (result.code !== 0) {
    throw new NetError(`setup_net.sh ${action} ${topology} failed (exit ${result.code}): ${r.stderr.trim()}`, { op: `setup_net.sh ${action} ${topology}` })
  }
  return result
}
