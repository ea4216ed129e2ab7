import { spawnIn } from './exec.js'

export interface UdpProbeOptions {
  /** Destination port (default a random one in 20000..59999). */
  port?: number
  /** Source address to bind the sender to. */
  fromIp?: string
  /** How long to wait for a datagram once the receiver is listening (default 5000 ms). */
  timeoutMs?: number
  /** How long the receiver may take to start listening (default 30000 ms: node starts slowly on a loaded machine). */
  startupTimeoutMs?: number
}

const RECEIVER = `
const dgram = require('node:dgram')
const [ip, port, token] = process.argv.slice(1)
const s = dgram.createSocket('udp4')
s.on('message', (m, rinfo) => {
  if (m.toString() === token) { process.stdout.write('got ' + rinfo.address + '\\n'); process.exit(0) }
})
s.bind(Number(port), ip, () => process.stdout.write('ready\\n'))
`

const SENDER = `
const dgram = require('node:dgram')
const [ip, port, token, fromIp] = process.argv.slice(1)
const s = dgram.createSocket('udp4')
const send = () => s.send(token, Number(port), ip)
s.bind(0, fromIp || undefined, () => { send(); setInterval(send, 100) })
`

/**
 * Ping-free connectivity check: sends UDP datagrams with node's dgram from `fromNetns` to
 * `toIp:port` inside `toNetns` (null = root namespace). Resolves with the source address the
 * receiver saw, or undefined when nothing arrived in time.
 */
export async function udpProbe(fromNetns: string | null, toNetns: string | null, toIp: string, options: UdpProbeOptions = {}): Promise<string | undefined> {
  const port = options.port ?? 20000 + Math.floor(Math.random() * 40000)
  const token = `kbx-probe-${process.pid}-${Math.random().toString(36).slice(2)}`
  const receiver = spawnIn(toNetns, process.execPath, ['-e', RECEIVER, toIp, String(port), token], { stdio: ['ignore', 'pipe', 'pipe'] })
  let sender: ReturnType<typeof spawnIn> | undefined
  let timer: NodeJS.Timeout | undefined
  try {
    return await new Promise<string | undefined>((resolve) => {
      let out = ''
      timer = setTimeout(() => resolve(undefined), options.startupTimeoutMs ?? 30_000)
      receiver.on('exit', () => resolve(/got (\S+)/.exec(out)?.[1]))
      receiver.stdout?.on('data', (chunk: Buffer) => {
        out += chunk.toString()
        if (sender === undefined && out.includes('ready\n')) {
          clearTimeout(timer)
          timer = setTimeout(() => resolve(undefined), options.timeoutMs ?? 5000)
          sender = spawnIn(fromNetns, process.execPath, ['-e', SENDER, toIp, String(port), token, options.fromIp ?? ''], { stdio: 'ignore' })
        }
        const got = /got (\S+)/.exec(out)
        if (got) resolve(got[1])
      })
    })
  } finally {
    if (timer) clearTimeout(timer)
    for (const child of [sender, receiver]) {
      if (child && child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r))
        child.kill('SIGKILL')
        await exited
      }
    }
  }
}
