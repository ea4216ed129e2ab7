// FIX session layer (FIX.4.4 / 4.2), transport-agnostic: bytes in through receive(), bytes out through
// the `send` callback, time through tick(). Runs per received batch of bytes, not per packet.
import { FixParser, FixWriter, MsgType, Tag, UtcClock } from './codec.js'
import type { FixMessageView } from './codec.js'
import type { SeqStore } from './store.js'
import type { MessageThrottle } from './throttle.js'

/** The start of the close reason when the peer answers our Logon with a Logout. */
export const LOGON_REFUSED = 'logon refused'

const DEFAULT_APPL_VER_ID = 1137

export type SessionRole = 'initiator' | 'acceptor'
export type SessionState = 'idle' | 'logon-sent' | 'awaiting-logon' | 'active' | 'logout-sent' | 'closed'

export interface SessionEvent {
  event: 'logon' | 'logout' | 'resend-request-sent' | 'resend' | 'gap-fill' | 'sequence-reset' | 'test-request' | 'reject' | 'frame-error' | 'seq-too-low' | 'timeout'
  [key: string]: unknown
}

export interface SessionOptions {
  role: SessionRole
  senderCompId: string
  targetCompId: string
  beginString?: string
  /** Seconds; the initiator proposes it, the acceptor adopts the initiator's. */
  heartBtInt?: number
  /** Initiator: send ResetSeqNumFlag(141)=Y on Logon and start both sides from 1. */
  resetOnLogon?: boolean
  /** Fields of our Logon after EncryptMethod, HeartBtInt and ResetSeqNumFlag (credentials, DefaultApplVerID, …). */
  logonFields?: readonly (readonly [number, string])[]
  /** Fields in the header of every message we send, after TargetCompID (SenderSubID, TargetSubID, …). */
  headerFields?: readonly (readonly [number, string])[]
  store: SeqStore
  /** Gets a view valid only during the call: copy it if you keep it. */
  send: (bytes: Buffer) => void
  onApp?: (msg: FixMessageView) => void
  onEvent?: (e: SessionEvent) => void
  /** The session ended (logout complete, fatal protocol error or timeout): close the transport. */
  onClose?: (reason: string) => void
  /** Milliseconds; default Date.now. */
  now?: () => number
  /** Default true; false (a test hook) never sends Heartbeats on its own (TestRequests still answered). */
  heartbeats?: boolean
  /** App messages kept for resending (older ones are gap-filled). */
  resendCapacity?: number
  /**
   * Where they are kept: by default the session's own map; an acceptor passes one per counterparty so a
   * session on a new connection can still resend what the previous connection's session sent.
   */
  resendStore?: ResendStore
  /**
   * Default true: receive() saves the store. false: the caller calls store.save() once the replies to what
   * it received are on the wire, keeping the file write (write + rename) off the reply path.
   */
  saveOnReceive?: boolean
  /** --max-msg-rate: application messages over the limit are held or not sent (sendApp's return says which). */
  throttle?: MessageThrottle
}

/** sendApp's answer when the throttle held the message for a later window (queue mode). */
export const THROTTLE_QUEUED = 0
/** sendApp's answer when the throttle did not send the message (reject mode, or the queue full). */
export const THROTTLE_REJECTED = -1

interface HeldMessage {
  msgType: string
  fill: (w: FixWriter) => void
}

export interface StoredMessage {
  msgType: string
  body: Buffer
  sendingTime: Buffer
}

/** Sent application messages by MsgSeqNum, oldest first. */
export type ResendStore = Map<number, StoredMessage>

export interface SessionCounters {
  sent: number
  received: number
  heartbeatsSent: number
  testRequestsSent: number
  resendRequestsSent: number
  resendRequestsReceived: number
  messagesResent: number
  gapFillsSent: number
  gapFillsReceived: number
  rejectsReceived: number
  duplicatesIgnored: number
  messagesDroppedInGap: number
}

export class FixSession {
  state: SessionState = 'idle'
  readonly parser = new FixParser()
  readonly counters: SessionCounters = {
    sent: 0,
    received: 0,
    heartbeatsSent: 0,
    testRequestsSent: 0,
    resendRequestsSent: 0,
    resendRequestsReceived: 0,
    messagesResent: 0,
    gapFillsSent: 0,
    gapFillsReceived: 0,
    rejectsReceived: 0,
    duplicatesIgnored: 0,
    messagesDroppedInGap: 0,
  }
  heartBtInt: number
  private readonly writer: FixWriter
  private readonly clock = new UtcClock()
  private readonly sender: Buffer
  private readonly target: Buffer
  private readonly sent: ResendStore
  private readonly now: () => number
  private lastSentMs = 0
  private lastReceivedMs = 0
  private stateSinceMs = 0
  private testReqOutstanding: string | undefined
  private testReqSentMs = 0
  private testReqCounter = 0
  /** While > 0: a ResendRequest (EndSeqNo 0: everything) is out; the highest seq seen since, to be replayed. */
  private resendUpTo = 0
  /** Test hook: skip this outgoing sequence number once (the counterparty sees a gap). */
  skipOutgoingSeq = 0
  /** Application messages the throttle holds (queue mode), oldest first; built and numbered when released. */
  private readonly held: HeldMessage[] = []

  constructor(readonly options: SessionOptions) {
    this.writer = new FixWriter(options.beginString ?? 'FIX.4.4')
    this.sender = Buffer.from(options.senderCompId, 'latin1')
    this.target = Buffer.from(options.targetCompId, 'latin1')
    this.heartBtInt = options.heartBtInt ?? 30
    this.now = options.now ?? Date.now
    this.sent = options.resendStore ?? new Map()
    this.parser.onError = (error, offset) => this.emit({ event: 'frame-error', error, offset })
    if (options.role === 'acceptor') this.setState('awaiting-logon')
  }

  get store(): SeqStore {
    return this.options.store
  }

  get active(): boolean {
    return this.state === 'active'
  }

  private emit(e: SessionEvent): void {
    this.options.onEvent?.(e)
  }

  private setState(s: SessionState): void {
    this.state = s
    this.stateSinceMs = this.now()
  }

  /**
   * Initiator: sends Logon. reset (default: the resetOnLogon option) sends ResetSeqNumFlag=Y and starts both
   * sides from 1; a logon again after a reconnection passes false and resumes the sequence numbers.
   */
  start(reset = this.options.resetOnLogon === true): void {
    if (this.options.role !== 'initiator') throw new Error('only an initiator starts a session')
    if (reset) {
      this.store.reset()
      this.sent.clear() // numbers start again: nothing sent before can be resent under them
    }
    this.lastReceivedMs = this.now()
    this.sendLogon(reset)
    this.setState('logon-sent')
  }

  /**
   * Initiator, after the transport was lost and made again: a fresh byte stream (partial messages of the old
   * one dropped), timers and the outstanding TestRequest/ResendRequest forgotten, then Logon with the stored
   * sequence numbers. Messages kept for resending stay: the peer's ResendRequest after the Logon gets them
   * again with PossDupFlag (FIX session rules), the rest gap-filled.
   */
  restart(): void {
    this.parser.reset()
    this.testReqOutstanding = undefined
    this.resendUpTo = 0
    this.setState('idle')
    this.start(false)
  }

  private sendLogon(reset: boolean): void {
    const w = this.header('A')
    w.int(Tag.EncryptMethod, 0).int(Tag.HeartBtInt, this.heartBtInt)
    if (reset) w.str(Tag.ResetSeqNumFlag, 'Y')
    for (const [tag, value] of this.options.logonFields ?? []) w.str(tag, value)
    this.transmit()
  }

  /** Starts a message with the standard header and the next sequence number. */
  private header(msgType: string, seq = this.nextSeq(), possDup?: Buffer): FixWriter {
    const w = this.writer.begin(msgType)
    w.bytes(Tag.SenderCompID, this.sender).bytes(Tag.TargetCompID, this.target)
    for (const [tag, value] of this.options.headerFields ?? []) w.str(tag, value)
    w.int(Tag.MsgSeqNum, seq)
    w.bytes(Tag.SendingTime, this.clock.now(this.now()))
    if (possDup !== undefined) w.str(Tag.PossDupFlag, 'Y').bytes(Tag.OrigSendingTime, possDup)
    return w
  }

  private nextSeq(): number {
    if (this.skipOutgoingSeq !== 0 && this.store.nextSenderSeq === this.skipOutgoingSeq) {
      this.skipOutgoingSeq = 0
      this.store.nextSenderSeq++
    }
    return this.store.nextSenderSeq++
  }

  private transmit(app = false): void {
    const bytes = this.writer.finish()
    this.counters.sent++
    this.lastSentMs = this.now()
    if (!app) this.options.throttle?.admin(this.lastSentMs)
    this.options.send(bytes)
  }

  /** Application messages the throttle holds now. */
  get heldCount(): number {
    return this.held.length
  }

  /**
   * Sends an application message: `fill` adds the body fields after the header (called when it is built: later
   * if the throttle holds it). Kept for resending. Returns its sequence number, or THROTTLE_QUEUED (held, sent
   * by releaseHeld() when the window allows) or THROTTLE_REJECTED (not sent).
   */
  sendApp(msgType: string, fill: (w: FixWriter) => void): number {
    const throttle = this.options.throttle
    if (throttle !== undefined) {
      const now = this.now()
      if (this.held.length > 0) this.releaseHeld()
      if (this.held.length > 0 || !throttle.tryTake(now)) {
        if (throttle.options.mode === 'reject' || this.held.length >= throttle.queueCapacity) {
          throttle.counters.rejected++
          if (throttle.options.mode === 'queue') throttle.counters.queueFull++
          return THROTTLE_REJECTED
        }
        this.held.push({ msgType, fill })
        throttle.counters.queued++
        if (this.held.length > throttle.counters.maxQueueDepth) throttle.counters.maxQueueDepth = this.held.length
        return THROTTLE_QUEUED
      }
    }
    return this.build(msgType, fill)
  }

  /** Held messages the window has room for now, oldest first (while logged on). Returns how many went. */
  releaseHeld(): number {
    const throttle = this.options.throttle
    if (throttle === undefined || this.state !== 'active') return 0
    let n = 0
    while (n < this.held.length && throttle.tryTake(this.now())) {
      const m = this.held[n++]!
      this.build(m.msgType, m.fill)
    }
    this.held.splice(0, n)
    throttle.counters.released += n
    return n
  }

  private build(msgType: string, fill: (w: FixWriter) => void): number {
    const seq = this.nextSeq()
    const w = this.header(msgType, seq)
    const sendingTime = Buffer.from(this.clock.now(this.now()))
    const mark = w.mark()
    fill(w)
    this.keepForResend(seq, { msgType, body: w.bodySince(mark), sendingTime })
    this.transmit(true)
    return seq
  }

  private keepForResend(seq: number, message: StoredMessage): void {
    const capacity = this.options.resendCapacity ?? 65536
    if (capacity <= 0) return
    this.sent.set(seq, message)
    if (this.sent.size > capacity) this.sent.delete(this.sent.keys().next().value as number)
  }

  /**
   * An application message someone else sent on this session with our next sequence number (the native
   * reflex): recorded as if sendApp had sent it — the number taken, the message kept for resending. body:
   * the fields after SendingTime, before CheckSum. Call before receive() of the bytes it answered.
   */
  adoptSent(seq: number, msgType: string, body: Buffer, sendingTime: Buffer): void {
    if (seq !== this.store.nextSenderSeq) throw new Error(`adopted message has MsgSeqNum ${seq}, the session's next is ${this.store.nextSenderSeq}`)
    this.store.nextSenderSeq = seq + 1
    this.keepForResend(seq, { msgType, body, sendingTime })
    this.counters.sent++
    this.lastSentMs = this.now()
  }

  /** No ResendRequest of ours outstanding (messages are arriving in sequence). */
  get inSequence(): boolean {
    return this.resendUpTo === 0
  }

  logout(text?: string): void {
    if (this.state === 'closed' || this.state === 'logout-sent') return
    const w = this.header('5')
    if (text !== undefined) w.str(Tag.Text, text)
    this.transmit()
    this.setState('logout-sent')
  }

  /** Bytes from the transport (any split). */
  receive(chunk: Uint8Array): void {
    this.parser.push(chunk)
    for (let msg = this.parser.next(); msg !== null && this.state !== 'closed'; msg = this.parser.next()) this.handle(msg)
    if (this.options.saveOnReceive !== false) this.store.save()
  }

  private close(reason: string): void {
    if (this.state === 'closed') return
    this.setState('closed')
    this.store.save()
    this.options.onClose?.(reason)
  }

  /** The transport went away. */
  disconnected(): void {
    if (this.state === 'closed') return
    this.setState('closed')
    this.store.save()
  }

  private compIdsMatch(msg: FixMessageView): boolean {
    return fieldEquals(msg, Tag.SenderCompID, this.target) && fieldEquals(msg, Tag.TargetCompID, this.sender)
  }

  private handle(msg: FixMessageView): void {
    this.counters.received++
    this.lastReceivedMs = this.now()
    const type = msg.msgType
    if (!this.compIdsMatch(msg)) {
      this.emit({ event: 'reject', reason: 'CompID problem', sender: msg.string(Tag.SenderCompID), target: msg.string(Tag.TargetCompID) })
      this.logout('CompID problem')
      this.close('CompID problem')
      return
    }
    if (this.state === 'awaiting-logon' && type !== MsgType.Logon) {
      this.close('first message was not a Logon')
      return
    }
    const seq = msg.int(Tag.MsgSeqNum)
    const store = this.store

    if (type === MsgType.Logon) {
      if (msg.char(Tag.ResetSeqNumFlag) === 0x59) {
        store.nextTargetSeq = 1
        if (this.options.role === 'acceptor') {
          store.nextSenderSeq = 1
          this.sent.clear()
        }
      }
      if (this.options.role === 'acceptor') {
        const hb = msg.int(Tag.HeartBtInt)
        if (hb > 0) this.heartBtInt = hb
        this.sendLogon(msg.char(Tag.ResetSeqNumFlag) === 0x59)
      }
      this.setState('active')
      const applVer = msg.string(DEFAULT_APPL_VER_ID) // FIXT.1.1: the application version the peer speaks by default
      this.emit({ event: 'logon', seq, nextSenderSeq: store.nextSenderSeq, nextTargetSeq: store.nextTargetSeq, heartBtInt: this.heartBtInt, reset: msg.char(Tag.ResetSeqNumFlag) === 0x59, ...(applVer === undefined ? {} : { defaultApplVerId: applVer }) })
    }

    if (type === MsgType.SequenceReset && msg.char(Tag.GapFillFlag) !== 0x59) {
      const newSeq = msg.int(Tag.NewSeqNo)
      this.emit({ event: 'sequence-reset', from: store.nextTargetSeq, to: newSeq })
      if (newSeq > 0) store.nextTargetSeq = newSeq
      return
    }

    if (seq > store.nextTargetSeq) {
      // a gap: ask for what is missing (once per gap), act on the messages that cannot wait
      const outstanding = this.resendUpTo !== 0
      if (seq > this.resendUpTo) this.resendUpTo = seq
      if (!outstanding) {
        const w = this.header('2')
        w.int(Tag.BeginSeqNo, store.nextTargetSeq).int(Tag.EndSeqNo, 0)
        this.transmit()
        this.counters.resendRequestsSent++
        this.emit({ event: 'resend-request-sent', begin: store.nextTargetSeq, end: 0, received: seq })
      }
      if (type === MsgType.ResendRequest) this.answerResendRequest(msg)
      else if (type === MsgType.Logout) this.handleLogout(msg)
      else if (type !== MsgType.Logon) this.counters.messagesDroppedInGap++
      return
    }
    if (seq < store.nextTargetSeq) {
      if (msg.char(Tag.PossDupFlag) === 0x59) {
        this.counters.duplicatesIgnored++
        return
      }
      const text = `MsgSeqNum too low, expecting ${store.nextTargetSeq} but received ${seq}`
      this.emit({ event: 'seq-too-low', expected: store.nextTargetSeq, received: seq })
      this.logout(text)
      this.close(text)
      return
    }
    store.nextTargetSeq = seq + 1
    if (this.resendUpTo !== 0 && store.nextTargetSeq > this.resendUpTo) this.resendUpTo = 0

    switch (type) {
      case MsgType.Logon:
        return
      case MsgType.Heartbeat:
        if (this.testReqOutstanding !== undefined && msg.string(Tag.TestReqID) === this.testReqOutstanding) this.testReqOutstanding = undefined
        return
      case MsgType.TestRequest: {
        const id = msg.string(Tag.TestReqID) ?? ''
        const w = this.header('0')
        w.str(Tag.TestReqID, id)
        this.transmit()
        this.counters.heartbeatsSent++
        return
      }
      case MsgType.ResendRequest:
        this.answerResendRequest(msg)
        return
      case MsgType.SequenceReset: {
        const newSeq = msg.int(Tag.NewSeqNo)
        this.counters.gapFillsReceived++
        this.emit({ event: 'gap-fill', direction: 'received', from: seq, to: newSeq })
        if (newSeq > store.nextTargetSeq) store.nextTargetSeq = newSeq
        if (this.resendUpTo !== 0 && store.nextTargetSeq > this.resendUpTo) this.resendUpTo = 0
        return
      }
      case MsgType.Reject:
        this.counters.rejectsReceived++
        this.emit({ event: 'reject', refSeqNum: msg.int(Tag.RefSeqNum), text: msg.string(Tag.Text) })
        return
      case MsgType.Logout:
        this.handleLogout(msg)
        return
      default:
        this.options.onApp?.(msg)
    }
  }

  private handleLogout(msg: FixMessageView): void {
    const text = msg.string(Tag.Text)
    const refused = this.state === 'logon-sent'
    if (this.state !== 'logout-sent') {
      this.header('5')
      this.transmit()
    }
    this.emit({ event: 'logout', initiatedBy: this.state === 'logout-sent' ? 'us' : 'peer', ...(text === undefined ? {} : { text }), ...(refused ? { logonRefused: true } : {}), nextSenderSeq: this.store.nextSenderSeq, nextTargetSeq: this.store.nextTargetSeq })
    this.close(refused ? `${LOGON_REFUSED}: ${text ?? 'Logout without Text(58)'}` : 'logout')
  }

  private answerResendRequest(msg: FixMessageView): void {
    const begin = Math.max(1, msg.int(Tag.BeginSeqNo))
    const requestedEnd = msg.int(Tag.EndSeqNo)
    const last = this.store.nextSenderSeq - 1
    const end = requestedEnd <= 0 || requestedEnd > last ? last : requestedEnd
    this.counters.resendRequestsReceived++
    let resent = 0
    let gapFilled = 0
    let gapStart = 0
    const flushGap = (upTo: number) => {
      if (gapStart === 0) return
      const w = this.header('4', gapStart, this.clock.now(this.now()))
      w.str(Tag.GapFillFlag, 'Y').int(Tag.NewSeqNo, upTo)
      this.transmit()
      this.counters.gapFillsSent++
      gapFilled += upTo - gapStart
      gapStart = 0
    }
    for (let s = begin; s <= end; s++) {
      const stored = this.sent.get(s)
      if (stored === undefined) {
        if (gapStart === 0) gapStart = s
        continue
      }
      flushGap(s)
      const w = this.header(stored.msgType, s, stored.sendingTime)
      w.raw(stored.body)
      this.transmit()
      resent++
    }
    flushGap(end + 1)
    this.counters.messagesResent += resent
    this.emit({ event: 'resend', begin, end, resent, gapFilled })
    if (gapFilled > 0) this.emit({ event: 'gap-fill', direction: 'sent', begin, end, gapFilled })
  }

  /** Timers: heartbeats, TestRequest on silence, logon/logout timeouts. Call every ~100 ms. */
  tick(): void {
    const now = this.now()
    const hbMs = this.heartBtInt * 1000
    if (this.state === 'logon-sent' || this.state === 'awaiting-logon') {
      if (now - this.stateSinceMs > Math.max(10_000, hbMs)) {
        this.emit({ event: 'timeout', waitingFor: 'logon' })
        this.close('logon timeout')
      }
      return
    }
    if (this.state === 'logout-sent') {
      if (now - this.stateSinceMs > 2000) this.close('logout timeout')
      return
    }
    if (this.state !== 'active') return
    if (this.testReqOutstanding !== undefined) {
      if (now - this.testReqSentMs > hbMs) {
        this.emit({ event: 'timeout', waitingFor: 'heartbeat', testReqId: this.testReqOutstanding })
        this.logout('TestRequest not answered')
        this.close('TestRequest not answered')
        return
      }
    } else if (now - this.lastReceivedMs > hbMs * 1.2) {
      const id = `T${++this.testReqCounter}`
      const w = this.header('1')
      w.str(Tag.TestReqID, id)
      this.transmit()
      this.testReqOutstanding = id
      this.testReqSentMs = now
      this.counters.testRequestsSent++
      this.emit({ event: 'test-request', testReqId: id, silentMs: now - this.lastReceivedMs })
    }
    this.releaseHeld()
    if (this.options.heartbeats !== false && now - this.lastSentMs >= hbMs) {
      this.header('0')
      this.transmit()
      this.counters.heartbeatsSent++
    }
    this.store.save()
  }
}

function fieldEquals(msg: FixMessageView, tag: number, expected: Buffer): boolean {
  const i = msg.indexOf(tag)
  if (i < 0) return false
  const s = msg.valueStarts[i]!
  const e = msg.valueEnds[i]!
  if (e - s !== expected.length) return false
  for (let k = 0; k < expected.length; k++) if (msg.buf[s + k] !== expected[k]) return false
  return true
}
