// Checks on whole messages before a collective takes them in (DataChannelTransport.setMessageCheck).
// A gradient with NaN or Infinity would spread through the all-reduce sum into every replica's
// parameters; refusing it stops the step instead (the run ends with the reason, nothing is corrupted).
import type { MessageTag } from '../collective/types';
import type { MessageCheck } from './datachannel-transport';

/** Index of the first float32 that is NaN or +-Infinity, or -1. Reads the exponent bits directly. */
export function firstNonFiniteF32(bytes: Uint8Array): number {
  const n = bytes.length >>> 2;
  const words = bytes.byteOffset % 4 === 0 ? new Uint32Array(bytes.buffer, bytes.byteOffset, n) : new Uint32Array(bytes.slice(0, n * 4).buffer);
  for (let i = 0; i < n; i++) if ((words[i] & 0x7f800000) === 0x7f800000) return i;
  return -1;
}

/** Index of the first float16 that is NaN or +-Infinity, or -1. */
export function firstNonFiniteF16(bytes: Uint8Array): number {
  const n = bytes.length >>> 1;
  for (let i = 0; i < n; i++) if ((bytes[2 * i + 1] & 0x7c) === 0x7c) return i;
  return -1;
}

/**
 * Why a Top-K message (src/parallel/sparse-sync.ts) must be refused, or undefined. Its messages are
 * either one 32-bit word (a payload size, or an empty payload: no floats) or one rank's compact payload
 * (codecs.ts encodeSparseCompact: u32 count | count float32 values | varint index gaps). Only the
 * values are floats: the gap bytes may look like a NaN (0xff 0xff 0xff 0x7f is a valid gap) and are
 * validated by decodeSparseCompact instead.
 */
export function topKPayloadProblem(bytes: Uint8Array): string | undefined {
  if (bytes.length <= 4) return undefined;
  const count = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, true);
  // Each entry needs 4 value bytes and at least one gap byte (as decodeSparseCompact requires).
  if (4 + 5 * count > bytes.length) return `malformed Top-K payload: ${count} entries claimed in ${bytes.length} bytes`;
  const at = firstNonFiniteF32(bytes.subarray(4, 4 + 4 * count));
  return at < 0 ? undefined : `non-finite float32 Top-K value at entry ${at} (a gradient that blew up, or a hostile peer)`;
}

/**
 * The check for a run's model-data messages (collective ids from `firstCollective` on, which carry
 * gradients and parameters), in the run's codec: float32 without compression, with Random-K (its
 * all-reduce moves the k chosen values as float32) and with PowerSGD (float32 factors), float16 with
 * fp16, and the values of each compact payload with Top-K. Every codec is checked: a non-finite gradient is never summed into a replica.
 */
export function finiteModelDataCheck(compression: string, firstCollective: number): MessageCheck {
  const check = checkFor(compression);
  return (tag: MessageTag, payload: Uint8Array) => (tag.collective < firstCollective ? undefined : check(payload));
}

function checkFor(compression: string): (payload: Uint8Array) => string | undefined {
  const nonFinite = (dtype: string, at: number) => (at < 0 ? undefined : `non-finite ${dtype} at element ${at} (a gradient that blew up, or a hostile peer)`);
  switch (compression) {
    case 'none':
    case 'randk':
    case 'powersgd':
      return (payload) => nonFinite('float32', firstNonFiniteF32(payload));
    case 'fp16':
      return (payload) => nonFinite('float16', firstNonFiniteF16(payload));
    case 'topk':
      return topKPayloadProblem;
    default:
      throw new RangeError(`no payload check for compression "${compression}"`);
  }
}
