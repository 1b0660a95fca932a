// Rows of numbers as one fixed-size record of float64s: a count, then the rows, zero-padded to a set
// capacity. What a room all-gathers when every rank must send the same number of bytes but holds a
// different number of rows (collective=auto's cost samples and timings, parallel/collective-choice.ts).
// Float64 keeps every number bit for bit, so every rank decodes exactly what each rank encoded.

/** `rows` (each `fields` numbers) in a record with room for `capacity` rows; `what` names them in errors. */
export function encodeRows(rows: readonly (readonly number[])[], fields: number, capacity: number, what: string): Uint8Array {
  if (rows.length > capacity) throw new RangeError(`${rows.length} ${what} do not fit a record of ${capacity}`);
  const words = new Float64Array(1 + capacity * fields);
  words[0] = rows.length;
  rows.forEach((row, i) => words.set(row.slice(0, fields), 1 + i * fields));
  return new Uint8Array(words.buffer);
}

/** The rows of a record; one whose count does not fit its length is refused. */
export function decodeRows(bytes: Uint8Array, fields: number, what: string): number[][] {
  const words = new Float64Array(bytes.slice().buffer);
  const count = words[0];
  if (!Number.isSafeInteger(count) || count < 0 || 1 + count * fields > words.length) throw new RangeError(`a ${what} record claims ${count} ${what} in ${words.length} words`);
  return Array.from({ length: count }, (_, i) => [...words.subarray(1 + i * fields, 1 + (i + 1) * fields)]);
}
