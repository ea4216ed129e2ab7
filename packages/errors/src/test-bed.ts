import { existsSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The interfaces and addresses scripts/setup_net.sh creates, by bed. */
const TEST_BEDS = {
  quic: { interfaces: { veth0: undefined, veth1: 'ns1' }, addresses: { '10.0.0.10': undefined, '10.0.0.11': 'ns1' } },
  ab: {
    interfaces: { vethA_dst: undefined, vethB_dst: undefined, vethA_src: 'feed', vethB_src: 'feed' },
    addresses: { '10.0.1.2': undefined, '10.0.2.2': undefined, '10.0.1.1': 'feed', '10.0.2.1': 'feed' },
  },
  fix: { interfaces: { fix0: undefined, fix1: 'exch' }, addresses: { '10.0.3.1': undefined, '10.0.3.2': 'exch' } },
} as const satisfies Record<string, { interfaces: Record<string, string | undefined>; addresses: Record<string, string | undefined> }>

export type TestBedName = keyof typeof TEST_BEDS

/** Where a name lives on a kbx test bed: the bed, and the namespace it is in (undefined: the root namespace). */
interface TestBedPlace {
  bed: TestBedName
  netns: string | undefined
}

function placeOf(kind: 'interfaces' | 'addresses', name: string): TestBedPlace | undefined {
  for (const [bed, spec] of Object.entries(TEST_BEDS) as [TestBedName, (typeof TEST_BEDS)[TestBedName]][]) {
    const table: Record<string, string | undefined> = spec[kind]
    if (Object.hasOwn(table, name)) return { bed, netns: table[name] }
  }
  return undefined
}

/** `bash scripts/setup_net.sh up BED`, with the script's path as the user can run it from where they are. */
export function setupNetCommand(bed: TestBedName): string {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
  const script = join(root, 'scripts', 'setup_net.sh')
  const shown = !existsSync(script) || resolve(process.cwd()) === root ? 'scripts/setup_net.sh' : script
  return `bash ${shown} up ${bed}`
}

function bedAdvice(place: TestBedPlace, what: string): string {
  const inside = place.netns === undefined ? '' : `; it lives in network namespace ${place.netns}: run the tool under \`ip netns exec ${place.netns}\``
  return `${what} belongs to kbx's ${place.bed} test bed: create it with \`${setupNetCommand(place.bed)}\`${inside}`
}

/** The hint for an interface that does not exist: the command that creates it when it is a test-bed name, else `otherwise`. */
export function unknownInterfaceHint(ifname: string, otherwise = 'see `ip link`'): string {
  const place = placeOf('interfaces', ifname)
  return place === undefined ? otherwise : `${bedAdvice(place, ifname)} (otherwise ${otherwise})`
}

/** A hint for an address this host does not have, when it is a test-bed address; undefined otherwise. */
export function testBedAddressHint(address: string): string | undefined {
  const place = placeOf('addresses', address)
  return place === undefined ? undefined : bedAdvice(place, address)
}
