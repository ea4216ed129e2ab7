// ab-arbitrate --feeds FILE: the channel list for larger configurations. One channel a line, fields
// separated by spaces, tabs or commas:
//
//   # name   line A                 line B                 format
//   ch1      233.54.12.1:15001      233.54.12.2:15001      optiq
//   ssm      232.1.1.1:15002@10.9.9.9  232.1.1.2:15002@10.9.9.10  optiq
//
// name: letters, digits, '_', '-', '.' (unique); the lines GROUP:PORT[@SOURCE] (channels.ts); format
// optiq or moldudp64. '#' starts a comment; blank lines are skipped. Every error names FILE:LINE.
import { readFileSync } from 'node:fs'
import { UsageError } from '@kbx/errors'
import { checkChannels, parseGroupSpec, type Channel } from './channels.js'
import { FEED_FORMATS, type FeedFormat } from './format.js'

/** The channels of a feeds file's text; `file` names it in errors. */
export function parseFeeds(text: string, file: string): Channel[] {
  const channels: Channel[] = []
  const names = new Map<string, number>()
  for (const [i, raw] of text.split('\n').entries()) {
    const at = `${file}:${i + 1}`
    const line = raw.replace(/#.*$/, '').trim()
    if (line === '') continue
    const fields = line.split(/[\s,]+/)
    if (fields.length !== 4)
      throw new UsageError(`${at}: expected 4 fields (name, line A GROUP:PORT[@SOURCE], line B GROUP:PORT[@SOURCE], format), got ${fields.length}: ${JSON.stringify(line)}`, {
        op: 'read --feeds',
        hint: 'e.g. ch1 233.54.12.1:15001 233.54.12.2:15001 optiq',
      })
    const [name, a, b, format] = fields as [string, string, string, string]
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) throw new UsageError(`${at}: channel name ${JSON.stringify(name)}: letters, digits, '_', '-', '.' (at most 64)`, { op: 'read --feeds' })
    const earlier = names.get(name)
    if (earlier !== undefined) throw new UsageError(`${at}: channel ${name} is already defined on line ${earlier}`, { op: 'read --feeds' })
    names.set(name, i + 1)
    if (!(FEED_FORMATS as readonly string[]).includes(format))
      throw new UsageError(`${at}: format ${JSON.stringify(format)}: expected ${FEED_FORMATS.join(' or ')}`, { op: 'read --feeds' })
    channels.push({ name, a: parseGroupSpec(a, `${at} line A`), b: parseGroupSpec(b, `${at} line B`), format: format as FeedFormat })
  }
  if (channels.length === 0) throw new UsageError(`${file}: no channels (one a line: name, line A GROUP:PORT, line B GROUP:PORT, format)`, { op: 'read --feeds' })
  return checkChannels(channels, file)
}

/** Reads and parses a feeds file; an unreadable file is a usage error too. */
export function readFeeds(file: string): Channel[] {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error'
    throw new UsageError(`--feeds ${file}: cannot read it (${code})`, { op: 'read --feeds', cause: e })
  }
  return parseFeeds(text, file)
}
