import type { ChildProcess } from 'node:child_process'

/** One JSON line a kbx command printed on stdout. */
export interface ToolEvent {
  event: string
  tool: string
  ts?: number
  data: Record<string, any>
}

export interface ToolRun {
  child: ChildProcess
  /** Events so far, in order; grows while the command runs. */
  events: ToolEvent[]
  stderr: () => string
  exited: Promise<{ code: number | null; signal: string | null }>
}

/** Follows a spawned kbx command (stdio pipes): its JSON-line events, its stderr and its exit. */
export function followTool(child: ChildProcess): ToolRun {
  const events: ToolEvent[] = []
  let buffered = ''
  let stderr = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk
    for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
      events.push(JSON.parse(buffered.slice(0, nl)) as ToolEvent)
      buffered = buffered.slice(nl + 1)
    }
  })
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  )
  return { child, events, stderr: () => stderr, exited }
}

/** Polls check() every 50 ms until it holds; throws naming `what` after timeoutMs. */
export async function waitUntil(what: string, check: () => boolean, timeoutMs = 20000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}
