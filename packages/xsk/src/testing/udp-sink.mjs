// Test helper: a kernel UDP socket on host:port printing one JSON line per datagram until count arrived
// or timeoutMs passed: {"event":"ready"}, {"event":"datagram","payload":base64,"from":ip,"port":n}.
import dgram from 'node:dgram'

const [host, port, count, timeoutMs] = process.argv.slice(2)
const socket = dgram.createSocket('udp4')
let received = 0
const timer = setTimeout(() => socket.close(), Number(timeoutMs))
socket.on('message', (msg, rinfo) => {
  process.stdout.write(`${JSON.stringify({ event: 'datagram', payload: msg.toString('base64'), from: rinfo.address, port: rinfo.port })}\n`)
  if (++received >= Number(count)) {
    clearTimeout(timer)
    socket.close()
  }
})
socket.bind(Number(port), host, () => process.stdout.write(`${JSON.stringify({ event: 'ready' })}\n`))
