// Frames the kernel built (captured on a veth with TX checksum offload off) are rebuilt byte for byte.
import { spawn } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { mkdtempSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { buildTcpFrame, buildUdpFrame, parseFrame, readPcap } from './index.js'
import type { ParsedFrameOk } from './index.js'
import { createVethNetns, run } from './testing/netns.js'

const UDP_PORT = 9999
const TCP_PORT = 9998

async function capture(t: { teardown: (fn: () => void) => void }, iface: string, filter: string, count: number, path: string, traffic: () => Promise<void>): Promise<void> {
  const tshark = spawn('tshark', ['-i', iface, '-f', filter, '-c', String(count), '-F', 'pcap', '-w', path], { stdio: ['ignore', 'ignore', 'pipe'] })
  t.teardown(() => {
    if (tshark.exitCode === null) tshark.kill('SIGTERM')
  })
  let stderr = ''
  const exited = new Promise<number | null>((resolve) => tshark.on('exit', (code) => resolve(code)))
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tshark did not start capturing: ${stderr}`)), 20_000)
    tshark.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString()
      if (stderr.includes('Capturing on')) {
        clearTimeout(timer)
        resolve()
      }
    })
    tshark.on('exit', () => {
      clearTimeout(timer)
      reject(new Error(`tshark exited: ${stderr}`))
    })
  })
  // "Capturing on" can come a moment before the capture is live: repeat the traffic until tshark
  // has its `count` packets.
  const deadline = Date.now() + 15_000
  let done = false
  void exited.then(() => (done = true))
  while (!done && Date.now() < deadline) {
    await traffic()
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  if (!done) tshark.kill('SIGTERM')
  const code = await exited
  if (code !== 0) throw new Error(`tshark capture failed (${code}): ${stderr}`)
}

t.test('kernel-built UDP and TCP frames equal the builders’ output', async (t) => {
  const net = createVethNetns(t)
  run('ethtool', ['-K', net.hostIf, 'tx', 'off'])
  run('ip', ['neigh', 'replace', net.peerIp, 'lladdr', net.peerMac, 'dev', net.hostIf, 'nud', 'permanent'])
  const dir = mkdtempSync(join(tmpdir(), 'kbx-kframes-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'kernel.pcap')
  const payload = Buffer.from('kernel-built datagram, odd length!')
  await capture(t, net.hostIf, `src host ${net.hostIp} and (udp port ${UDP_PORT} or tcp port ${TCP_PORT})`, 4, path, async () => {
    const socket = createSocket('udp4')
    await new Promise<void>((resolve, reject) => socket.send(payload, UDP_PORT, net.peerIp, (err) => (err ? reject(err) : resolve())))
    socket.close()
    // Nobody listens in the namespace: the SYN is answered with RST, which is all we need.
    await new Promise<void>((resolve) => {
      const conn = connect({ host: net.peerIp, port: TCP_PORT })
      conn.on('error', () => resolve())
      conn.on('connect', () => {
        conn.destroy()
        resolve()
      })
    })
  })
  const file = readPcap(path)
  t.equal(file.nanosecond, false)
  t.equal(file.packets.length, 4)
  // Each round sends one datagram and one SYN.
  const isUdp = (p: { data: Buffer }): boolean => p.data[23] === 17
  const udpFrame = file.packets.find(isUdp)?.data
  const synFrame = file.packets.find((p) => !isUdp(p))?.data
  const parsed = (frame: Buffer | undefined): ParsedFrameOk => {
    const p = parseFrame(frame ?? Buffer.alloc(0))
    if (!p.ok) throw new Error(p.error)
    return p
  }
  const udp = parsed(udpFrame)
  t.match(udp.udp, { dstPort: UDP_PORT, checksumValid: true })
  t.equal(udp.ipv4!.checksumValid, true)
  const rebuiltUdp = buildUdpFrame({
    srcMac: net.hostMac,
    dstMac: net.peerMac,
    srcIp: net.hostIp,
    dstIp: net.peerIp,
    ttl: udp.ipv4!.ttl,
    tos: udp.ipv4!.tos,
    id: udp.ipv4!.id,
    dontFragment: udp.ipv4!.dontFragment,
    srcPort: udp.udp!.srcPort,
    dstPort: UDP_PORT,
    payload,
  })
  t.equal(rebuiltUdp.toString('hex'), udpFrame!.toString('hex'), 'UDP frame byte for byte, checksums included')

  const syn = parsed(synFrame)
  t.match(syn.tcp, { dstPort: TCP_PORT, flags: 2, checksumValid: true })
  t.ok(syn.tcp!.options.length >= 12, 'a Linux SYN carries options')
  const rebuiltSyn = buildTcpFrame({
    srcMac: net.hostMac,
    dstMac: net.peerMac,
    srcIp: net.hostIp,
    dstIp: net.peerIp,
    ttl: syn.ipv4!.ttl,
    tos: syn.ipv4!.tos,
    id: syn.ipv4!.id,
    dontFragment: syn.ipv4!.dontFragment,
    srcPort: syn.tcp!.srcPort,
    dstPort: TCP_PORT,
    seq: syn.tcp!.seq,
    ack: syn.tcp!.ack,
    flags: syn.tcp!.flags,
    window: syn.tcp!.window,
    options: syn.tcp!.options,
    urgentPointer: syn.tcp!.urgentPointer,
  })
  t.equal(rebuiltSyn.toString('hex'), synFrame!.toString('hex'), 'TCP SYN byte for byte, checksums included')
})
