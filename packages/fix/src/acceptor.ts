// A small FIX acceptor (the test bed's exchange): accepts Logons from any SenderCompID, keeps each
// counterparty's sequence numbers across reconnections (in memory, or in files with storeDir: across
// restarts of the acceptor too), acks every NewOrderSingle with an
// ExecutionReport (and fills every Nth), answers TestRequest, ResendRequest (GapFill) and Logout.
import { createServer } from 'node:net'
import { join } from 'node:path'
import type { Server, Socket } from 'node:net'
import { FixParser, MsgType, Tag } from './codec.js'
import type { FixMessageView, FixWriter } from './codec.js'
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
}

export interface AcceptorCounters {
  connections: number
  /** NewOrderSingles received (resent ones with PossDupFlag included). */
  orders: number
  /** Of those, resent with PossDupFlag=Y (acked again: no order book to tell a duplicate). */
  possDupOrders: number
  /** ExecutionReports ExecType New: orders acked. */
  acks: number
  fills: number
  rejects: number
}

export class FixAcceptor {
  private server: Server | undefined
  private readonly stores = new Map<string, SeqStore>()
  /** Per counterparty, across its connections: reports sent on a lost connection can still be resent. */
  private readonly resendStores = new Map<string, ResendStore>()
  private readonly sockets = new Set<Socket>()
  private readonly gapsDone = new Set<string>()
  readonly counters: AcceptorCounters = { connections: 0, orders: 0, possDupOrders: 0, acks: 0, fills: 0, rejects: 0 }
  private nextOrderId = 1
  private nextExecId = 1
  private timer: NodeJS.Timeout | undefined
  private readonly sessions = new Set<FixSession>()

  constructor(readonly options: AcceptorOptions = {}) {}

  listen(): Promise<number> {
    const server = createServer({ noDelay: true }, (socket) => this.accept(socket))
    this.server = server
    this.timer = setInterval(() => {
      for (const s of this.sessions) s.tick()
    }, 100)
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
    for (const s of this.sockets) s.destroy()
    for (const store of this.stores.values()) store.close()
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()))
  }

  private accept(socket: Socket): void {
    this.counters.connections++
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
        socket.cork()
        session.receive(chunk)
        socket.uncork()
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
        onApp: (msg) => this.onApp(s, msg),
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

  private onApp(session: FixSession, msg: FixMessageView): void {
    if (msg.msgType !== MsgType.NewOrderSingle) return
    this.counters.orders++
    if (msg.char(Tag.PossDupFlag) === 0x59) this.counters.possDupOrders++
    const qty = msg.int(Tag.OrderQty)
    const price = msg.price(Tag.Price)
    const ordType = msg.char(Tag.OrdType)
    const maxQty = this.options.maxQty ?? 1_000_000
    const orderId = this.nextOrderId++
    const reject = qty <= 0 || qty > maxQty || (ordType === 0x32 && !(price > 0))
    const common = (w: FixWriter, execType: string, ordStatus: string) => {
      copyField(w, msg, Tag.ClOrdID)
      w.int(Tag.OrderID, orderId).int(Tag.ExecID, this.nextExecId++).str(Tag.ExecType, execType).str(Tag.OrdStatus, ordStatus)
      copyField(w, msg, Tag.Symbol)
      copyField(w, msg, Tag.Side)
      if (qty >= 0) w.int(Tag.OrderQty, qty)
    }
    if (reject) {
      session.sendApp('8', (w) => {
        common(w, '8', '8')
        w.int(Tag.LeavesQty, 0).int(Tag.CumQty, 0).int(Tag.AvgPx, 0).int(Tag.OrdRejReason, qty > maxQty ? 13 : 99)
      })
      this.counters.rejects++
      return
    }
    session.sendApp('8', (w) => {
      common(w, '0', '0')
      w.int(Tag.LeavesQty, qty).int(Tag.CumQty, 0).int(Tag.AvgPx, 0)
    })
    this.counters.acks++
    const fillEvery = this.options.fillEvery ?? 1
    if (fillEvery > 0 && orderId % fillEvery === 0) {
      session.sendApp('8', (w) => {
        common(w, 'F', '2')
        w.int(Tag.LastQty, qty)
        if (price > 0) w.price(Tag.LastPx, price)
        w.int(Tag.LeavesQty, 0).int(Tag.CumQty, qty)
        if (price > 0) w.price(Tag.AvgPx, price)
      })
      this.counters.fills++
    }
  }
}

function copyField(w: FixWriter, msg: FixMessageView, tag: number): void {
  const i = msg.indexOf(tag)
  if (i >= 0) w.bytes(tag, msg.buf, msg.valueStarts[i]!, msg.valueEnds[i]!)
}

/** Bytes a sniffing parser holds beyond the message it returned. */
function leftover(parser: FixParser): Buffer {
  const rest: Buffer[] = []
  // the parser exposes framed messages only: re-frame what is left by pulling messages out
  for (let m = parser.next(); m !== null; m = parser.next()) rest.push(m.copy())
  return Buffer.concat([...rest, parser.pendingBytes()])
}
