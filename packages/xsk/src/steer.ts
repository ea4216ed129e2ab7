import { UsageError } from '@kbx/errors'
import { encodeXskSlotKey } from '@kbx/ffi'
import type { XskSocket } from './socket.js'

/** Map operations steerTo needs; @kbx/bpf's BpfMap has them. */
export interface SteeringMap {
  readonly maxEntries: number
  update(key: Uint8Array, value: Uint8Array, flags?: 'any' | 'noexist' | 'exist'): void
  delete(key: Uint8Array): boolean
  keys(): IterableIterator<Buffer>
}

/** What steering needs of a socket: an XskSocket, or a socket whose fd another owner holds. */
export type SteeredSocket = Pick<XskSocket, 'fd' | 'ifindex' | 'queue' | 'iface' | 'hasRx'>

/** A loaded xdp_xsk_redirect object (@kbx/bpf's BpfObject). */
export interface SteeringObject {
  map(name: string): SteeringMap
}

function u32(value: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(value >>> 0)
  return b
}

/**
 * Points a program built on kbx_xsk_steer.h (xdp_xsk_redirect, ab_arbitrate, fix_steer) at these sockets: socket i goes to slot i of `xsks`, and
 * `xsk_slots` maps its (ifindex, queue) to i. Entries of earlier calls not in this set are removed, so
 * traffic of queues without a socket goes back to the kernel (XDP_PASS).
 */
export function steerTo(obj: SteeringObject, sockets: readonly SteeredSocket[]): void {
  const xsks = obj.map('xsks')
  const slots = obj.map('xsk_slots')
  if (sockets.length > xsks.maxEntries) {
    throw new UsageError(`${sockets.length} sockets do not fit the ${xsks.maxEntries} slots of xsks`, {
      op: 'steer AF_XDP sockets',
    })
  }
  const wanted = new Map<string, number>()
  sockets.forEach((socket, slot) => {
    if (!socket.hasRx) {
      throw new UsageError(`the socket on ${socket.iface} queue ${socket.queue} has no RX ring`, {
        op: 'steer AF_XDP sockets',
      })
    }
    const key = encodeXskSlotKey(socket.ifindex, socket.queue)
    if (wanted.has(key.toString('hex'))) {
      throw new UsageError(`two sockets for ${socket.iface} queue ${socket.queue}`, { op: 'steer AF_XDP sockets' })
    }
    wanted.set(key.toString('hex'), slot)
  })
  // Socket first, then its slot entry: the program never finds a slot whose socket is missing.
  sockets.forEach((socket, slot) => {
    xsks.update(u32(slot), u32(socket.fd))
    slots.update(encodeXskSlotKey(socket.ifindex, socket.queue), u32(slot))
  })
  for (const key of [...slots.keys()]) {
    if (!wanted.has(key.toString('hex'))) slots.delete(key)
  }
  for (let slot = sockets.length; slot < xsks.maxEntries; slot++) xsks.delete(u32(slot))
}
