// quic-sink's Agave QoS seen from TypeScript: the stakes file (--stakes) and the engine's pure rules
// (kbx_quic.h "Agave's QoS"), bound for the unit tests and for reports.
import { readFileSync } from 'node:fs'
import { UsageError } from '@kbx/errors'
import { base58Decode } from './base58.js'
import { KBX_QUIC_QOS_MAX_STAKES, libkbxQuic } from './native.js'

/** A stake table: count 32-byte Ed25519 public keys concatenated, and their lamports. */
export interface Stakes {
  keys: Buffer
  lamports: BigUint64Array
  count: number
  total: bigint
}

const U64_MAX = (1n << 64n) - 1n

/**
 * Parses a stakes file: one `<base58 pubkey> <lamports>` a line; blank lines and `#` comments are skipped.
 * A malformed line, a repeated key or a total over 64 bits is a usage error naming the line.
 */
export function parseStakes(text: string, source = '--stakes'): Stakes {
  const keys: Buffer[] = []
  const lamports: bigint[] = []
  const seen = new Map<string, number>()
  let total = 0n
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim()
    if (!line) return
    const where = `${source} line ${i + 1}`
    const fields = line.split(/\s+/)
    if (fields.length !== 2) throw new UsageError(`${where}: expected "<base58 pubkey> <lamports>", got "${line}"`)
    const [pubkey, amount] = fields as [string, string]
    const key = base58Decode(pubkey)
    if (!key || key.length !== 32) throw new UsageError(`${where}: "${pubkey}" is not a base58 Ed25519 public key (32 bytes)`)
    if (!/^\d+$/.test(amount) || BigInt(amount) > U64_MAX) throw new UsageError(`${where}: lamports "${amount}" is not an integer 0..2^64-1`)
    const first = seen.get(pubkey)
    if (first !== undefined) throw new UsageError(`${where}: ${pubkey} already has a stake on line ${first}`)
    seen.set(pubkey, i + 1)
    total += BigInt(amount)
    if (total > U64_MAX) throw new UsageError(`${where}: the total stake exceeds 2^64-1 lamports`)
    keys.push(key)
    lamports.push(BigInt(amount))
  })
  if (keys.length > KBX_QUIC_QOS_MAX_STAKES) throw new UsageError(`${source}: ${keys.length} stakes, at most ${KBX_QUIC_QOS_MAX_STAKES}`)
  return { keys: Buffer.concat(keys), lamports: BigUint64Array.from(lamports), count: keys.length, total }
}

/** Reads and parses a stakes file; unreadable is a usage error. */
export function readStakes(path: string): Stakes {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (e) {
    throw new UsageError(`--stakes ${path}: ${(e as Error).message}`)
  }
  return parseStakes(text, `--stakes ${path}`)
}

/** MAX_STREAMS Agave grants a peer: 128 unstaked (stake 0), staked 128 + its share of 100000, within 128..512. */
export function maxUniStreams(stake: bigint, totalStake: bigint): number {
  return libkbxQuic().kbx_quic_qos_max_uni_streams(stake, totalStake)
}

/** Whether a stake counts as staked at this capacity (a smaller share is treated as unstaked, as Agave does). */
export function isStaked(stake: bigint, totalStake: bigint, maxStreamsPerMs: number): boolean {
  return libkbxQuic().kbx_quic_qos_is_staked(stake, totalStake, maxStreamsPerMs) === 1
}

/** Streams a connection may start per 100 ms window (loaded: the sink's staked load is over 95 % of capacity). */
export function streamCapacity(stake: bigint, totalStake: bigint, maxStreamsPerMs: number, loaded: boolean): number {
  return Number(libkbxQuic().kbx_quic_qos_stream_capacity(stake, totalStake, maxStreamsPerMs, loaded ? 1 : 0))
}

/** The engine's GCRA rate limiter (per-IP new connections), driven with explicit times for tests. */
export class RateLimiter {
  readonly #state = Buffer.alloc(8)
  constructor(
    readonly burst: number,
    readonly intervalNs: bigint,
  ) {}
  allow(nowNs: bigint): boolean {
    return libkbxQuic().kbx_quic_rate_limiter_allow(this.#state, this.burst, this.intervalNs, nowNs) === 1
  }
}

/** The engine's per-connection stream window (100 ms), driven with explicit times for tests. */
export class StreamWindow {
  readonly #state = Buffer.alloc(16)
  admit(capacity: number, nowNs: bigint): boolean {
    return libkbxQuic().kbx_quic_stream_window_admit(this.#state, BigInt(capacity), nowNs) === 1
  }
}
