// Checks of runAllToAll that mutation testing (npm run mutate) showed missing: all-to-all-run.test.ts
// checks the delivered blocks and the exchange's own byte count, but not the statistics of a run that
// learned its counts first (the two runs' figures added: subtracting them passed), nor the message tags:
// the count all-gather could lose the caller's round and collective (its options dropped), and the
// exchange's message numbers could start below the all-gather's (msgBase - 2 * world) or lose the
// caller's msgBase, and every block still arrived on a quiet in-memory mesh. On a room running other
// collectives those are the tags that keep two collectives' messages apart.
import { describe, expect, it } from 'vitest';
import { runAllToAll } from './all-to-all-run';
import { runFixedAllGather } from './collectives';
import { createMemoryMesh } from './memory-transport';
import type { MessageTag, Transport } from './types';

const WORLD = 3;
const blockFor = (i: number, j: number) => Float32Array.from({ length: 1 + ((i + 2 * j) % 3) }, (_, k) => 100 * i + 10 * j + k);

function recorded(mesh: Transport[], sent: MessageTag[]): Transport[] {
  return mesh.map((t) => ({ rank: t.rank, world: t.world, send: (to, tag, p) => (sent.push(tag), t.send(to, tag, p)), recv: (from, tag) => t.recv(from, tag) }));
}

describe('runAllToAll: statistics and tags', () => {
  it("a run that learns its counts reports the count all-gather's figures plus the exchange's", async () => {
    const learned = await Promise.all(createMemoryMesh(WORLD).map((t) => runAllToAll(t, [0, 1, 2].map((j) => blockFor(t.rank, j)), { round: 0, collective: 1 })));
    const counts = learned[0].counts;
    const given = await Promise.all(createMemoryMesh(WORLD).map((t) => runAllToAll(t, [0, 1, 2].map((j) => blockFor(t.rank, j)), { round: 0, collective: 1, counts })));
    const gather = await Promise.all(
      createMemoryMesh(WORLD).map((t) => runFixedAllGather(t, new Uint8Array(Uint32Array.from(counts[t.rank]).buffer), { round: 0, collective: 1 })),
    );
    for (let r = 0; r < WORLD; r++) {
      const [a, b, g] = [learned[r].stats, given[r].stats, gather[r].stats];
      expect(g.bytesSent).toBeGreaterThan(0);
      expect(a.bytesSent).toBe(b.bytesSent + g.bytesSent);
      expect(a.bytesReceived).toBe(b.bytesReceived + g.bytesReceived);
      expect(a.messagesSent).toBe(b.messagesSent + g.messagesSent);
      expect(a.messagesReceived).toBe(b.messagesReceived + g.messagesReceived);
    }
  });

  it('the time of a run that learns its counts covers both exchanges (15 ms per message: at least 2 x 2 hops, >= 50 ms)', async () => {
    const results = await Promise.all(createMemoryMesh(WORLD, { latencyMs: 15 }).map((t) => runAllToAll(t, [0, 1, 2].map((j) => blockFor(t.rank, j)), { round: 0, collective: 1 })));
    for (const { stats } of results) expect(stats.ms).toBeGreaterThanOrEqual(50);
  });

  it("every message carries the caller's round and collective; the exchange's numbers start at msgBase + 2 x world, the all-gather's below", async () => {
    for (const msgBase of [0, 100]) {
      const sent: MessageTag[] = [];
      const mesh = recorded(createMemoryMesh(WORLD), sent);
      const results = await Promise.all(mesh.map((t) => runAllToAll(t, [0, 1, 2].map((j) => blockFor(t.rank, j)), { round: 7, collective: 9, msgBase, maxMessageElements: 1 })));
      for (const tag of sent) {
        expect(tag.round).toBe(7);
        expect(tag.collective).toBe(9);
      }
      const exchange: MessageTag[] = [];
      const given = recorded(createMemoryMesh(WORLD), exchange);
      await Promise.all(given.map((t) => runAllToAll(t, [0, 1, 2].map((j) => blockFor(t.rank, j)), { round: 7, collective: 9, msgBase, maxMessageElements: 1, counts: results[0].counts })));
      expect(exchange.length).toBeGreaterThan(0);
      for (const tag of exchange) expect(tag.chunk).toBeGreaterThanOrEqual(msgBase + 2 * WORLD);
      const gather = sent.filter((tag) => tag.chunk < msgBase + 2 * WORLD);
      expect(gather.length).toBe(sent.length - exchange.length);
      for (const tag of gather) expect(tag.chunk).toBeGreaterThanOrEqual(0);
      for (const tag of sent) expect(Number.isInteger(tag.chunk)).toBe(true);
    }
  });
});
