// A feed handler stand-in for test/ab-out.test.ts: receives `ab-arbitrate --out udp:…` datagrams on a port
// (joining GROUP on the interface with address IFACE_IP when given) and decodes them. Usage:
//   ab-udp-consumer.ts FORMAT PORT [GROUP IFACE_IP]
// Prints a start event once it listens; on SIGINT or SIGTERM, {"event":"end","data":{"received":N,"keys":["stream/seq",…]}}.
import dgram from 'node:dgram'
import { decodePayload, type FeedFormat } from '@kbx/ab'

const [format, port, group, ifaceIp] = process.argv.slice(2) as [FeedFormat, string, string | undefined, string | undefined]
const keys: string[] = []
let undecodable = 0
const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true })
socket.on('message', (payload) => {
  const d = decodePayload(format, payload)
  if (d.kind === 'data') keys.push(`${d.stream}/${d.sequence}`)
  else undecodable++
})
await new Promise<void>((resolve) => socket.bind(Number(port), resolve))
// Room for the bursts a batch of sendmmsg brings while this process is descheduled (a loaded machine).
socket.setRecvBufferSize(4 << 20)
if (group) socket.addMembership(group, ifaceIp)
const emit = (event: string, data: object) => process.stdout.write(`${JSON.stringify({ event, tool: 'ab-udp-consumer', data })}\n`)
emit('start', { port: Number(port), ...(group ? { group } : {}) })
const end = () => {
  socket.close()
  emit('end', { received: keys.length, undecodable, keys })
  process.exit(0)
}
process.on('SIGINT', end)
process.on('SIGTERM', end)
