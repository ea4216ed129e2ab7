import { X509Certificate, generateKeyPairSync } from 'node:crypto'
import t from 'tap'
import { UsageError } from '@kbx/errors'
import { Identity, mockTransactions, parseSolanaKeypair } from './index.js'

function solanaKeypair(): { keypair: Buffer; publicKey: Buffer } {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519')
  const seed = privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(-32)
  const pub = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32)
  return { keypair: Buffer.concat([seed, pub]), publicKey: pub }
}

t.test('a Solana keypair becomes a self-signed Ed25519 certificate carrying its public key', async (t) => {
  const { keypair, publicKey } = solanaKeypair()
  const parsed = parseSolanaKeypair(JSON.stringify([...keypair]))
  const id = Identity.create(parsed)
  t.teardown(() => id.close())
  t.same(id.publicKey(), publicKey)
  const cert = new X509Certificate(id.certificateDer())
  t.equal(cert.publicKey.asymmetricKeyType, 'ed25519')
  t.same(cert.publicKey.export({ format: 'der', type: 'spki' }).subarray(-32), publicKey)
  t.ok(cert.verify(cert.publicKey), 'self-signed')
  t.match(cert.subject, /Solana node/)
})

t.test('a fresh identity differs every time', async (t) => {
  const a = Identity.create()
  const b = Identity.create()
  t.teardown(() => (a.close(), b.close()))
  t.not(a.publicKey().toString('hex'), b.publicKey().toString('hex'))
})

t.test('bad keypairs are refused', async (t) => {
  const { keypair } = solanaKeypair()
  const other = solanaKeypair().publicKey
  t.throws(() => Identity.create(Buffer.concat([keypair.subarray(0, 32), other])), UsageError, 'public key of another seed')
  t.throws(() => parseSolanaKeypair('[1,2,3]'), UsageError)
  t.throws(() => parseSolanaKeypair('not json'), UsageError)
  t.throws(() => parseSolanaKeypair(JSON.stringify(new Array(64).fill(256))), UsageError)
})

t.test('mock transactions respect the 1232-byte limit', async (t) => {
  t.equal(mockTransactions(235, 4).length, 4)
  t.ok(mockTransactions(1232, 1)[0]!.length === 1232)
  t.throws(() => mockTransactions(1233), UsageError)
  t.throws(() => mockTransactions(0), UsageError)
})
