// ab-feed's MoldUDP64 request server (--serve-rerequests): a request (session, sequence, count) is answered
// by unicast to the address it came from, with downstream packets of the asked messages, rebuilt in C from
// their numbers (kbx_ab_feed_answer: ab-feed's payloads are a function of the number, so the history keeps
// no copies). Requests are rare: one native call per answer packet, from the event loop.
import { createSocket, type Socket } from 'node:dgram'
import type { IpPort } from '@kbx/cli'
import type { FeedFrameConfig } from './feed-frames.js'
import { KBX_AB_MOLD_REQUEST_SIZE } from './native.js'

/** An answer's payload: a 1500-byte MTU less the IPv4 and UDP headers. */
const ANSWER_CAPACITY = 1472

export interface RerequestCounters {
  requests: number
  /** Requests with nothing to answer: unknown session, a number not yet sent or older than the history. */
  unanswered: number
  malformed: number
  answerPackets: number
  messages: number
}

export class RerequestServer {
  readonly counters: RerequestCounters = { requests: 0, unanswered: 0, malformed: 0, answerPackets: 0, messages: 0 }
  /** Global plan items sent so far (every stream): numbers below it are served. */
  published = 0
  readonly #socket: Socket
  readonly #out = Buffer.alloc(ANSWER_CAPACITY)

  private constructor(
    socket: Socket,
    private readonly config: FeedFrameConfig,
    /** Numbers per stream served below the newest. */
    private readonly history: number,
  ) {
    this.#socket = socket
    socket.on('message', (msg, from) => this.#answer(msg, from.address, from.port))
  }

  /** Listens on the address (in the feeder's namespace). */
  static async listen(at: IpPort, config: FeedFrameConfig, history: number): Promise<RerequestServer> {
    const socket = createSocket('udp4')
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject)
      socket.bind(at.port, at.ip, () => {
        socket.off('error', reject)
        resolve()
      })
    })
    return new RerequestServer(socket, config, history)
  }

  close(): void {
    this.#socket.close()
  }

  #answer(msg: Buffer, address: string, port: number): void {
    this.counters.requests++
    if (msg.length !== KBX_AB_MOLD_REQUEST_SIZE) {
      this.counters.malformed++
      return
    }
    const request = Buffer.from(msg)
    let answered = 0
    for (;;) {
      const { payload, messages } = this.config.answer(request, this.published, this.history, this.#out)
      if (messages === 0) break
      this.#socket.send(Buffer.from(payload), port, address)
      this.counters.answerPackets++
      this.counters.messages += messages
      answered += messages
      request.writeBigUInt64BE(request.readBigUInt64BE(10) + BigInt(messages), 10)
      request.writeUInt16BE(request.readUInt16BE(18) - messages, 18)
    }
    if (answered === 0) this.counters.unanswered++
  }
}
