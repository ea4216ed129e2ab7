/**
 * `pnpm bench <name> [options]`: runs bench/<name>.ts in a child Node with the workspace's source
 * condition (kbx-source), so benches run the TypeScript sources without a build. Without a known name it
 * lists the benches.
 */
import { spawn } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { constants } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const benchDir = dirname(fileURLToPath(import.meta.url))
const available = readdirSync(benchDir)
  .filter((file) => file.endsWith('.ts') && file !== 'run.ts' && !file.endsWith('.test.ts'))
  .map((file) => file.slice(0, -'.ts'.length))
  .sort()

const [name, ...args] = process.argv.slice(2)
if (name === undefined || !available.includes(name)) {
  if (name !== undefined) process.stderr.write(`unknown bench: ${name}\n`)
  process.stderr.write(`usage: pnpm bench <name> [options]\navailable: ${available.join(', ')}\n`)
  process.exit(name === undefined || name === '--help' || name === '-h' ? 0 : 2)
}

const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--conditions=kbx-source', join(benchDir, `${name}.ts`), ...args],
  { stdio: 'inherit' },
)
// Ctrl-C reaches the child too (same process group): let it clean up and decide the exit code.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal))
child.on('exit', (code, signal) => process.exit(code ?? 128 + (signal ? constants.signals[signal] : 0)))
