// A small FIX acceptor (the test bed's exchange): accepts Logons from any SenderCompID, keeps each
// counterparty's sequence numbers across reconnections (in memory, or in files with storeDir: across
// restarts of the acceptor too), handles orders as acceptor-orders.ts says (acks every NewOrderSingle, fills every
// Nth, the rest rest: cancel, cancel/replace, status), answers TestRequest, ResendRequest (GapFill) and Logout.
import { createServer } from 'node:net'
import { join } from 'node:path'
import type { Server, Socket } from 'node:net'
import { LatencyHistogram } from '@kbx/stats'
import { AcceptorOrders } from './acceptor-orders.js'
import type { AcceptorOrderCounters } from './acceptor-orders.js'
import { FixParser, MsgType, Tag } from './codec.js'
import { APPL_VER_ID_FIX50SP2, LogonTag } from './logon.js'
import { FixSession } from './session.js'
import type { ResendStore, SessionEvent } from './session.js'
import { FileSeqStore, MemorySeqStore } from './store.js'
import type { SeqStore } from './store.js'

export interface AcceptorOptions {
  host?: string
  port?: number
  senderCompId?: string
  beginString?: string
  /** Fill every Nth order after acking it (0 = never fill). Default 1. */
  fillEvery?: number
  /** Orders with OrderQty above this are rejected. */
  maxQty?: number
  /** Test hook: skip this outgoing MsgSeqNum once per counterparty (the client sees a gap). */
  gapAt?: number
  /** Test hook: false = never send Heartbeats unprompted (the client's TestRequest gets answered). */
  heartbeats?: boolean
  /**
   * Sequence numbers per counterparty in DIR/SENDER-COUNTERPARTY.json, written before every message leaves
   * (so a restarted acceptor never reuses a number the counterparty saw); default: in memory.
   */
  storeDir?: string
  onEvent?: (counterparty: string, e: SessionEvent | { event: 'connected' | 'disconnected'; [key: string]: unknown }) => void
  /** Spin the event loop (epoll without a timeout) instead of sleeping in it between messages: one core at 100%. */
  busyPoll?: boolean
}

export interface AcceptorCounters extends AcceptorOrderCounters {
  connections: number
}

export class FixAcceptor {
  private server: Server | undefined
  private readonly stores = new Map<string, SeqStore>()
  /** Per counterparty, across its connections: reports sent on a lost connection can still be resent. */
  private readonly resendStores = new Map<string, ResendStore>()
  private readonly sockets = new Set<Socket>()
  private readonly gapsDone = new Set<string>()
  private connections = 0
  private readonly orders: AcceptorOrders
  private timer: NodeJS.Timeout | undefined
  private readonly sessions = new Set<FixSession>()
  /**
   * Per order acked: bytes read (the 'data' event) → its ExecutionReport written to the socket, ns. The
   * acceptor's share of an order's round trip (fix-tcp's breakdown has the rest).
   */
  readonly readToWrite = new LatencyHistogram()
  #spinning = false

  constructor(readonly options: AcceptorOptions = {}) {
    this.orders = new AcceptorOrders({ fillEvery: options.fillEvery ?? 1, maxQty: options.maxQty ?? 1_000_000 })
  }

  get counters(): AcceptorCounters {
    return { connections: this.connections, ...this.orders.counters }
  }

  listen(): Promise<number> {
    const server = createServer({ noDelay: true }, (socket) => this.accept(socket))
    this.server = server
    this.timer = setInterval(() => {
      for (const s of this.sessions) s.tick()
    }, 100)
    if (this.options.busyPoll === true) {
      // a pending immediate makes every event-loop turn poll without a timeout: the loop never sleeps
      this.#spinning = true
      const spin = () => {
        if (this.#spinning) setImmediate(spin)
      }
      setImmediate(spin)
    }
    return new Promise((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.options.port ?? 9878, this.options.host ?? '0.0.0.0', () => {
        server.off('error', reject)
        const address = server.address()
        resolve(typeof address === 'object' && address !== null ? address.port : 0)
      })
    })
  }

  async close(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.#spinning = false
    for (const s of this.sockets) s.destroy()
    for (const store of this.stores.values()) store.close()
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()))
  }

  private accept(socket: Socket): void {
    this.connections++
    this.sockets.add(socket)
    socket.setNoDelay(true)
    const peer = `${socket.remoteAddress}:${socket.remotePort}`
    const sniff = new FixParser()
    let session: FixSession | undefined
    let counterparty = '?'
    const onEvent = this.options.onEvent
    onEvent?.(counterparty, { event: 'connected', peer })

    socket.on('data', (chunk) => {
      if (session !== undefined) {
        const readNs = process.hrtime.bigint()
        const acksBefore = this.orders.counters.acks
        socket.cork()
        session.receive(chunk)
        socket.uncork()
        const acked = this.orders.counters.acks - acksBefore
        if (acked > 0) this.readToWrite.record(process.hrtime.bigint() - readNs, acked)
        return
      }
      sniff.push(chunk)
      const first = sniff.next()
      if (first === null) return
      counterparty = first.string(Tag.SenderCompID) ?? '?'
      const target = first.string(Tag.TargetCompID) ?? ''
      const sender = this.options.senderCompId ?? 'EXCH'
      if (first.msgType !== MsgType.Logon || target !== sender) {
        onEvent?.(counterparty, { event: 'reject', reason: first.msgType !== MsgType.Logon ? 'first message not a Logon' : `TargetCompID ${target}` })
        socket.destroy()
        return
      }
      let store = this.stores.get(counterparty)
      if (store === undefined) {
        const dir = this.options.storeDir
        store = dir === undefined ? new MemorySeqStore() : new FileSeqStore(join(dir, `${sender}-${counterparty}.json`))
        this.stores.set(counterparty, store)
      }
      let resendStore = this.resendStores.get(counterparty)
      if (resendStore === undefined) {
        resendStore = new Map()
        this.resendStores.set(counterparty, resendStore)
      }
      const persistent = this.options.storeDir !== undefined
      const seqStore = store
      const beginString = first.string(Tag.BeginString) ?? this.options.beginString ?? 'FIX.4.4'
      const s = new FixSession({
        role: 'acceptor',
        senderCompId: sender,
        targetCompId: counterparty,
        beginString,
        // FIXT.1.1: our Logon names the application version too (the initiator's DefaultApplVerID, else FIX 5.0 SP2)
        ...(beginString === 'FIXT.1.1' ? { logonFields: [[LogonTag.DefaultApplVerID, first.string(LogonTag.DefaultApplVerID) ?? APPL_VER_ID_FIX50SP2] as const] } : {}),
        store,
        heartbeats: this.options.heartbeats ?? true,
        resendCapacity: 16384, // two reports per order: flat memory after a few seconds at full rate
        resendStore,
        send: (bytes) => {
          if (persistent) seqStore.save()
          socket.write(Buffer.from(bytes))
        },
        onApp: (msg) => this.orders.onApp(counterparty, s, msg),
        ...(onEvent === undefined ? {} : { onEvent: (e: SessionEvent) => onEvent(counterparty, e) }),
        onClose: () => socket.end(),
      })
      const gapAt = this.options.gapAt ?? 0
      if (gapAt > 0 && !this.gapsDone.has(counterparty)) {
        this.gapsDone.add(counterparty)
        s.skipOutgoingSeq = gapAt
      }
      session = s
      this.sessions.add(s)
      // hand the session everything received so far, the Logon included
      const all = Buffer.concat([first.copy(), leftover(sniff)])
      socket.cork()
      s.receive(all)
      socket.uncork()
    })
    socket.on('error', () => {})
    socket.on('close', () => {
      this.sockets.delete(socket)
      if (session !== undefined) {
        session.disconnected()
        this.sessions.delete(session)
      }
      onEvent?.(counterparty, { event: 'disconnected', peer })
    })
  }

}

/** Bytes a sniffing parser holds beyond the message it returned. */
function leftover(parser: FixParser): Buffer {
  const rest: Buffer[] = []
  // the parser exposes framed messages only: re-frame what is left by pulling messages out
  for (let m = parser.next(); m !== null; m = parser.next()) rest.push(m.copy())
  return Buffer.concat([...rest, parser.pendingBytes()])
}
