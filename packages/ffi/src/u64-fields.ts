// The one reader of the native counter structs: a struct of u64 fields in the order their TypeScript
// list names them (the lists are checked against the headers by each package's compareLayouts test).

/** Fields [0..fields.length) of a struct of u64s, as numbers (exact below 2^53, which counters stay under). */
export function readU64Fields<K extends string>(buf: Buffer, fields: readonly K[], offset = 0): Record<K, number> {
  const out = {} as Record<K, number>
  fields.forEach((name, i) => (out[name] = Number(buf.readBigUInt64LE(offset + i * 8))))
  return out
}

/** The same as bigints, for counters that may pass 2^53 (bytes, nanoseconds). */
export function readU64FieldsBig<K extends string>(buf: Buffer, fields: readonly K[], offset = 0): Record<K, bigint> {
  const out = {} as Record<K, bigint>
  fields.forEach((name, i) => (out[name] = buf.readBigUInt64LE(offset + i * 8)))
  return out
}
