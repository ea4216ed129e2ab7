import { LOGON_REFUSED } from './session.js'

/** Session ends that another logon cannot fix: the run ends with an error instead of reconnecting. */
const FATAL_CLOSE = /^(MsgSeqNum too low|CompID problem)/

/** Whether a session that closed for `reason` ends the run (else fix-tcp reconnects). */
export function endsTheRun(reason: string, retryRefusedLogon: boolean): boolean {
  return FATAL_CLOSE.test(reason) || (reason.startsWith(LOGON_REFUSED) && !retryRefusedLogon)
}

/** What the user can do about a run that ended with `failure`. */
export function failureHint(failure: string): string {
  if (failure.endsWith('(--no-reconnect)')) return 'without --no-reconnect, fix-tcp reconnects and logs on again'
  if (failure.startsWith(LOGON_REFUSED)) return 'check --sender/--target, the credentials (--credentials or KBX_FIX_USERNAME/KBX_FIX_PASSWORD), --logon-field and --fix-version; --retry-refused-logon retries with a backoff'
  return 'rerun with --reset to start both sides from sequence number 1'
}
