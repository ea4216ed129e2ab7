/**
 * `pnpm soak <xsk|ab|quic|fix|all> [options]`: runs soak/soak.ts in a child Node with the workspace's
 * source condition (kbx-source), as `pnpm bench` does, so a soak runs the TypeScript sources without a build.
 */
import { spawn } from 'node:child_process'
import { constants } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const soakDir = dirname(fileURLToPath(import.meta.url))
const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=kbx-source', join(soakDir, 'soak.ts'), ...process.argv.slice(2)], { stdio: 'inherit' })
// Ctrl-C reaches the child too (same process group): let it stop its tools and clean up.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal))
child.on('exit', (code, signal) => process.exit(code ?? 128 + (signal ? constants.signals[signal] : 0)))
