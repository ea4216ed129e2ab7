// fix-tcp --io socket: the FIX session over a kernel TCP socket; a new socket for each connection.
import { connect } from 'node:net'
import type { Socket } from 'node:net'
import { NetError } from '@kbx/errors'
import type { FixTransport, TransportContext, TransportHost, TransportOptions } from './transport.js'

const HINT = 'is the acceptor running (fix-acceptor in namespace exch)?'

export class SocketTransport implements FixTransport {
  readonly io = 'socket'
  readonly waitsForEvents = true
  connections = 0
  #socket: Socket | undefined

  private constructor(
    private readonly o: TransportOptions,
    private readonly host: TransportHost,
    private readonly ctx: TransportContext,
  ) {}

  static async open(o: TransportOptions, host: TransportHost, ctx: TransportContext): Promise<SocketTransport> {
    const t = new SocketTransport(o, host, ctx)
    ctx.onCleanup(() => {
      t.#socket?.destroy()
    })
    await t.openSocket()
    t.connections++
    return t
  }

  get local(): string {
    return `${this.#socket?.localAddress ?? this.o.localAddress}:${this.#socket?.localPort ?? 0}`
  }

  /** The kernel's TCP has no native reflex: the session answers every report. */
  useReflex(): boolean {
    return false
  }

  startFields(): Record<string, unknown> {
    return {}
  }

  write(bytes: Buffer): boolean {
    if (this.#socket === undefined || this.#socket.destroyed) return false
    this.#socket.write(Buffer.from(bytes))
    return true
  }

  batch(fn: () => void): void {
    const s = this.#socket
    s?.cork()
    try {
      fn()
    } finally {
      s?.uncork()
    }
  }

  turn(): void {}

  drop(): void {
    const s = this.#socket
    if (s === undefined) return
    this.#socket = undefined
    if (!s.destroyed) s.resetAndDestroy()
  }

  async reconnect(timeoutMs: number): Promise<void> {
    this.drop()
    await this.openSocket(timeoutMs)
    this.connections++
  }

  async close(): Promise<void> {
    this.#socket?.end()
  }

  tcpStats(): Record<string, unknown> {
    return { io: 'socket', note: "kernel TCP: retransmits/dup ACKs are the kernel's (see nstat)" }
  }

  intervalFields(): Record<string, unknown> {
    return {}
  }

  endFields(): Record<string, unknown> {
    return {}
  }

  private openSocket(timeoutMs = 15_000): Promise<void> {
    const to = this.o.connect
    return new Promise((resolve, reject) => {
      const socket = connect({ host: to.ip, port: to.port, localAddress: this.o.localAddress, noDelay: true })
      const timer = setTimeout(() => {
        socket.destroy()
        reject(new NetError(`connect to ${to.ip}:${to.port} timed out`, { op: 'connect', hint: HINT }))
      }, timeoutMs)
      const onError = (err: NodeJS.ErrnoException) => {
        clearTimeout(timer)
        reject(new NetError(`connect to ${to.ip}:${to.port} failed: ${err.message}`, { op: 'connect', hint: HINT }))
      }
      socket.once('error', onError)
      socket.once('connect', () => {
        clearTimeout(timer)
        socket.off('error', onError)
        this.#socket = socket
        socket.on('data', (chunk: Buffer) => {
          if (this.#socket !== socket) return
          this.batch(() => this.host.receive(chunk))
          this.host.received()
        })
        socket.on('close', () => {
          if (this.#socket === socket) this.host.gone('connection closed by peer')
        })
        socket.on('error', (err) => this.ctx.log.warn({ err: err.message }, 'socket error'))
        this.ctx.log.debug({ local: `${socket.localAddress}:${socket.localPort}` }, 'connected')
        resolve()
      })
    })
  }
}
