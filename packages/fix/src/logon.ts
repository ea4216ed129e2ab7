// What fix-tcp's Logon carries beyond the session's own fields: the FIX version (FIX 5.0 SP2 runs over the
// FIXT.1.1 transport), venue credentials (Username 553, Password 554, from a file or the environment, never
// from argv), extra Logon fields (--logon-field TAG=VALUE) and header fields on every message (SenderSubID,
// TargetSubID, SenderLocationID). Pure: option values in, field lists out.
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs'
import { UsageError } from '@kbx/errors'

export const FIX_VERSIONS = ['4.4', '4.2', '5.0SP2'] as const
export type FixVersion = (typeof FIX_VERSIONS)[number]

export const LogonTag = {
  RawDataLength: 95,
  RawData: 96,
  Username: 553,
  Password: 554,
  DefaultApplVerID: 1137,
  SenderSubID: 50,
  TargetSubID: 57,
  SenderLocationID: 142,
} as const

/** DefaultApplVerID(1137) for FIX 5.0 SP2 (ApplVerID enumeration). */
export const APPL_VER_ID_FIX50SP2 = '9'

/** One field as tag and value, in the order it goes on the wire. */
export type FixField = readonly [tag: number, value: string]

export function beginStringOf(version: FixVersion): string {
  return version === '5.0SP2' ? 'FIXT.1.1' : `FIX.${version}`
}

/**
 * Tags no --logon-field may carry: the standard header and trailer (the session writes them), and the Logon
 * fields the session or another option sets (EncryptMethod, HeartBtInt, ResetSeqNumFlag, Username, Password,
 * DefaultApplVerID, and the header IDs of their own options).
 */
const RESERVED_LOGON_TAGS: ReadonlyMap<number, string> = new Map([
  [8, 'BeginString'],
  [9, 'BodyLength'],
  [10, 'CheckSum'],
  [35, 'MsgType'],
  [49, 'SenderCompID (--sender)'],
  [56, 'TargetCompID (--target)'],
  [34, 'MsgSeqNum'],
  [52, 'SendingTime'],
  [43, 'PossDupFlag'],
  [97, 'PossResend'],
  [122, 'OrigSendingTime'],
  [115, 'OnBehalfOfCompID'],
  [128, 'DeliverToCompID'],
  [116, 'OnBehalfOfSubID'],
  [129, 'DeliverToSubID'],
  [143, 'TargetLocationID'],
  [144, 'OnBehalfOfLocationID'],
  [145, 'DeliverToLocationID'],
  [90, 'SecureDataLen'],
  [91, 'SecureData'],
  [93, 'SignatureLength'],
  [89, 'Signature'],
  [347, 'MessageEncoding'],
  [369, 'LastMsgSeqNumProcessed'],
  [627, 'NoHops'],
  [1128, 'ApplVerID'],
  [1129, 'CstmApplVerID'],
  [1156, 'ApplExtID'],
  [50, 'SenderSubID (--sender-sub-id)'],
  [57, 'TargetSubID (--target-sub-id)'],
  [142, 'SenderLocationID (--sender-location-id)'],
  [98, 'EncryptMethod'],
  [108, 'HeartBtInt (--heartbeat)'],
  [141, 'ResetSeqNumFlag (--reset)'],
  [553, 'Username (--credentials or KBX_FIX_USERNAME)'],
  [554, 'Password (--credentials or KBX_FIX_PASSWORD)'],
  [1137, 'DefaultApplVerID (--fix-version 5.0SP2)'],
])

/** `TAG=VALUE` of --logon-field: a positive integer tag the session does not set itself, a value without SOH. */
export function parseLogonField(text: string): FixField {
  const m = /^([1-9][0-9]{0,8})=(.*)$/s.exec(text)
  if (m === null) throw new UsageError(`--logon-field: expected TAG=VALUE with a positive integer tag, got ${JSON.stringify(text)}`, { hint: 'e.g. --logon-field 96=token --logon-field 95=5 (repeat the option per field)' })
  const tag = Number(m[1])
  const value = m[2]!
  const reserved = RESERVED_LOGON_TAGS.get(tag)
  if (reserved !== undefined) throw new UsageError(`--logon-field ${tag}: ${reserved} is set by fix-tcp itself`, { hint: 'header and trailer fields, and Logon fields with an option of their own, cannot be given as --logon-field' })
  if (value.length === 0) throw new UsageError(`--logon-field ${tag}: empty value (FIX fields carry at least one byte)`)
  if (value.includes('\x01')) throw new UsageError(`--logon-field ${tag}: the value contains SOH (0x01), the field delimiter`)
  return [tag, value]
}

/** Commander's accumulator for the repeatable --logon-field. */
export function collectLogonField(text: string, previous: FixField[] | undefined): FixField[] {
  return [...(previous ?? []), parseLogonField(text)]
}

/**
 * The extra Logon fields in wire order: as given, except that RawData(96) follows its RawDataLength(95),
 * which is added when missing and must equal RawData's length in bytes when given.
 */
export function orderLogonFields(fields: readonly FixField[]): FixField[] {
  const seen = new Set<number>()
  for (const [tag] of fields) {
    if (seen.has(tag)) throw new UsageError(`--logon-field ${tag}: given twice`)
    seen.add(tag)
  }
  const rawData = fields.find(([tag]) => tag === LogonTag.RawData)
  const rawLength = fields.find(([tag]) => tag === LogonTag.RawDataLength)
  if (rawData === undefined) {
    if (rawLength !== undefined) throw new UsageError('--logon-field 95 (RawDataLength) without 96 (RawData)')
    return [...fields]
  }
  const bytes = Buffer.byteLength(rawData[1], 'latin1')
  if (rawLength !== undefined && rawLength[1] !== String(bytes)) throw new UsageError(`--logon-field 95=${rawLength[1]}: RawData (96) is ${bytes} bytes`, { hint: 'leave 95 out: fix-tcp computes it' })
  const out: FixField[] = []
  for (const field of fields) {
    if (field[0] === LogonTag.RawDataLength) continue
    if (field[0] === LogonTag.RawData) out.push([LogonTag.RawDataLength, String(bytes)])
    out.push(field)
  }
  return out
}

export interface Credentials {
  username?: string
  password?: string
}

/**
 * `--credentials FILE`: lines `username=…` and `password=…` (blank lines and `#` comments ignored). The file
 * must not be readable or writable by group or others (like ssh's keys): a usage error names its mode.
 */
export function readCredentialsFile(path: string): Credentials {
  let fd: number
  try {
    fd = openSync(path, 'r') // the mode checked and the bytes read through one descriptor: the same file
  } catch (err) {
    throw new UsageError(`--credentials ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { hint: 'a file with lines username=… and password=…' })
  }
  try {
    const st = fstatSync(fd)
    if (!st.isFile()) throw new UsageError(`--credentials ${path}: not a regular file`)
    const mode = st.mode & 0o777
    if ((mode & 0o077) !== 0) throw new UsageError(`--credentials ${path}: mode ${mode.toString(8).padStart(4, '0')} lets group or others access it`, { hint: `chmod 600 ${path}` })
    return parseCredentials(readFileSync(fd, 'utf8'), path)
  } catch (err) {
    if (err instanceof UsageError) throw err
    throw new UsageError(`--credentials ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { hint: 'a file with lines username=… and password=…' })
  } finally {
    closeSync(fd)
  }
}

export function parseCredentials(text: string, source: string): Credentials {
  const out: Credentials = {}
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.replace(/\r$/, '')
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue
    const eq = line.indexOf('=')
    const key = eq < 0 ? '' : line.slice(0, eq).trim()
    if (key !== 'username' && key !== 'password') throw new UsageError(`--credentials ${source}, line ${i + 1}: expected username=… or password=…`, { hint: 'the line itself is not shown: it may hold a secret' })
    if (out[key] !== undefined) throw new UsageError(`--credentials ${source}, line ${i + 1}: ${key} given twice`)
    out[key] = checkSecret(line.slice(eq + 1), `--credentials ${source}: ${key}`)
  }
  if (out.username === undefined && out.password === undefined) throw new UsageError(`--credentials ${source}: neither username nor password in it`)
  return out
}

/** KBX_FIX_USERNAME and KBX_FIX_PASSWORD (unset or empty: absent). */
export function credentialsFromEnv(env: NodeJS.ProcessEnv): Credentials {
  const out: Credentials = {}
  if (env.KBX_FIX_USERNAME) out.username = checkSecret(env.KBX_FIX_USERNAME, 'KBX_FIX_USERNAME')
  if (env.KBX_FIX_PASSWORD) out.password = checkSecret(env.KBX_FIX_PASSWORD, 'KBX_FIX_PASSWORD')
  return out
}

function checkSecret(value: string, what: string): string {
  if (value.length === 0) throw new UsageError(`${what}: empty`)
  if (value.includes('\x01')) throw new UsageError(`${what}: contains SOH (0x01), the FIX field delimiter`)
  return value
}

/** The credentials: --credentials FILE, else the environment; both given is a usage error (which one wins?). */
export function resolveCredentials(file: string | undefined, env: NodeJS.ProcessEnv): Credentials {
  const fromEnv = credentialsFromEnv(env)
  if (file === undefined) return fromEnv
  if (fromEnv.username !== undefined || fromEnv.password !== undefined) throw new UsageError('--credentials and KBX_FIX_USERNAME/KBX_FIX_PASSWORD both given', { hint: 'use one source of credentials' })
  return readCredentialsFile(file)
}

export interface LogonSetup {
  version: FixVersion
  credentials?: Credentials
  /** --logon-field values, as parsed. */
  extra?: readonly FixField[]
}

/** Fields of the Logon after EncryptMethod, HeartBtInt and ResetSeqNumFlag, in wire order. */
export function logonFields(setup: LogonSetup): FixField[] {
  const out: FixField[] = []
  if (setup.version === '5.0SP2') out.push([LogonTag.DefaultApplVerID, APPL_VER_ID_FIX50SP2])
  if (setup.credentials?.username !== undefined) out.push([LogonTag.Username, setup.credentials.username])
  if (setup.credentials?.password !== undefined) out.push([LogonTag.Password, setup.credentials.password])
  out.push(...orderLogonFields(setup.extra ?? []))
  return out
}

export interface HeaderIds {
  senderSubId?: string
  targetSubId?: string
  senderLocationId?: string
}

/** SenderSubID(50), TargetSubID(57), SenderLocationID(142): in the header of every message we send. */
export function headerFields(ids: HeaderIds): FixField[] {
  const out: FixField[] = []
  if (ids.senderSubId !== undefined) out.push([LogonTag.SenderSubID, checkId(ids.senderSubId, '--sender-sub-id')])
  if (ids.targetSubId !== undefined) out.push([LogonTag.TargetSubID, checkId(ids.targetSubId, '--target-sub-id')])
  if (ids.senderLocationId !== undefined) out.push([LogonTag.SenderLocationID, checkId(ids.senderLocationId, '--sender-location-id')])
  return out
}

function checkId(value: string, option: string): string {
  if (value.length === 0 || value.length > 63 || value.includes('\x01')) throw new UsageError(`${option}: expected 1–63 bytes without SOH, got ${JSON.stringify(value)}`)
  return value
}

/** Tags whose values never reach a log or an event. */
const SECRET_TAGS = new Set<number>([LogonTag.Password, LogonTag.RawData, 91, 89])

/** A readable form of a message for debug output: SOH as `|`, Password, RawData and signatures as `***`. */
export function redactMessage(bytes: Uint8Array): string {
  return Buffer.from(bytes)
    .toString('latin1')
    .split('\x01')
    .map((field) => {
      const eq = field.indexOf('=')
      return eq > 0 && SECRET_TAGS.has(Number(field.slice(0, eq))) ? `${field.slice(0, eq)}=***` : field
    })
    .join('|')
}
