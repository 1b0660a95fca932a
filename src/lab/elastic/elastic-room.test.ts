// Elastic rooms over the in-memory mesh (fake-mesh.ts): real frames, real transports, real rosters.
// The same protocol over real WebRTC between Chromium tabs is e2e/elastic.spec.ts.
import { describe, expect, it } from 'vitest';
import { runAllReduce } from '../../collective/collectives';
import { encodeFrame, roomHash } from '../../peer/frame';
import { FakeNet } from '../../peer/fake-mesh';
import { ElasticRoom, type Formation } from './elastic-room';
import { needsState } from './roster';

const fresh = { step: -1, hash: '' };
const card = (step: number, hash = 'ab'.repeat(8)) => ({ step, hash });

function rooms(net: FakeNet, admits?: () => true | string) {
  return new Map(net.nodes.map((n) => [n.peerId, new ElasticRoom(n, { graceMs: 100, formTimeoutMs: 3000, admits })]));
}

async function allReduceOnes(formations: Formation[]): Promise<number[][]> {
  return Promise.all(
    formations.map(async (f) => {
      const v = new Float32Array(5).fill(f.rank + 1);
      await runAllReduce(f.transport, v, { round: 1, collective: 16 });
      return Array.from(v);
    }),
  );
}

describe('ElasticRoom', () => {
  it('forms a new room once the expected tabs are ready: one epoch, one rank order, nobody holds state', async () => {
    const net = new FakeNet(['tab-c', 'tab-a', 'tab-b']);
    const byId = rooms(net);
    const formations = await Promise.all([...byId.values()].map((room) => room.form(fresh, 3)));
    for (const f of formations) {
      expect(f).toMatchObject({ epoch: 1, members: ['tab-a', 'tab-b', 'tab-c'], world: 3, source: -1 });
    }
    expect(formations.map((f) => f.rank).sort()).toEqual([0, 1, 2]);
    expect(await allReduceOnes(formations)).toEqual(Array(3).fill(Array(5).fill(6)));
  });

  it('forms a room of ids as the signalling server assigns them (base64url: upper case, - and _)', async () => {
    // server/peer-ids.ts: base36 join time, '-', 12 base64url characters. The coordinator's roster names
    // every member, so a member that refused such ids would wait for a roster that never comes.
    const ids = ['0mxc31axs-OlTGohQDvbXS', '0mxc31aok-hS9A2O2JyQK0', '0mxc31b2f-_x-Z9Q_aB7cD'];
    const byId = rooms(new FakeNet(ids));
    const formations = await Promise.all([...byId.values()].map((room) => room.form(fresh, 3)));
    for (const f of formations) expect(f).toMatchObject({ epoch: 1, members: [ids[1], ids[0], ids[2]], world: 3 });
    expect(await allReduceOnes(formations)).toEqual(Array(3).fill(Array(5).fill(6)));
  });

  it('re-forms without a tab that died: survivors agree on the next epoch and on the most advanced state', async () => {
    const net = new FakeNet(['tab-a', 'tab-b', 'tab-c', 'tab-d']);
    const byId = rooms(net);
    await Promise.all([...byId.values()].map((room) => room.form(fresh, 4)));
    net.kill('tab-a'); // the coordinator itself
    for (const id of ['tab-b', 'tab-c', 'tab-d']) expect(byId.get(id)!.reformWanted()).toMatch(/rank 0 \(tab-a\) is gone/);
    // tab-c completed step 8 before the ring broke; the others were still in it (at 7)
    const cards = { 'tab-b': card(7), 'tab-c': card(8, 'cd'.repeat(8)), 'tab-d': card(7) };
    const formations = await Promise.all(Object.entries(cards).map(([id, c]) => byId.get(id)!.form(c)));
    for (const f of formations) {
      expect(f).toMatchObject({ epoch: 2, members: ['tab-b', 'tab-c', 'tab-d'], world: 3, source: 1, left: ['tab-a'], joined: [] });
    }
    expect(formations[0].cards.map((c) => needsState(c, formations[0].cards[1]))).toEqual([true, false, true]);
    expect(await allReduceOnes(formations)).toEqual(Array(3).fill(Array(5).fill(6)));
  });

  it('admits a new tab at a step boundary: rank 0 asks, everyone re-forms, the newcomer needs the state', async () => {
    const net = new FakeNet(['tab-a', 'tab-b']);
    const byId = rooms(net);
    await Promise.all([...byId.values()].map((room) => room.form(fresh, 2)));
    const newcomer = new ElasticRoom(net.add('tab-z'), { graceMs: 100, formTimeoutMs: 3000 });
    const joining = newcomer.form(fresh);
    await new Promise((r) => setTimeout(r, 20));
    expect(byId.get('tab-a')!.reformWanted()).toMatch(/tab tab-z asks to join/);
    expect(byId.get('tab-b')!.reformWanted()).toBeNull(); // only rank 0 decides, at its own boundary
    byId.get('tab-a')!.abort('a tab asks to join');
    await new Promise((r) => setTimeout(r, 20));
    expect(byId.get('tab-b')!.reformWanted()).toMatch(/asks to join/);
    const formations = await Promise.all([byId.get('tab-a')!.form(card(3)), byId.get('tab-b')!.form(card(3)), joining]);
    for (const f of formations) expect(f).toMatchObject({ epoch: 2, members: ['tab-a', 'tab-b', 'tab-z'], source: 0 });
    expect(formations[2].joined).toEqual(['tab-a', 'tab-b']);
    expect(formations[0].joined).toEqual(['tab-z']);
    expect(formations[0].cards.map((c) => needsState(c, formations[0].cards[0]))).toEqual([false, false, true]);
    expect(await allReduceOnes(formations)).toEqual(Array(3).fill(Array(5).fill(6)));
  });

  it('turns a newcomer away with the reason when the run is not elastic', async () => {
    const net = new FakeNet(['tab-a', 'tab-b']);
    const byId = rooms(net, () => 'mode=ps is not elastic');
    await Promise.all([...byId.values()].map((room) => room.form(fresh, 2)));
    const newcomer = new ElasticRoom(net.add('tab-z'), { graceMs: 100, formTimeoutMs: 3000 });
    await expect(newcomer.form(fresh)).rejects.toThrow(/turned this tab away: mode=ps is not elastic/);
    expect(byId.get('tab-a')!.reformWanted()).toBeNull();
  });

  it('keeps data frames of the coming epoch that arrive before its roster, and drops stale ones', async () => {
    const net = new FakeNet(['tab-a', 'tab-b']);
    const byId = rooms(net);
    await Promise.all([...byId.values()].map((room) => room.form(fresh, 2)));
    const header = { type: 'data' as const, roomHash: roomHash('TEST'), round: 4, collective: 2, chunk: 0, sender: 0, part: 0, parts: 1 };
    const b = net.node('tab-b');
    b.receive('tab-a', encodeFrame({ ...header, epoch: 2 }, new Uint8Array([42])));
    b.receive('tab-a', encodeFrame({ ...header, epoch: 1, chunk: 1 }, new Uint8Array([1]))); // the live ring's own
    byId.get('tab-a')!.abort('test');
    await new Promise((r) => setTimeout(r, 10));
    const [, fb] = await Promise.all([byId.get('tab-a')!.form(card(1)), byId.get('tab-b')!.form(card(1))]);
    expect(fb.epoch).toBe(2);
    expect(Array.from(await fb.transport.recv(0, { round: 4, collective: 2, chunk: 0 }))).toEqual([42]);
    expect(b.refused).toEqual([]);
  });

  it('gives up with a clear error when no ring forms in time', async () => {
    const net = new FakeNet(['tab-a']);
    const room = new ElasticRoom(net.node('tab-a'), { graceMs: 50, formTimeoutMs: 300 });
    await expect(room.form(fresh, 2)).rejects.toThrow(/no ring formed: 1 of 2 tabs joined \(reachable: 1, ready: 1\); nothing new for 0\.3 s/);
  });

  it('waits as long as tabs keep joining: 5 tabs 150 ms apart form a ring whose wait is 400 ms without news', async () => {
    const net = new FakeNet(['tab-a']);
    const options = { graceMs: 50, formTimeoutMs: 400 };
    const began = performance.now();
    const forming = [new ElasticRoom(net.node('tab-a'), options).form(fresh, 5)];
    for (const id of ['tab-b', 'tab-c', 'tab-d', 'tab-e']) {
      await new Promise((r) => setTimeout(r, 150));
      forming.push(new ElasticRoom(net.add(id), options).form(fresh, 5));
    }
    const formations = await Promise.all(forming);
    for (const f of formations) expect(f).toMatchObject({ epoch: 1, members: ['tab-a', 'tab-b', 'tab-c', 'tab-d', 'tab-e'], world: 5 });
    // The ring formed after the 400 ms a fixed wait would have allowed.
    expect(performance.now() - began).toBeGreaterThan(400);
  });

  it('counts the wait from the last tab that joined, and names how many came when it runs out', async () => {
    const net = new FakeNet(['tab-a']);
    const options = { graceMs: 50, formTimeoutMs: 400 };
    const began = performance.now();
    const first = new ElasticRoom(net.node('tab-a'), options).form(fresh, 4);
    const outcome = first.then(
      () => 'formed',
      (error: Error) => error.message,
    );
    await new Promise((r) => setTimeout(r, 300));
    const second = new ElasticRoom(net.add('tab-b'), options).form(fresh, 4);
    second.catch(() => undefined);
    const message = await outcome;
    expect(message).toMatch(/no ring formed: 2 of 4 tabs joined \(reachable: 2, ready: 2\); nothing new for 0\.4 s/);
    // It ran out 400 ms after tab-b came (at about 300 ms), not 400 ms after it began.
    expect(performance.now() - began).toBeGreaterThanOrEqual(700);
    await expect(second).rejects.toThrow(/2 of 4 tabs joined/);
  });

  describe('in a room past the full-mesh size (not every pair linked)', () => {
    const ids = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `tab-${String(i + from).padStart(2, '0')}`);
    const sparse = (n: number) => {
      const net = new FakeNet(ids(n));
      net.fullMeshMax = 4;
      return net;
    };
    const unlinkedPairs = (net: FakeNet) => {
      const live = net.nodes.filter((n) => !n.dead).map((n) => n.peerId);
      return live.flatMap((a) => live.filter((b) => a < b && !net.linked(a, b))).length;
    };

    it('forms one ring of 12 over about 4N links, re-forms after the coordinator and a middle tab die, and admits a newcomer', async () => {
      const net = sparse(12);
      const byId = rooms(net);
      const first = await Promise.all([...byId.values()].map((room) => room.form(fresh, 12)));
      for (const f of first) expect(f).toMatchObject({ epoch: 1, members: ids(12), world: 12, source: -1 });
      expect(unlinkedPairs(net)).toBeGreaterThan(20); // of 66 pairs: the room is not a full mesh
      expect(await allReduceOnes(first)).toEqual(Array(12).fill(Array(5).fill(78)));

      // tab-06 crashes: only the tabs linked to it notice, the others learn it from the abort flood.
      expect(net.linked('tab-06', 'tab-10')).toBe(false);
      net.kill('tab-06', 'crash');
      await new Promise((r) => setTimeout(r, 20));
      expect(byId.get('tab-10')!.reformWanted()).toMatch(/re-form|gone/);
      net.kill('tab-00'); // and the coordinator (a hub) leaves
      const survivors = ids(12).filter((id) => id !== 'tab-00' && id !== 'tab-06');
      for (const id of survivors) expect(byId.get(id)!.reformWanted()).not.toBeNull();
      const second = await Promise.all(survivors.map((id) => byId.get(id)!.form(card(5))));
      for (const f of second) expect(f).toMatchObject({ epoch: 2, members: survivors, world: 10, left: ['tab-00', 'tab-06'] });
      expect(await allReduceOnes(second)).toEqual(Array(10).fill(Array(5).fill(55)));

      // A newcomer asks rank 0 (tab-01, now the lowest id and a hub); it needs the state from the source.
      const newcomer = new ElasticRoom(net.add('tab-20'), { graceMs: 100, formTimeoutMs: 3000 });
      const joining = newcomer.form(fresh);
      await new Promise((r) => setTimeout(r, 20));
      expect(byId.get('tab-01')!.reformWanted()).toMatch(/tab tab-20 asks to join/);
      byId.get('tab-01')!.abort('a tab asks to join');
      await new Promise((r) => setTimeout(r, 20));
      for (const id of survivors) expect(byId.get(id)!.reformWanted()).toMatch(/asks to join/);
      const third = await Promise.all([...survivors.map((id) => byId.get(id)!.form(card(6))), joining]);
      for (const f of third) expect(f).toMatchObject({ epoch: 3, members: [...survivors, 'tab-20'], world: 11, source: 0 });
      // The epoch's links are open: the newcomer reaches its ring neighbours and the source.
      for (const id of [survivors[0], survivors[9]]) expect(net.linked('tab-20', id)).toBe(true);
      expect(await allReduceOnes(third)).toEqual(Array(11).fill(Array(5).fill(66)));
    });

    it('takes 32 tabs and turns the 33rd away with the reason', async () => {
      const net = sparse(32);
      const byId = rooms(net);
      const formations = await Promise.all([...byId.values()].map((room) => room.form(fresh, 32)));
      expect(formations[31]).toMatchObject({ epoch: 1, world: 32, rank: 31 });
      const late = new ElasticRoom(net.add('tab-40'), { graceMs: 100, formTimeoutMs: 3000 });
      await expect(late.form(fresh)).rejects.toThrow(/turned this tab away: the room is full \(32 training tabs\)/);
    });
  });

  it('stops waiting for a coordinator whose links never open: the next oldest coordinates', async () => {
    // tab-a is in the member list (signalling knows it) but no link to it ever opens.
    const net = new FakeNet(['tab-a', 'tab-b', 'tab-c']);
    net.node('tab-a').dead = true; // hears and sends nothing, yet stays listed: isOpen is false for everyone
    const listed = (node: ReturnType<FakeNet['node']>) => Object.assign(node, { memberList: () => ['tab-a', 'tab-b', 'tab-c'] });
    const options = { graceMs: 50, unreachableMs: 300, formTimeoutMs: 3000 };
    const b = new ElasticRoom(listed(net.node('tab-b')), options);
    const c = new ElasticRoom(listed(net.node('tab-c')), options);
    const started = performance.now();
    const [fb, fc] = await Promise.all([b.form(fresh, 2), c.form(fresh, 2)]);
    for (const f of [fb, fc]) expect(f).toMatchObject({ epoch: 1, members: ['tab-b', 'tab-c'], world: 2 });
    expect(performance.now() - started).toBeGreaterThanOrEqual(300);
  });
});
