/**
 * JSON serialization that keeps 64-bit counters exact: a bigint is written as a bare JSON integer
 * (its decimal digits), never as a string and never rounded through a double.
 */
export function stringifyJson(value: unknown): string {
  const parts: string[] = []
  writeValue(value, parts, new Set())
  return parts.join('')
}

function writeValue(value: unknown, out: string[], ancestors: Set<object>): void {
  switch (typeof value) {
    case 'bigint':
      out.push(value.toString())
      return
    case 'number':
      out.push(Number.isFinite(value) ? JSON.stringify(value) : 'null')
      return
    case 'string':
      out.push(JSON.stringify(value))
      return
    case 'boolean':
      out.push(value ? 'true' : 'false')
      return
    case 'undefined':
    case 'function':
    case 'symbol':
      out.push('null')
      return
  }
  if (value === null) {
    out.push('null')
    return
  }
  const obj = value as object
  if (ancestors.has(obj)) {
    out.push('"[Circular]"')
    return
  }
  if (typeof (obj as { toJSON?: unknown }).toJSON === 'function' && !(obj instanceof Uint8Array)) {
    ancestors.add(obj)
    writeValue((obj as { toJSON(): unknown }).toJSON(), out, ancestors)
    ancestors.delete(obj)
    return
  }
  ancestors.add(obj)
  if (Array.isArray(obj) || ArrayBuffer.isView(obj)) {
    const items: ArrayLike<unknown> = isTypedArray(obj) ? obj : (obj as unknown[])
    out.push('[')
    for (let i = 0; i < items.length; i++) {
      if (i > 0) out.push(',')
      writeValue(items[i], out, ancestors)
    }
    out.push(']')
  } else if (obj instanceof Map) {
    writeObjectEntries(Array.from(obj.entries(), ([k, v]) => [String(k), v] as const), out, ancestors)
  } else if (obj instanceof Set) {
    writeValue(Array.from(obj), out, ancestors)
  } else if (obj instanceof Error) {
    writeObjectEntries(Object.entries({ ...obj, type: obj.name, message: obj.message }), out, ancestors)
  } else {
    writeObjectEntries(Object.entries(obj), out, ancestors)
  }
  ancestors.delete(obj)
}

function writeObjectEntries(entries: ReadonlyArray<readonly [string, unknown]>, out: string[], ancestors: Set<object>): void {
  out.push('{')
  let first = true
  for (const [key, v] of entries) {
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue
    if (!first) out.push(',')
    first = false
    out.push(JSON.stringify(key), ':')
    writeValue(v, out, ancestors)
  }
  out.push('}')
}

function isTypedArray(value: object): value is ArrayLike<number | bigint> {
  return ArrayBuffer.isView(value) && !(value instanceof DataView)
}
