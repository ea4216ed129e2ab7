// Test helper: sends each payload of a JSON array as one UDP datagram to host:port, then exits.
import dgram from 'node:dgram'

const [host, port, payloadsJson] = process.argv.slice(2)
const payloads = JSON.parse(payloadsJson)
const socket = dgram.createSocket('udp4')
for (const payload of payloads) {
  await new Promise((resolve, reject) => socket.send(Buffer.from(payload), Number(port), host, (err) => (err ? reject(err) : resolve())))
}
socket.close()
