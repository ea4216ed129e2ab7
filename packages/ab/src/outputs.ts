// ab-arbitrate's --out destinations: udp:IP:PORT and shm:NAME written in C from the receive loop's batch
// (native/include/kbx_ab_out.h), pcap:FILE written here from the copies of delivered frames.
import { UsageError } from '@kbx/errors'
import { kbxAddress, koffi } from '@kbx/ffi'
import { interfaceInfo, parseIPv4 } from '@kbx/net'
import { isMulticastIPv4 } from './channels.js'
import {
  KBX_AB_OUT_COUNTERS_SIZE,
  KBX_AB_OUT_KIND,
  KBX_AB_OUT_MAX,
  KBX_AB_SHM,
  KbxAbOutCounters,
  abError,
  libkbxAb,
} from './native.js'

export type OutputSpec =
  | { kind: 'udp'; ip: string; port: number; multicast: boolean }
  | { kind: 'shm'; name: string; slots: number; slotSize: number }
  | { kind: 'pcap'; file: string }

const OUT_FORMS = 'udp:IP:PORT, shm:NAME[,slots=N][,slot-size=BYTES] or pcap:FILE'

function outUsage(value: string, why: string): UsageError {
  return new UsageError(`--out ${JSON.stringify(value)}: ${why}`, { op: 'parse --out', hint: `an output is ${OUT_FORMS}` })
}

function parseShm(value: string, rest: string): OutputSpec {
  const [name = '', ...params] = rest.split(',')
  if (!/^[A-Za-z0-9_.-]{1,200}$/.test(name) || name === '.' || name === '..') throw outUsage(value, 'a ring name is letters, digits, \'_\', \'-\', \'.\' (a file in /dev/shm)')
  const spec: OutputSpec & { kind: 'shm' } = { kind: 'shm', name, slots: KBX_AB_SHM.defaultSlots, slotSize: KBX_AB_SHM.defaultSlotSize }
  for (const param of params) {
    const m = /^(slots|slot-size)=(\d+)$/.exec(param)
    if (!m) throw outUsage(value, `unknown ring parameter ${JSON.stringify(param)} (slots=N, slot-size=BYTES)`)
    const n = Number(m[2])
    if (m[1] === 'slots') {
      if (n < 2 || n > 1 << 24 || (n & (n - 1)) !== 0) throw outUsage(value, 'slots is a power of two from 2 to 2^24')
      spec.slots = n
    } else {
      if (n < 64 || n > 65536 || n % 64 !== 0) throw outUsage(value, 'slot-size is a multiple of 64 from 64 to 65536 (48 bytes of it are the slot header)')
      spec.slotSize = n
    }
  }
  return spec
}

/** One --out value; a UsageError (exit 2) for anything else. */
export function parseOutput(value: string): OutputSpec {
  const colon = value.indexOf(':')
  const kind = colon < 0 ? value : value.slice(0, colon)
  const rest = colon < 0 ? '' : value.slice(colon + 1)
  if (kind === 'pcap') {
    if (!rest) throw outUsage(value, 'pcap:FILE needs a file')
    return { kind: 'pcap', file: rest }
  }
  if (kind === 'shm') return parseShm(value, rest)
  if (kind === 'udp') {
    const m = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(rest)
    const port = m ? Number(m[2]) : NaN
    let valid = m !== null && port >= 1 && port <= 65535
    try {
      if (valid) parseIPv4(m![1]!)
    } catch {
      valid = false
    }
    if (!valid) throw outUsage(value, 'udp takes IPv4:PORT, like udp:10.0.0.2:9000 or udp:239.1.1.1:9000')
    return { kind: 'udp', ip: m![1]!, port, multicast: isMulticastIPv4(m![1]!) }
  }
  throw outUsage(value, `unknown output kind ${JSON.stringify(kind)}`)
}

/** Commander accumulator for the repeatable --out. */
export function collectOutput(value: string, previous: OutputSpec[] | undefined): OutputSpec[] {
  return [...(previous ?? []), parseOutput(value)]
}

/** The outputs of a run, checked together (usage errors before anything is attached). */
export function checkOutputs(outputs: OutputSpec[], outIface: string | undefined): void {
  const native = outputs.filter((o) => o.kind !== 'pcap')
  if (native.length > KBX_AB_OUT_MAX) throw new UsageError(`--out: at most ${KBX_AB_OUT_MAX} udp and shm outputs, not ${native.length}`, { op: 'parse --out' })
  const multicast = outputs.some((o) => o.kind === 'udp' && o.multicast)
  if (multicast && outIface === undefined)
    throw new UsageError('--out udp:GROUP:PORT to a multicast group needs --out-iface IFACE', { op: 'parse --out', hint: 'name the interface the group is sent out of: --out-iface eth1' })
  if (!multicast && outIface !== undefined) throw new UsageError('--out-iface applies to multicast udp outputs only, and none is given', { op: 'parse --out-iface' })
  const names = outputs.flatMap((o) => (o.kind === 'shm' ? [o.name] : []))
  if (new Set(names).size !== names.length) throw new UsageError('--out: two shm outputs with one name', { op: 'parse --out' })
  const files = outputs.flatMap((o) => (o.kind === 'pcap' ? [o.file] : []))
  if (files.length > 1) throw new UsageError('--out pcap (or --pcap) given twice: one pcap per run', { op: 'parse --out' })
}

/** `udp:IP:PORT`, `shm:NAME` or `pcap:FILE` as text. */
export function describeOutput(o: OutputSpec): string {
  return o.kind === 'udp' ? `udp:${o.ip}:${o.port}` : o.kind === 'shm' ? `shm:${o.name}` : `pcap:${o.file}`
}

export interface OutputCounters {
  out: string
  messages: bigint
  bytes: bigint
  errors: bigint
  /** shm: the ring's head (messages written since it was created); udp: sendmmsg calls. */
  head?: bigint
  sendCalls?: bigint
}

const COUNTER = {
  messages: koffi.offsetof(KbxAbOutCounters, 'messages'),
  bytes: koffi.offsetof(KbxAbOutCounters, 'bytes'),
  errors: koffi.offsetof(KbxAbOutCounters, 'errors'),
  head: koffi.offsetof(KbxAbOutCounters, 'head'),
}

/** The address as the u32 whose in-memory bytes are the address in network order (a little-endian host). */
function networkOrder32(ip: string): number {
  const buf = Buffer.alloc(4)
  buf.writeUInt32BE(parseIPv4(ip))
  return buf.readUInt32LE(0)
}

function byteSwap16(n: number): number {
  return ((n & 0xff) << 8) | (n >> 8)
}

/** The native outputs (udp and shm) of a receive loop: created here, written by kbx_ab_rx_poll. */
export class NativeOutputs {
  readonly address: number
  readonly specs: OutputSpec[]
  readonly #counters = Buffer.from(new ArrayBuffer(KBX_AB_OUT_MAX * KBX_AB_OUT_COUNTERS_SIZE))
  readonly #countersAddress = kbxAddress(this.#counters)
  #closed = false

  private constructor(address: number, specs: OutputSpec[]) {
    this.address = address
    this.specs = specs
  }

  /** Opens the udp sockets and creates the rings; format: the feed's FORMAT_CODE. */
  static open(outputs: OutputSpec[], options: { format: number; outIface?: string; ttl?: number }): NativeOutputs {
    const ab = libkbxAb()
    const out: [unknown] = [null]
    const rc = ab.kbx_ab_out_create(out)
    if (rc < 0 || !out[0]) throw abError(rc, 'create outputs')
    const specs = outputs.filter((o) => o.kind !== 'pcap')
    const outputsHandle = new NativeOutputs(Number(koffi.address(out[0])), specs)
    try {
      const ifindex = options.outIface !== undefined ? interfaceInfo(options.outIface).ifindex : 0
      for (const o of specs) {
        const added =
          o.kind === 'udp'
            ? ab.kbx_ab_out_add_udp(outputsHandle.address, networkOrder32(o.ip), byteSwap16(o.port), o.multicast ? ifindex : 0, options.ttl ?? 1)
            : o.kind === 'shm'
              ? ab.kbx_ab_out_add_shm(outputsHandle.address, o.name, o.slots, o.slotSize, options.format)
              : 0
        if (added < 0) throw abError(added, `open --out ${describeOutput(o)}`)
      }
    } catch (e) {
      outputsHandle.close()
      throw e
    }
    return outputsHandle
  }

  counters(): OutputCounters[] {
    const n = libkbxAb().kbx_ab_out_counters(this.address, this.#countersAddress, KBX_AB_OUT_MAX)
    const all: OutputCounters[] = []
    for (let i = 0; i < n && i < this.specs.length; i++) {
      const at = i * KBX_AB_OUT_COUNTERS_SIZE
      const spec = this.specs[i]!
      const u64 = (offset: number) => this.#counters.readBigUInt64LE(at + offset)
      const head = u64(COUNTER.head)
      all.push({
        out: describeOutput(spec),
        messages: u64(COUNTER.messages),
        bytes: u64(COUNTER.bytes),
        errors: u64(COUNTER.errors),
        ...(this.#counters.readUInt32LE(at) === KBX_AB_OUT_KIND.shm ? { head } : { sendCalls: head }),
      })
    }
    return all
  }

  /** Sends what is batched, ends the rings (their files are removed) and closes the sockets. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    libkbxAb().kbx_ab_out_destroy(this.address)
  }
}
