import { BpfObject, raiseMemlockLimit } from '@kbx/bpf'
import { KbxError } from '@kbx/errors'
import { PcapWriter, readPcap } from '@kbx/net'
import { checkObjectFile } from './load.js'

export interface PacketVerdict {
  index: number
  length: number
  verdict: string
  retval?: number
  /** Length of the frame as the program left it. */
  outLength?: number
  modified?: boolean
  error?: string
}

export interface PcapRunSummary {
  object: string
  program: string
  pcap: string
  packets: number
  verdicts: Record<string, number>
  errors: number
  written?: number
}

/** Verdicts that let a frame continue; their (possibly modified) frames are written to --out. */
const FORWARDED = new Set(['pass', 'tx', 'redirect'])

/**
 * Runs an XDP program on every packet of a pcap through BPF_PROG_TEST_RUN, without any interface.
 * `onPacket` sees each verdict; frames that pass/tx/redirect are written to `out` as the program left them.
 */
export function runOnPcap(
  opts: { object: string; pcap: string; prog?: string; out?: string },
  onPacket: (v: PacketVerdict) => void,
): PcapRunSummary {
  checkObjectFile(opts.object)
  const capture = readPcap(opts.pcap)
  if (capture.linkType !== 1) {
    throw new KbxError(`${opts.pcap} has link type ${capture.linkType}; XDP programs see Ethernet frames (link type 1)`, {
      op: 'read pcap',
      hint: 'capture on an Ethernet interface, or convert with editcap -T ether',
    })
  }
  raiseMemlockLimit()
  const obj = BpfObject.open(opts.object)
  const writer = opts.out === undefined ? undefined : PcapWriter.open(opts.out, { nanosecond: capture.nanosecond })
  try {
    obj.load()
    const prog = obj.program(opts.prog)
    const summary: PcapRunSummary = { object: opts.object, program: prog.name, pcap: opts.pcap, packets: 0, verdicts: {}, errors: 0 }
    capture.packets.forEach((packet, index) => {
      summary.packets++
      let verdict: PacketVerdict
      try {
        const r = prog.testRun({ data: packet.data, dataOutSize: Math.max(packet.data.length + 256, 4096) })
        verdict = {
          index,
          length: packet.data.length,
          verdict: r.verdict,
          retval: r.retval,
          outLength: r.dataOut.length,
          modified: !r.dataOut.equals(packet.data),
        }
        if (writer && FORWARDED.has(r.verdict)) writer.write(r.dataOut, packet.tsNs)
      } catch (err) {
        summary.errors++
        verdict = { index, length: packet.data.length, verdict: 'error', error: err instanceof Error ? err.message : String(err) }
      }
      summary.verdicts[verdict.verdict] = (summary.verdicts[verdict.verdict] ?? 0) + 1
      onPacket(verdict)
    })
    if (writer) summary.written = writer.packetCount
    return summary
  } finally {
    writer?.close()
    obj.close()
  }
}
