// Checks of executor.ts that mutation testing (npm run mutate) showed missing. A real transport hands the
// executor a payload that is a view into a larger buffer (a frame's bytes after its header), at whatever
// byte offset that buffer gives; the in-memory transport of the other tests always delivers 4-byte-aligned
// copies, so a float view taken without checking alignment (RangeError on a real link) went unnoticed.
// The dashboard's reducer dispatches on an event's `type`, which no test read.
import { describe, expect, it } from 'vitest';
import { runAllReduce } from './collectives';
import { createMemoryMesh } from './memory-transport';
import { exactSum, firstBitDifference, integerInput } from './test-support';
import type { ChunkEvent, MessageTag, Transport } from './types';

/** Delivers every received payload as a view at byte offset `shift` of a larger buffer (as a frame decoder's subarray can be). */
function unaligned(inner: Transport, shift: number): Transport {
  return {
    rank: inner.rank,
    world: inner.world,
    send: (to: number, tag: MessageTag, payload: Uint8Array) => inner.send(to, tag, payload),
    recv: async (from: number, tag: MessageTag) => {
      const payload = await inner.recv(from, tag);
      const holder = new Uint8Array(payload.byteLength + shift);
      holder.set(payload, shift);
      return holder.subarray(shift);
    },
  };
}

describe('executor with payloads at unaligned byte offsets', () => {
  for (const shift of [1, 2, 3]) {
    it(`float32 wire, payloads at byte offset ${shift}: ring and naive all-reduce exactly (a float view of an unaligned payload would throw)`, async () => {
      for (const algorithm of ['ring', 'naive'] as const) {
        const world = 3;
        const mesh = createMemoryMesh(world).map((t) => unaligned(t, shift));
        const data = mesh.map((t) => integerInput(t.rank, 41));
        await Promise.all(mesh.map((t, r) => runAllReduce(t, data[r], { round: 0, collective: 0, algorithm, maxMessageElements: 8 })));
        const want = exactSum(world, 41);
        for (const x of data) expect(firstBitDifference(x, want)).toBe(-1);
      }
    });
  }

  for (const shift of [1, 3]) {
    it(`fp16 wire, payloads at odd byte offset ${shift}: every rank ends with the same fp16-exact sums (a half view of an odd offset would throw)`, async () => {
      for (const algorithm of ['ring', 'naive'] as const) {
        const world = 3;
        const mesh = createMemoryMesh(world).map((t) => unaligned(t, shift));
        // Small integers: exact in fp16, so every partial sum is too and the result is the exact sum.
        const data = mesh.map((t) => integerInput(t.rank, 41));
        await Promise.all(mesh.map((t, r) => runAllReduce(t, data[r], { round: 0, collective: 0, algorithm, wire: 'f16', maxMessageElements: 8 })));
        const want = exactSum(world, 41);
        for (const x of data) expect(firstBitDifference(x, want)).toBe(-1);
      }
    });
  }
});

describe('executor chunk events', () => {
  it("every event is of type 'chunk' (the dashboard's reducer dispatches on it)", async () => {
    const mesh = createMemoryMesh(2);
    const events: ChunkEvent[] = [];
    const data = mesh.map((t) => integerInput(t.rank, 10));
    await Promise.all(mesh.map((t, r) => runAllReduce(t, data[r], { round: 0, collective: 0, onEvent: (e) => events.push(e) })));
    expect(events.length).toBe(8);
    for (const e of events) expect(e.type).toBe('chunk');
  });
});
