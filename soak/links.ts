/**
 * Frames a veth pair dropped. An AF_XDP socket in copy mode completes a TX frame once the kernel has taken
 * it, not once the peer received it: under load the veth pair drops frames, and only the interfaces'
 * dropped counters show it. The receiving veth's rx.dropped also counts the frames XDP redirected to an
 * AF_XDP socket that the socket dropped (no fill frame, ring full: measured equal to the socket's
 * rxDropped), so only what it counts beyond the socket's own drops was lost on the pair.
 */
import { execFileSync } from 'node:child_process'

export interface LinkDrops {
  rx: bigint
  tx: bigint
}

/** The interface's rx and tx dropped counters (stats64 of `ip -s -j link show`). */
export function linkDrops(netns: string | null, name: string): LinkDrops {
  const out = execFileSync('ip', [...(netns ? ['-n', netns] : []), '-s', '-j', 'link', 'show', 'dev', name], { encoding: 'utf8' })
  const stats = (JSON.parse(out) as Array<{ stats64: { rx: { dropped: number }; tx: { dropped: number } } }>)[0]!.stats64
  return { rx: BigInt(stats.rx.dropped), tx: BigInt(stats.tx.dropped) }
}

export interface VethDrops {
  /** The sending veth's tx.dropped since the start. */
  senderTx: bigint
  /** The receiving veth's rx.dropped since the start (the socket's drops included). */
  receiverRx: bigint
  /** Frames lost on the pair: senderTx + what receiverRx counts beyond the socket's drops. */
  lost: bigint
}

/** A veth pair's drop counters from now on: call the result at the end with the receiving sockets' drops. */
export function vethDropsFrom(sender: { netns: string | null; name: string }, receiver: { netns: string | null; name: string }): (socketDrops: bigint) => VethDrops {
  const before = { sender: linkDrops(sender.netns, sender.name), receiver: linkDrops(receiver.netns, receiver.name) }
  return (socketDrops) => vethDrops(linkDrops(sender.netns, sender.name).tx - before.sender.tx, linkDrops(receiver.netns, receiver.name).rx - before.receiver.rx, socketDrops)
}

/** Frames lost on a veth pair from its counters' deltas and the receiving sockets' drops. */
export function vethDrops(senderTx: bigint, receiverRx: bigint, socketDrops: bigint): VethDrops {
  return { senderTx, receiverRx, lost: senderTx + (receiverRx > socketDrops ? receiverRx - socketDrops : 0n) }
}
