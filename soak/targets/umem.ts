import type { KbxUmemAccountingValue } from '@kbx/ffi'
import { check } from '../verdict.js'
import type { Check } from '../verdict.js'

/** The fields of the tools' reported `umem` (struct kbx_umem_accounting) that the check needs. */
type UmemAccounting = Pick<KbxUmemAccountingValue, 'total' | 'free' | 'fill' | 'rx' | 'tx' | 'user'>

/** Every UMEM frame accounted at the end: total == free + fill + rx + tx + user (a missing report is a failed check). */
export function umemChecks(owner: string, umem: UmemAccounting | undefined): Check[] {
  if (umem === undefined) return [check(`${owner} UMEM reported`, 'missing', 'an accounting')]
  const { total, free, fill, rx, tx, user } = umem
  return [check(`${owner} UMEM total == free + fill + rx + tx + user`, total, free + fill + rx + tx + user)]
}
