// fix-tcp's connection to the gateway, over either transport, made again after it is lost: the userspace
// TCP on AF_XDP (the same socket, UMEM and steering program; a new TCP connection, same 4-tuple) or a
// kernel TCP socket (a new one).
import { connect } from 'node:net'
import type { Socket } from 'node:net'
import type { IpPort, ToolContext } from '@kbx/cli'
import { NetError } from '@kbx/errors'
import { XdpTransport } from './xdp-transport.js'
import type { XdpTransportOptions } from './xdp-transport.js'

export interface LinkOptions {
  io: 'xdp' | 'socket'
  connect: IpPort
  /** Source address for --io socket. */
  localAddress: string
  xdp: Omit<XdpTransportOptions, 'remoteIp' | 'remotePort'>
  /** Socket mode: received bytes. */
  onData: (chunk: Buffer) => void
  /** The connection went away (socket mode; the xdp step loop watches the TCP state itself). */
  onGone: (reason: string) => void
}

export class FixLink {
  xdp: XdpTransport | undefined
  socket: Socket | undefined
  /** Connections made so far (the first included). */
  connections = 0

  private constructor(
    private readonly o: LinkOptions,
    private readonly ctx: ToolContext,
  ) {}

  /** The first connection: errors are fatal to the caller (exit 1). */
  static async open(o: LinkOptions, ctx: ToolContext): Promise<FixLink> {
    const link = new FixLink(o, ctx)
    if (o.io === 'xdp') {
      const xdp = await XdpTransport.open({ ...o.xdp, remoteIp: o.connect.ip, remotePort: o.connect.port })
      link.xdp = xdp
      ctx.onCleanup(() => xdp.close())
      xdp.connect()
      await link.established(15_000)
    } else {
      ctx.onCleanup(() => {
        link.socket?.destroy()
      })
      await link.openSocket()
    }
    link.connections++
    return link
  }

  get local(): string {
    if (this.xdp !== undefined) return `${this.xdp.localIp}:${this.xdp.localPort}`
    return `${this.socket?.localAddress ?? this.o.localAddress}:${this.socket?.localPort ?? 0}`
  }

  write(bytes: Buffer): boolean {
    if (this.xdp !== undefined) return this.xdp.write(bytes)
    if (this.socket === undefined || this.socket.destroyed) return false
    this.socket.write(Buffer.from(bytes))
    return true
  }

  /** The AF_XDP connection is gone: closed, or the peer sent its FIN (it will send no more FIX). */
  get xdpGone(): string | undefined {
    const x = this.xdp
    if (x === undefined) return undefined
    if (x.closed) return `TCP connection ${String(x.stats()['closeReason'])}`
    if (x.state === 'close-wait') return 'TCP connection closed by the peer (FIN)'
    return undefined
  }

  /** Drops the current connection at once (RST unless already closed), as when giving up on a silent peer. */
  drop(): void {
    if (this.xdp !== undefined) {
      if (!this.xdp.closed) {
        this.xdp.abort()
        this.xdp.step(0)
      }
    } else if (this.socket !== undefined) {
      const s = this.socket
      this.socket = undefined
      if (!s.destroyed) s.resetAndDestroy()
    }
  }

  /** One attempt at a new connection: resolves when it is up, throws NetError when refused or timed out. */
  async reconnect(timeoutMs: number): Promise<void> {
    this.drop()
    if (this.xdp !== undefined) {
      this.xdp.reconnect()
      await this.established(timeoutMs)
    } else {
      await this.openSocket(timeoutMs)
    }
    this.connections++
  }

  /** SYN retransmitted on timeout until ESTABLISHED, refused (RST) or timeoutMs. */
  private async established(timeoutMs: number): Promise<void> {
    const xdp = this.xdp!
    const to = this.o.connect
    const deadline = Date.now() + timeoutMs
    while (!xdp.established) {
      xdp.step(1)
      if (xdp.closed) {
        const reason = String(xdp.stats()['closeReason'])
        throw new NetError(`connect to ${to.ip}:${to.port} over AF_XDP failed: ${reason}`, { op: 'connect (userspace TCP)', hint: 'is the acceptor running (fix-acceptor in namespace exch)?' })
      }
      if (Date.now() > deadline || this.ctx.signal.aborted) {
        xdp.abort()
        xdp.step(0)
        throw new NetError(`connect to ${to.ip}:${to.port} over AF_XDP timed out`, { op: 'connect (userspace TCP)', hint: 'is the next hop reachable and its MAC right (ip neigh)?' })
      }
      await new Promise<void>((resolve) => setImmediate(resolve))
    }
    this.ctx.log.debug({ local: this.local, zeroCopy: xdp.zeroCopy, xdpMode: xdp.xdpMode }, 'connected (userspace TCP over AF_XDP)')
  }

  private openSocket(timeoutMs = 15_000): Promise<void> {
    const to = this.o.connect
    return new Promise((resolve, reject) => {
      const socket = connect({ host: to.ip, port: to.port, localAddress: this.o.localAddress, noDelay: true })
      const timer = setTimeout(() => {
        socket.destroy()
        reject(new NetError(`connect to ${to.ip}:${to.port} timed out`, { op: 'connect', hint: 'is the acceptor running (fix-acceptor in namespace exch)?' }))
      }, timeoutMs)
      const onError = (err: NodeJS.ErrnoException) => {
        clearTimeout(timer)
        reject(new NetError(`connect to ${to.ip}:${to.port} failed: ${err.message}`, { op: 'connect', hint: 'is the acceptor running (fix-acceptor in namespace exch)?' }))
      }
      socket.once('error', onError)
      socket.once('connect', () => {
        clearTimeout(timer)
        socket.off('error', onError)
        this.socket = socket
        socket.on('data', (chunk: Buffer) => {
          if (this.socket === socket) this.o.onData(chunk)
        })
        socket.on('close', () => {
          if (this.socket === socket) this.o.onGone('connection closed by peer')
        })
        socket.on('error', (err) => this.ctx.log.warn({ err: err.message }, 'socket error'))
        this.ctx.log.debug({ local: `${socket.localAddress}:${socket.localPort}` }, 'connected')
        resolve()
      })
    })
  }

  /** Clean end: FIN after what is queued, both FINs acknowledged (or 3 s, then RST). */
  async close(): Promise<void> {
    if (this.socket !== undefined) {
      this.socket.end()
      return
    }
    const xdp = this.xdp
    if (xdp === undefined) return
    const deadline = Date.now() + 3000
    while (!xdp.closed && xdp.pendingBytes > 0 && Date.now() < deadline) xdp.step(0)
    if (!xdp.closed) xdp.shutdown()
    while (!xdp.closed && xdp.state !== 'time-wait' && Date.now() < deadline) {
      xdp.step(1)
      await new Promise<void>((resolve) => setImmediate(resolve))
    }
    if (!xdp.closed && xdp.state !== 'time-wait') {
      this.ctx.log.warn({ state: xdp.state }, 'TCP close did not complete: sending RST')
      xdp.abort()
      xdp.step(0)
    }
  }
}

/**
 * Reconnection delays: the interval, doubled after each failed attempt up to the cap; back to the interval
 * once logged on again.
 */
export class Backoff {
  private failures = 0

  constructor(
    readonly intervalMs: number,
    readonly capMs: number,
  ) {}

  get nextMs(): number {
    return Math.min(this.capMs, this.intervalMs * 2 ** Math.min(this.failures, 30))
  }

  failed(): void {
    this.failures++
  }

  reset(): void {
    this.failures = 0
  }
}
