// Small JSON control messages between tabs (elastic membership, the classroom, ZeRO rebuild plans):
// UTF-8 JSON on the wire, decoded without ever throwing, and checked by the protocol's own validator
// before anything uses them, since they come from peers that may send anything.

/** A decoded message, or why the bytes are not one. */
export type Decoded<T> = T | { error: string };

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function encodeJsonMessage(message: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(message));
}

/**
 * Parses `bytes` and validates the value with `check` (null: valid, else the problem). `what` names the
 * protocol in the error: "<what>: not UTF-8 JSON" or "<what> refused: <problem>".
 */
export function decodeJsonMessage<T>(bytes: Uint8Array, what: string, check: (raw: unknown) => string | null): Decoded<T> {
  let raw: unknown;
  try {
    raw = JSON.parse(decoder.decode(bytes));
  } catch {
    return { error: `${what}: not UTF-8 JSON` };
  }
  const problem = check(raw);
  return problem ? { error: `${what} refused: ${problem}` } : (raw as T);
}

export function isDecodeError<T>(x: Decoded<T>): x is { error: string } {
  return typeof x === 'object' && x !== null && typeof (x as { error?: unknown }).error === 'string';
}

export function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

export function isInt(x: unknown, min: number, max: number): x is number {
  return typeof x === 'number' && Number.isInteger(x) && x >= min && x <= max;
}
