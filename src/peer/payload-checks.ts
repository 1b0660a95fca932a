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
 * The check for a run's model-data messages (collective ids from `firstCollective` on, which carry
 * gradients and parameters): float32 without compression, float16 with fp16. Sparse codecs (top-k,
 * random-k) mix indices and values, so they are not checked here. Undefined: nothing to check.
 */
export function finiteModelDataCheck(compression: string, firstCollective: number): MessageCheck | undefined {
  const dtype = compression === 'none' ? 'f32' : compression === 'fp16' ? 'f16' : null;
  if (!dtype) return undefined;
  return (tag: MessageTag, payload: Uint8Array) => {
    if (tag.collective < firstCollective) return undefined;
    const at = dtype === 'f32' ? firstNonFiniteF32(payload) : firstNonFiniteF16(payload);
    return at < 0 ? undefined : `non-finite ${dtype === 'f32' ? 'float32' : 'float16'} at element ${at} (a gradient that blew up, or a hostile peer)`;
  };
}
