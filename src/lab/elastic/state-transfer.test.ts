import { describe, expect, it } from 'vitest';
import { FakeNet } from '../../peer/fake-mesh';
import { ElasticRoom } from './elastic-room';
import { exchangeState } from './state-transfer';

const h = (c: string) => c.repeat(16);

describe('exchangeState', () => {
  it('sends the source state to exactly the members whose card differs; the others keep their own', async () => {
    const net = new FakeNet(['tab-a', 'tab-b', 'tab-c']);
    const rooms = net.nodes.map((n) => new ElasticRoom(n, { graceMs: 50, formTimeoutMs: 3000 }));
    const cards = [{ step: 9, hash: h('a') }, { step: 9, hash: h('a') }, { step: -1, hash: '' }];
    const formations = await Promise.all(rooms.map((room, i) => room.form(cards[i], 3)));
    expect(formations[0].source).toBe(0);
    const own = [new Uint8Array([1, 2, 3]), new Uint8Array([1, 2, 3]), null];
    const results = await Promise.all(formations.map((f, i) => exchangeState(f, own[i])));
    expect(results.map((r) => r.received)).toEqual([false, false, true]);
    for (const r of results) expect(Array.from(r.state!)).toEqual([1, 2, 3]);
    expect(results[1].state).toBe(own[1]); // kept, not copied over the wire
    const sent = formations.map((f) => f.transport.bytesSent);
    expect(sent[1]).toBe(0);
    expect(sent[0]).toBeGreaterThan(0);
  });

  it('returns no state in a new room', async () => {
    const net = new FakeNet(['tab-a', 'tab-b']);
    const rooms = net.nodes.map((n) => new ElasticRoom(n, { graceMs: 50, formTimeoutMs: 3000 }));
    const formations = await Promise.all(rooms.map((room) => room.form({ step: -1, hash: '' }, 2)));
    for (const f of formations) expect(await exchangeState(f, null)).toEqual({ state: null, received: false });
  });
});
