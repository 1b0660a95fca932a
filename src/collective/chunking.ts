// How a flat vector is cut into the pieces a collective moves. Pure arithmetic, shared by every
// schedule, so that all ranks agree on every boundary without ever talking about it.

/** A contiguous element range of a flat vector. */
export interface Range {
  offset: number;
  length: number;
}

/**
 * The largest message a WebRTC data channel accepts is 256 KiB (`sctp.maxMessageSize` = 262144); one
 * more byte and `send()` throws. We leave 1 KiB for the frame header and keep the element count a
 * multiple of 64 so that pieces of 64-aligned shards stay aligned.
 */
export const DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024 - 1024;
export const DEFAULT_MAX_MESSAGE_ELEMENTS = DEFAULT_MAX_MESSAGE_BYTES / 4;

function assertCount(name: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(`${name} must be an integer >= ${min}, got ${value}`);
  }
}

/**
 * Splits `length` elements into `world` contiguous chunks whose sizes differ by at most one (the first
 * `length % world` chunks get the extra element). Works for any length: lengths below `world` give
 * empty chunks at the end.
 */
export function splitEven(length: number, world: number): Range[] {
  assertCount('length', length, 0);
  assertCount('world', world, 1);
  const base = Math.floor(length / world);
  const extra = length % world;
  const chunks: Range[] = [];
  let offset = 0;
  for (let i = 0; i < world; i++) {
    const size = base + (i < extra ? 1 : 0);
    chunks.push({ offset, length: size });
    offset += size;
  }
  return chunks;
}

/**
 * Turns explicit boundaries `[b0 = 0, b1, ..., bN = length]` into N chunks. This is how a schedule is
 * told to cut exactly at the ZeRO partition's shard boundaries.
 */
export function chunksFromBoundaries(boundaries: readonly number[], length: number): Range[] {
  if (boundaries.length < 2) throw new RangeError('boundaries need at least two entries [0, length]');
  if (boundaries[0] !== 0) throw new RangeError(`boundaries must start at 0, got ${boundaries[0]}`);
  if (boundaries[boundaries.length - 1] !== length) {
    throw new RangeError(`boundaries must end at length ${length}, got ${boundaries[boundaries.length - 1]}`);
  }
  const chunks: Range[] = [];
  for (let i = 0; i + 1 < boundaries.length; i++) {
    const start = boundaries[i];
    const end = boundaries[i + 1];
    assertCount(`boundaries[${i}]`, start, 0);
    if (!Number.isSafeInteger(end) || end < start) {
      throw new RangeError(`boundaries must be non-decreasing integers, got ${start} then ${end}`);
    }
    chunks.push({ offset: start, length: end - start });
  }
  return chunks;
}

/** The boundaries `[0, ..., length]` of a list of adjacent chunks (the inverse of chunksFromBoundaries). */
export function boundariesOf(chunks: readonly Range[]): number[] {
  const boundaries = [chunks.length ? chunks[0].offset : 0];
  for (const chunk of chunks) boundaries.push(chunk.offset + chunk.length);
  return boundaries;
}

/**
 * Cuts one chunk into the fewest parts of at most `maxElements` each, sized evenly so that pipelined
 * parts take about the same time on the wire. An empty chunk has no parts (nothing is sent for it).
 */
export function splitParts(chunk: Range, maxElements: number = DEFAULT_MAX_MESSAGE_ELEMENTS): Range[] {
  assertCount('maxElements', maxElements, 1);
  assertCount('chunk.length', chunk.length, 0);
  if (chunk.length === 0) return [];
  const count = Math.ceil(chunk.length / maxElements);
  return splitEven(chunk.length, count).map((part) => ({ offset: chunk.offset + part.offset, length: part.length }));
}

/** The message-size limit in elements for a byte budget (4-byte floats). */
export function maxElementsForBytes(maxBytes: number): number {
  const elements = Math.floor(maxBytes / 4);
  if (elements < 1) throw new RangeError(`a message budget of ${maxBytes} bytes cannot hold one float`);
  return elements;
}
