// Venue logons against QuickFIX (native/build/fix-quickfix-acceptor with --username/--password: its fromAdmin
// throws RejectLogon on a mismatch): credentials from a 0600 file and from the environment accepted, wrong ones
// refused with a readable error (exit 1, the `error` event, stderr naming QuickFIX's Text) and no reconnection;
// a group-readable file refused before anything opens (exit 2); header IDs and extra Logon fields; FIX 5.0 SP2
// over FIXT.1.1 logging on and trading.
import { chmodSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import { waitUntil } from '@kbx/testbed'
import type { ToolRun } from '@kbx/testbed'
import { fixBed, named, nothingAttached, runFixTcp, startFixTcp } from './testing/fix-bed.js'
import type { FixBed } from './testing/fix-bed.js'

const USER = 'trader1'
const PASSWORD = 'Pa55-w0rd=x'
/** QuickFIX's Logout Text for a RejectLogon("Invalid username or password"). */
const REFUSED = /^FIX session ended: logon refused: Rejected Logon Attempt: Invalid username or password$/
const bed = (t: Test) => fixBed(t, { acceptor: 'quickfix', acceptorArgs: ['--username', USER, '--password', PASSWORD] })

function credentialsFile(b: FixBed, name: string, text: string, mode = 0o600): string {
  const path = join(b.dir, name)
  writeFileSync(path, text)
  chmodSync(path, mode)
  return path
}

/** Nothing fix-tcp printed (stdout events, stderr log) holds the password. */
function passwordNeverShown(t: Test, run: ToolRun, password: string): void {
  t.notOk(JSON.stringify(run.events).includes(password), 'the password is in no JSON event')
  t.notOk(run.stderr().includes(password), 'nor on stderr')
}

async function refused(t: Test, b: FixBed, args: string[], env: Record<string, string> = {}): Promise<ToolRun> {
  const run = startFixTcp(b, ['--orders', '5', '--reset', ...args], 'socket', env)
  const exit = await run.exited
  t.equal(exit.code, 1, 'exit 1')
  const error = named(run, 'error')[0]?.data
  t.match(error, { type: 'NetError', message: REFUSED, hint: /credentials/ }, 'the error event names QuickFIX\'s reason')
  t.match(run.stderr(), /logon refused: Rejected Logon Attempt: Invalid username or password/, 'so does stderr')
  t.match(named(run, 'end')[0]?.data, { stoppedBy: 'error', orders: { sent: 0 } })
  t.equal(named(run, 'reconnect').length + named(run, 'disconnect').length, 0, 'no reconnection: the gateway is not hammered')
  return run
}

t.test('credentials from a 0600 file and from the environment: accepted by QuickFIX; wrong ones refused, fatal', async (t) => {
  const b = await bed(t)
  const good = credentialsFile(b, 'good', `# UAT\nusername=${USER}\npassword=${PASSWORD}\n`)
  const run = await runFixTcp(b, ['--orders', '20', '--reset', '--credentials', good, '--sender-sub-id', 'DESK1', '--log-level', 'debug'], 'socket')
  t.equal(run.end.orders.acked, 20, 'logged on and every order acked')
  t.equal(named(run, 'start')[0]?.data.credentials, 'file', 'the start event says where credentials came from')
  const [checked] = named(b.acceptor, 'credentials')
  t.match(checked?.data, { usernameGiven: true, passwordGiven: true, accepted: true, senderSubId: 'DESK1' }, 'QuickFIX checked 553/554; SenderSubID in the header')
  t.match(run.stderr(), /553=trader1\|554=\*\*\*\|.*"msg":"Logon sent"/, '--log-level debug shows the Logon with the password redacted')
  passwordNeverShown(t, run, PASSWORD)
  await waitUntil('QuickFIX to log out', () => named(b.acceptor, 'logout').length >= 1)

  const fromEnv = await runFixTcp(b, ['--orders', '5'], 'socket', undefined, { KBX_FIX_USERNAME: USER, KBX_FIX_PASSWORD: PASSWORD })
  t.equal(fromEnv.end.orders.acked, 5, 'credentials from the environment accepted')
  t.equal(named(fromEnv, 'start')[0]?.data.credentials, 'environment')
  await waitUntil('QuickFIX to log out', () => named(b.acceptor, 'logout').length >= 2)

  const wrong = credentialsFile(b, 'wrong', `username=${USER}\npassword=not-it\n`)
  const bad = await refused(t, b, ['--credentials', wrong])
  passwordNeverShown(t, bad, 'not-it')
  t.match(named(b.acceptor, 'credentials').at(-1)?.data, { accepted: false })
  t.match(named(bad, 'logout')[0]?.data, { initiatedBy: 'peer', logonRefused: true, text: 'Rejected Logon Attempt: Invalid username or password' })
  await refused(t, b, [], {}) // no credentials at all
  const refusedEnv = await refused(t, b, [], { KBX_FIX_USERNAME: USER, KBX_FIX_PASSWORD: 'wrong-env' })
  passwordNeverShown(t, refusedEnv, 'wrong-env')
  t.equal(named(b.acceptor, 'order').length, 25, 'QuickFIX took orders only from the accepted sessions')
})

t.test('--retry-refused-logon: retried with the growing backoff, not hammered; a group-readable file: exit 2 before anything', async (t) => {
  const b = await bed(t)
  const wrong = credentialsFile(b, 'wrong', `username=${USER}\npassword=nope\n`)
  const run = startFixTcp(b, ['--orders', '5', '--reset', '--credentials', wrong, '--retry-refused-logon', '--reconnect-interval', '0.2', '--duration', '3'], 'xdp')
  const exit = await run.exited
  t.equal(exit.code, 0, 'ends at --duration')
  const disconnects = named(run, 'disconnect')
  t.ok(disconnects.length >= 2 && disconnects.length <= 5, `a few attempts in 3 s, doubling from 0.2 s (${disconnects.length})`)
  t.ok(disconnects.every((e) => /^logon refused: Rejected Logon Attempt: Invalid username or password$/.test(e.data.reason)), 'each a refused logon')
  const delays = disconnects.map((e) => e.data.retryInSec as number | undefined).filter((d) => d !== undefined)
  t.ok(delays.every((d, i) => i === 0 || d > delays[i - 1]!), `growing delays (${delays.join(', ')} s)`)
  nothingAttached(t, b, [run])

  const loose = credentialsFile(b, 'loose', `username=${USER}\npassword=${PASSWORD}\n`, 0o640)
  const rejected = startFixTcp(b, ['--credentials', loose], 'xdp')
  t.equal((await rejected.exited).code, 2, 'usage error: exit 2')
  t.same(rejected.events.map((e) => e.event), ['error'], 'nothing started')
  t.match(named(rejected, 'error')[0]?.data, { message: /mode 0640 lets group or others access it/, hint: `chmod 600 ${loose}` })
  nothingAttached(t, b, [])
})

t.test('FIX 5.0 SP2 over FIXT.1.1: logon (DefaultApplVerID 9) and orders acked by QuickFIX, over --io xdp (reflex) and --io socket', async (t) => {
  const b = await bed(t)
  const good = credentialsFile(b, 'good', `username=${USER}\npassword=${PASSWORD}\n`)
  const xdp = await runFixTcp(b, ['--orders', '200', '--reset', '--fix-version', '5.0SP2', '--credentials', good, '--logon-field', '96=token', '--sender-sub-id', 'DESK1', '--sender-location-id', 'LDN'], 'xdp')
  t.equal(named(xdp, 'start')[0]?.data.beginString, 'FIXT.1.1')
  t.equal(xdp.end.orders.acked, 200, 'every order acked')
  t.equal(xdp.end.orders.filled, 200)
  t.ok(xdp.end.reflex.sent >= 190, `the reflex framed QuickFIX's FIXT.1.1 reports and sent ${xdp.end.reflex.sent} orders (SenderSubID, SenderLocationID in their headers)`)
  t.equal(xdp.end.parser.badChecksum + xdp.end.parser.badBodyLength + xdp.end.parser.badHeader + xdp.end.parser.garbageBytes, 0)
  t.match(named(b.acceptor, 'credentials')[0]?.data, { beginString: 'FIXT.1.1', defaultApplVerId: '9', rawDataLength: 5, accepted: true, senderSubId: 'DESK1' })
  t.match(named(b.acceptor, 'logon')[0]?.data, { beginString: 'FIXT.1.1' })
  t.equal(named(b.acceptor, 'order').length, 200)
  const [logout] = await (async () => {
    await waitUntil('QuickFIX to log out', () => named(b.acceptor, 'logout').length >= 1)
    return named(b.acceptor, 'logout')
  })()
  t.notOk(logout?.data.textSent, 'QuickFIX logged out without complaint')
  const rejects = named(b.acceptor, 'admin').filter((e) => e.data.msgType === '3')
  t.same(rejects.map((e) => e.data), [], 'no Reject either way')
  t.same(named(b.acceptor, 'app-out').map((e) => e.data), [], 'no BusinessMessageReject')

  const socket = await runFixTcp(b, ['--orders', '100', '--rate', '2000', '--fix-version', '5.0SP2', '--credentials', good], 'socket')
  t.equal(socket.end.orders.acked, 100, 'resumed (no --reset) and every order acked')
  t.equal(socket.end.session.rejectsReceived, 0)
  nothingAttached(t, b, [xdp, socket])
})
