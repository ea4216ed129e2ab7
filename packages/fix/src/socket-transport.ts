// fix-tcp --io socket: the FIX session over a kernel TCP socket; a new socket for each connection. Like
// --io xdp, a turn waits in a native call (ppoll() on the socket's descriptor, or spinning with --busy-poll)
// until bytes arrive or the next paced order is due, to the microsecond; the event loop then reads the bytes.
import { connect } from 'node:net'
import type { Socket } from 'node:net'
import { NetError } from '@kbx/errors'
import { libkbxFixPacing } from './native.js'
import type { FixTransport, TransportContext, TransportHost, TransportOptions } from './transport.js'

const HINT = 'is the acceptor running (fix-acceptor in namespace exch)?'

export class SocketTransport implements FixTransport {
  readonly io = 'socket'
  readonly waitsForEvents = false
  connections = 0
  #socket: Socket | undefined
  #corked = false
  readonly #pacing = libkbxFixPacing()

  private constructor(
    private readonly o: TransportOptions,
    private readonly host: TransportHost,
    private readonly ctx: TransportContext,
  ) {}

  static async open(o: TransportOptions, host: TransportHost, ctx: TransportContext): Promise<SocketTransport> {
    const t = new SocketTransport(o, host, ctx)
    t.#pacing.kbx_fix_precise_timers()
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
    // on the wire: handed to the kernel, stamped as the write begins (as --io xdp stamps before its kick)
    if (!this.#corked) this.host.breakdown.onWire(process.hrtime.bigint())
    this.#socket.write(Buffer.from(bytes))
    return true
  }

  readonly room = Number.POSITIVE_INFINITY

  batch(fn: () => void): void {
    const s = this.#socket
    if (s === undefined || this.#corked) return fn()
    s.cork()
    this.#corked = true
    try {
      fn()
    } finally {
      this.#corked = false
      this.host.breakdown.onWire(process.hrtime.bigint())
      s.uncork()
    }
  }

  /**
   * Orders due sent, then a wait on the socket's descriptor until it is readable, the next paced order is
   * due, or 1 ms (bytes already delivered to the event loop but not read: no wait, the loop reads them).
   * Woken by the deadline, the order due goes out at once, not after an event-loop turn.
   */
  turn(): void {
    this.host.paceDue()
    const fd = this.fd
    if (fd < 0) return
    const readable = this.#pacing.kbx_fix_wait_fd(fd, this.host.wakeAtNs(), 1, this.o.busyPoll ? 1 : 0)
    if (readable === 0) this.host.paceDue()
  }

  /** The connected socket's descriptor (libuv's), or -1. */
  private get fd(): number {
    const s = this.#socket as (Socket & { _handle?: { fd?: number } }) | undefined
    if (s === undefined || s.destroyed || s.connecting) return -1
    return s._handle?.fd ?? -1
  }

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
          this.host.breakdown.rxNs = process.hrtime.bigint()
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
