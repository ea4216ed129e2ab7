import { check } from '../verdict.js'
import type { Check } from '../verdict.js'

interface UmemAccounting {
  total: number
  free: number
  fill: number
  rx: number
  tx: number
  user: number
}

/** Every UMEM frame accounted at the end: total == free + fill + rx + tx + user (a missing report is a failed check). */
export function umemChecks(owner: string, umem: UmemAccounting | undefined): Check[] {
  if (umem === undefined) return [check(`${owner} UMEM reported`, 'missing', 'an accounting')]
  const { total, free, fill, rx, tx, user } = umem
  return [check(`${owner} UMEM total == free + fill + rx + tx + user`, total, free + fill + rx + tx + user)]
}
