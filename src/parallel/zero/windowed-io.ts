// Host <-> device traffic of ZeRO in fixed-size windows, so that what the transfers themselves hold on
// the device stays small and constant. A WebGPU read goes through a mappable staging buffer that the
// backend keeps (pooled by byte size, counted as workspace); reading layer-sized pieces of every size
// the layout has would leave a staging buffer per size behind, about as much memory as the shards
// ZeRO saves. Reading one window at a time, always of the same size, keeps a single staging buffer.
import type { Backend, View } from '../../engine/backend';
import { viewOf } from '../../engine/backend';

/** 64 Ki floats (256 KiB): large enough that a layer takes a handful of reads, small beside a layer. */
export const WINDOW_FLOATS = 1 << 16;

/**
 * Reads `src` one window at a time. Every read is exactly `window` elements of `src`'s buffer (the last
 * window is moved back to end inside the buffer, overlapping the previous one), or the whole buffer
 * when it is smaller than a window: so the sizes read are at most two per buffer, whatever `src` is.
 */
export async function readWindowed(backend: Backend, src: View, window = WINDOW_FLOATS): Promise<Float32Array> {
  if (!(Number.isInteger(window) && window > 0)) throw new RangeError(`window must be a positive integer, got ${window}`);
  const out = new Float32Array(src.length);
  const size = Math.min(window, src.buf.length);
  const end = src.offset + src.length;
  for (let at = src.offset; at < end; at += size) {
    const start = Math.min(at, src.buf.length - size);
    const data = await backend.read(viewOf(src.buf, start, size));
    const take = Math.min(size - (at - start), end - at);
    out.set(data.subarray(at - start, at - start + take), at - src.offset);
  }
  return out;
}

/**
 * dst += data, through `staging` (a device buffer of any length) one piece at a time. Each write is
 * ordered after the add recorded before it (backends submit recorded work before a write), so one
 * staging buffer serves every piece.
 */
export function addWindowed(backend: Backend, dst: View, data: Float32Array, staging: View): void {
  if (data.length !== dst.length) throw new RangeError(`addWindowed: ${data.length} values for a view of ${dst.length}`);
  for (let at = 0; at < data.length; at += staging.length) {
    const n = Math.min(staging.length, data.length - at);
    const piece = viewOf(staging.buf, staging.offset, n);
    backend.write(piece, data.subarray(at, at + n));
    backend.addInPlace(viewOf(dst.buf, dst.offset + at, n), piece);
  }
}
