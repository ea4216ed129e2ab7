// quic-flood's fan-out on the control path: the servers file (`--servers`, re-read on SIGHUP), each
// server's next hop, and each server's counters as the `data.servers` entries of interval and end events.
import { readFileSync } from 'node:fs'
import { parseIpPort } from '@kbx/cli'
import type { IpPort } from '@kbx/cli'
import { UsageError } from '@kbx/errors'
import { BucketHistogram, summarizeLatency } from '@kbx/stats'
import type { Distribution } from '@kbx/stats'
import type { ServerStats } from './engine.js'
import { KBX_QUIC_LATENCY_LAYOUT } from './native.js'

/** A servers file: one ip:port a line; `#` starts a comment; blank lines ignored; no server twice. */
export function parseServersFile(text: string, source: string): IpPort[] {
  const servers: IpPort[] = []
  text.split('\n').forEach((line, i) => {
    const value = line.replace(/#.*/, '').trim()
    if (!value) return
    const server = parseIpPort(value, `${source} line ${i + 1}`)
    if (servers.some((s) => s.ip === server.ip && s.port === server.port))
      throw new UsageError(`${source} line ${i + 1}: ${value} is listed twice`)
    servers.push(server)
  })
  return servers
}

export function readServersFile(path: string): IpPort[] {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (e) {
    throw new UsageError(`--servers ${path}: ${(e as Error).message}`)
  }
  return parseServersFile(text, `--servers ${path}`)
}

/** Collects a repeatable --server. */
export function collectServer(value: string, previous: IpPort[] | undefined): IpPort[] {
  return [...(previous ?? []), parseIpPort(value, '--server')]
}

/** Collects a repeatable option's text values. */
export function collectString(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value]
}

/** One server's `data.servers` entry; identities: base58 public keys by the engine's identity index. */
export function serverReport(s: ServerStats, latencies: Distribution, identities: readonly string[]) {
  return {
    server: s.server,
    state: s.state,
    sent: s.sent,
    acked: s.acked,
    unackedAtClose: s.unackedAtClose,
    ackLatencyUs: summarizeLatency(latencies),
    handshakes: s.handshakes,
    connectAttempts: s.connectAttempts,
    connectionsOpen: s.connectionsOpen,
    connectionsClosed: s.connectionsClosed,
    closes: s.closes,
    closesNotKept: s.closesNotKept,
    blockedOnMaxStreamsMs: s.blockedStreamsNs / 1e6,
    connections: s.connections.map((c) => ({ ...c, identity: identities[c.identity] ?? String(c.identity) })),
  }
}

/** Each server's latencies over the whole run (the engine hands out only those since its last take). */
export class ServerLatencies {
  readonly #total = new Map<string, BucketHistogram>()
  /** Adds a take's latencies; returns the reports of this take (interval) or of the whole run (total). */
  reports(servers: readonly ServerStats[], identities: readonly string[], scope: 'interval' | 'total') {
    return servers.map((s) => {
      let total = this.#total.get(s.server)
      if (!total) this.#total.set(s.server, (total = new BucketHistogram(KBX_QUIC_LATENCY_LAYOUT)))
      total.add(s.latencies)
      return serverReport(s, scope === 'total' ? total : s.latencies, identities)
    })
  }
}
