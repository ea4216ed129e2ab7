// fix-tcp's Logon beyond the session's fields: --fix-version 5.0SP2 (FIXT.1.1, DefaultApplVerID), credentials
// from a 0600 file or the environment (never argv), --logon-field validation and RawData ordering, header IDs
// on every message, the option parsing on fix-tcp's command line, redaction, and the Logon on the wire.
import t from 'tap'
import type { Test } from 'tap'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runTool } from '@kbx/cli'
import type { ToolContext } from '@kbx/cli'
import { UsageError } from '@kbx/errors'
import { FixParser, Tag, buildMessage } from './codec.js'
import { TOOL, fixTcpOptions, resolveLogon } from './client.js'
import type { FixTcpOptions } from './client.js'
import { beginStringOf, logonFields, orderLogonFields, parseCredentials, parseLogonField, readCredentialsFile, redactMessage, resolveCredentials } from './logon.js'
import { FixSession } from './session.js'
import { MemorySeqStore } from './store.js'

async function parse(argv: string[]): Promise<{ code: number; opts: FixTcpOptions | undefined }> {
  let opts: FixTcpOptions | undefined
  const code = await runTool({ tool: TOOL, argv: [...argv, '--log-level', 'silent'], options: fixTcpOptions, run: (ctx: ToolContext<FixTcpOptions>) => void (opts = ctx.opts), exit: false, jsonOut: { write: () => true } })
  return { code, opts }
}

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'kbx-logon-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

function caught(fn: () => unknown): UsageError | undefined {
  try {
    fn()
  } catch (e) {
    return e as UsageError
  }
  return undefined
}

function credentialsFile(dir: string, text: string, mode: number): string {
  const path = join(dir, `cred-${mode.toString(8)}`)
  writeFileSync(path, text)
  chmodSync(path, mode)
  return path
}

t.test('--fix-version: 4.4 (default), 4.2, 5.0SP2 (FIXT.1.1); anything else a usage error', async (t) => {
  t.equal((await parse([])).opts?.fixVersion, '4.4')
  t.equal((await parse(['--fix-version', '5.0SP2'])).opts?.fixVersion, '5.0SP2')
  t.equal((await parse(['--fix-version', '4.3'])).code, 2)
  t.equal(beginStringOf('4.4'), 'FIX.4.4')
  t.equal(beginStringOf('4.2'), 'FIX.4.2')
  t.equal(beginStringOf('5.0SP2'), 'FIXT.1.1')
  t.same(logonFields({ version: '5.0SP2' }), [[1137, '9']], 'DefaultApplVerID 9 (FIX50SP2) on the Logon')
  t.same(logonFields({ version: '4.4' }), [])
})

t.test('--logon-field: repeatable TAG=VALUE, validated, RawDataLength put before RawData', async (t) => {
  const { code, opts } = await parse(['--logon-field', '96=s3cr3t', '--logon-field', '1408=1.0'])
  t.equal(code, 0)
  t.same(opts?.logonField, [[96, 's3cr3t'], [1408, '1.0']])
  t.same(orderLogonFields(opts!.logonField!), [[95, '6'], [96, 's3cr3t'], [1408, '1.0']], 'RawDataLength computed, in front of RawData')
  t.same(orderLogonFields([[96, 'abc'], [95, '3']]), [[95, '3'], [96, 'abc']], 'a given RawDataLength moved in front')
  t.same(parseLogonField('58=a=b'), [58, 'a=b'], 'the value may contain =')
  for (const bad of ['x=1', '0=1', '-5=1', '=1', '96', '96=', '1.5=2', '35=A', '49=X', '9=10', '10=000', '34=1', '52=x', '553=u', '554=p', '108=5', '141=Y', '1137=9', '50=S', '1128=9', '98=0', `58=a\x01b`]) {
    t.throws(() => parseLogonField(bad), UsageError, JSON.stringify(bad))
  }
  t.throws(() => orderLogonFields([[95, '4'], [96, 'abc']]), /RawData \(96\) is 3 bytes/)
  t.throws(() => orderLogonFields([[95, '4']]), /without 96/)
  t.throws(() => orderLogonFields([[58, 'a'], [58, 'b']]), /given twice/)
  t.equal((await parse(['--logon-field', '553=me'])).code, 2, 'Username only from --credentials or the environment')
  t.equal((await parse(['--logon-field', 'abc'])).code, 2)
})

t.test('credentials: a 0600 file, or the environment; never argv; both a usage error', async (t) => {
  const dir = tempDir(t)
  const good = credentialsFile(dir, '# venue UAT\nusername=trader1\npassword=p@ss=word \n', 0o600)
  t.same(readCredentialsFile(good), { username: 'trader1', password: 'p@ss=word ' }, 'everything after the first = is the value')
  for (const mode of [0o640, 0o604, 0o660, 0o644]) {
    const path = credentialsFile(dir, 'username=u\npassword=p\n', mode)
    const err = caught(() => readCredentialsFile(path))
    t.type(err, UsageError, `mode ${mode.toString(8)}`)
    t.match(err?.message, new RegExp(`mode 0${mode.toString(8)} lets group or others`))
    t.equal(err?.hint, `chmod 600 ${path}`)
  }
  t.doesNotThrow(() => readCredentialsFile(credentialsFile(dir, 'password=p\n', 0o400)), 'read-only by the owner is fine')
  t.throws(() => readCredentialsFile(join(dir, 'missing')), /ENOENT/)
  t.throws(() => readCredentialsFile(dir), /not a regular file/)
  const badLine = caught(() => parseCredentials('user=x\n', 'f'))
  t.type(badLine, UsageError)
  t.notMatch(badLine?.message, /user=x/, 'a bad line is not echoed')
  t.throws(() => parseCredentials('username=a\nusername=b\n', 'f'), /given twice/)
  t.throws(() => parseCredentials('\n# nothing\n', 'f'), /neither/)
  t.throws(() => parseCredentials('password=a\x01b\n', 'f'), /SOH/)
  t.same(resolveCredentials(undefined, { KBX_FIX_USERNAME: 'envuser', KBX_FIX_PASSWORD: 'envpass' }), { username: 'envuser', password: 'envpass' })
  t.same(resolveCredentials(undefined, { KBX_FIX_USERNAME: '' }), {}, 'empty variables are absent')
  t.throws(() => resolveCredentials(good, { KBX_FIX_PASSWORD: 'x' }), /both given/)
  t.equal((await parse(['--username', 'x'])).code, 2, 'no --username option')
  t.equal((await parse(['--password', 'x'])).code, 2, 'no --password option')
  const plan = resolveLogon({ fixVersion: '5.0SP2', credentials: good, logonField: [[96, 'tok']], senderSubId: 'DESK1', senderLocationId: 'LDN' }, {})
  t.same(plan, {
    beginString: 'FIXT.1.1',
    logonFields: [[1137, '9'], [553, 'trader1'], [554, 'p@ss=word '], [95, '3'], [96, 'tok']],
    headerFields: [[50, 'DESK1'], [142, 'LDN']],
    credentials: 'file',
  })
  t.equal(resolveLogon({ fixVersion: '4.4' }, { KBX_FIX_PASSWORD: 'x' }).credentials, 'environment')
  t.equal(resolveLogon({ fixVersion: '4.4' }, {}).credentials, 'none')
  const bad = credentialsFile(dir, 'username=u\n', 0o644)
  t.equal((await parse(['--credentials', bad])).code, 0, 'the file is read when the run starts, not by the option parser')
  t.throws(() => resolveLogon({ fixVersion: '4.4', credentials: bad }, {}), UsageError, 'there: a usage error (exit 2) before anything is opened')
  t.throws(() => resolveLogon({ fixVersion: '4.4', senderSubId: '' }, {}), UsageError)
})

t.test('the Logon on the wire: credentials and extra fields after the session fields; header IDs on every message', async (t) => {
  const sent: Buffer[] = []
  const session = new FixSession({
    role: 'initiator', senderCompId: 'CLIENT1', targetCompId: 'EXCH', beginString: 'FIXT.1.1', heartBtInt: 30, resetOnLogon: true, store: new MemorySeqStore(),
    logonFields: logonFields({ version: '5.0SP2', credentials: { username: 'trader1', password: 'hunter2' }, extra: [[96, 'tok'], [1408, '1.0']] }),
    headerFields: [[50, 'DESK1'], [57, 'GW'], [142, 'LDN']],
    send: (b) => void sent.push(Buffer.from(b)),
  })
  session.start()
  session.sendApp('D', (w) => w.int(Tag.ClOrdID, 1))
  session.logout()
  const parser = new FixParser()
  parser.push(Buffer.concat(sent))
  const tags: number[][] = []
  const values: Record<number, string | undefined>[] = []
  for (let m = parser.next(); m !== null; m = parser.next()) {
    tags.push(Array.from({ length: m.count }, (_, i) => m.tags[i]!))
    values.push(Object.fromEntries([8, 50, 57, 142, 553, 554, 95, 96, 1137].map((tag) => [tag, m.string(tag)])))
  }
  t.equal(tags.length, 3, 'three messages framed clean (BodyLength, CheckSum)')
  t.same(tags[0], [8, 9, 35, 49, 56, 50, 57, 142, 34, 52, 98, 108, 141, 1137, 553, 554, 95, 96, 1408], 'the Logon: header, session fields, then ours in order')
  t.match(values[0], { 8: 'FIXT.1.1', 553: 'trader1', 554: 'hunter2', 95: '3', 96: 'tok', 1137: '9' })
  for (const v of values) t.match(v, { 50: 'DESK1', 57: 'GW', 142: 'LDN' }, 'header IDs on every message')
  t.same(tags[1]!.slice(0, 10), [8, 9, 35, 49, 56, 50, 57, 142, 34, 52], 'the order: header IDs before MsgSeqNum')
  t.equal(values[1]![553], undefined, 'credentials only on the Logon')
  const shown = redactMessage(sent[0]!)
  t.notMatch(shown, /hunter2|tok\|/, 'Password and RawData redacted')
  t.match(shown, /554=\*\*\*\|/)
  t.match(shown, /96=\*\*\*\|/)
})

t.test('a Logout in answer to our Logon: the session closes with "logon refused: <Text>"', async (t) => {
  const reasons: string[] = []
  const events: Record<string, unknown>[] = []
  const session = new FixSession({
    role: 'initiator', senderCompId: 'CLIENT1', targetCompId: 'EXCH', store: new MemorySeqStore(), send: () => {},
    onClose: (r) => void reasons.push(r), onEvent: (e) => void events.push(e),
  })
  session.start()
  session.receive(buildMessage([[35, '5'], [49, 'EXCH'], [56, 'CLIENT1'], [34, 1], [52, '20261203-10:00:00.000'], [58, 'Invalid username or password']]))
  t.same(reasons, ['logon refused: Invalid username or password'])
  t.match(events, [{ event: 'logout', initiatedBy: 'peer', text: 'Invalid username or password', logonRefused: true }])
  const later = new FixSession({ role: 'initiator', senderCompId: 'CLIENT1', targetCompId: 'EXCH', store: new MemorySeqStore(), send: () => {}, onClose: (r) => void reasons.push(r) })
  later.start()
  later.receive(buildMessage([[35, 'A'], [49, 'EXCH'], [56, 'CLIENT1'], [34, 1], [52, '20261203-10:00:00.000'], [98, 0], [108, 30]]))
  later.receive(buildMessage([[35, '5'], [49, 'EXCH'], [56, 'CLIENT1'], [34, 2], [52, '20261203-10:00:00.000'], [58, 'bye']]))
  t.equal(reasons[1], 'logout', 'a Logout after the logon is an ordinary logout')
})
