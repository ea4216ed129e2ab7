// A venue-like sender for test/ab-multicast.test.ts: optiq packets of one session sent through the kernel's
// UDP stack (not AF_XDP) to a multicast group on each line, from the line interface's address. Usage:
//   ab-multicast-sender.ts SRC_A_IP GROUP_A SRC_B_IP GROUP_B PORT SESSION COUNT
// Prints one JSON line: {"event":"end","tool":"ab-multicast-sender","data":{"sent":COUNT}}.
import dgram from 'node:dgram'
import { encodeOptiq } from '@kbx/ab'

const [srcA, groupA, srcB, groupB, port, session, count] = process.argv.slice(2) as [string, string, string, string, string, string, string]

async function open(src: string): Promise<dgram.Socket> {
  const socket = dgram.createSocket('udp4')
  await new Promise<void>((resolve) => socket.bind(0, src, resolve))
  socket.setMulticastInterface(src)
  socket.setMulticastLoopback(false)
  return socket
}

const lines = [
  { socket: await open(srcA), group: groupA },
  { socket: await open(srcB), group: groupB },
]
const send = (socket: dgram.Socket, group: string, payload: Buffer) =>
  new Promise<void>((resolve, reject) => socket.send(payload, Number(port), group, (e) => (e ? reject(e) : resolve())))
for (let seq = 1; seq <= Number(count); seq++) {
  const payload = encodeOptiq({ sessionId: Number(session), sequence: seq, orderId: BigInt(seq) })
  for (const l of lines) await send(l.socket, l.group, payload)
  if (seq % 50 === 0) await new Promise((r) => setTimeout(r, 5))
}
for (const l of lines) l.socket.close()
process.stdout.write(`${JSON.stringify({ event: 'end', tool: 'ab-multicast-sender', data: { sent: Number(count) } })}\n`)
