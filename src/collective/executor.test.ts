import { describe, expect, it } from 'vitest';
import { runAllGather, runAllReduce, runBroadcast, runReduceScatter, runSparseAllGather } from './collectives';
import { f16BitsToF32, f32ToF16Bits } from './codecs';
import { CollectiveError, type StepInfo, runSchedule } from './executor';
import { PeerLostError, createMemoryMesh } from './memory-transport';
import { parameterServerRound, ringAllReduce } from './schedules';
import { exactSum, firstBitDifference, integerInput } from './test-support';
import type { ChunkEvent } from './types';

const bytesOf = (x: Float32Array): number[] => Array.from(new Uint8Array(x.buffer, x.byteOffset, x.byteLength));

function randomFloats(seed: number, length: number): Float32Array {
  let state = seed * 2654435761 + 1;
  const x = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    state = (state * 1103515245 + 12345) % 2147483648;
    x[i] = (state / 2147483648 - 0.5) * 3.7;
  }
  return x;
}

describe('executor over the in-memory transport', () => {
  it('all-reduces exactly with concurrent ranks, world 1..16, awkward lengths', async () => {
    for (let world = 1; world <= 16; world++) {
      for (const length of [...new Set([0, 1, Math.max(world - 1, 0), 101, 1009])]) {
        const mesh = createMemoryMesh(world);
        const data = mesh.map((t) => integerInput(t.rank, length));
        await Promise.all(mesh.map((t, r) => runAllReduce(t, data[r], { round: 0, collective: 0, maxMessageElements: 37 })));
        const want = exactSum(world, length);
        for (const x of data) expect(firstBitDifference(x, want)).toBe(-1);
        for (const t of mesh) expect(t.pendingMessages).toBe(0);
      }
    }
  });

  it('handles 1e5+3 elements at world 16 with default message sizes', async () => {
    const world = 16;
    const length = 100_003;
    const mesh = createMemoryMesh(world);
    const data = mesh.map((t) => integerInput(t.rank, length));
    const stats = await Promise.all(mesh.map((t, r) => runAllReduce(t, data[r], { round: 3, collective: 1 })));
    const want = exactSum(world, length);
    for (const x of data) expect(firstBitDifference(x, want)).toBe(-1);
    const chunks = ringAllReduce(world, 0, length).chunks;
    stats.forEach((s, rank) => {
      expect(s.bytesSent).toBe(4 * (2 * length - chunks[rank].length - chunks[(rank + 1) % world].length));
    });
  });

  it('leaves every rank with the same bytes for non-integer data (ring and naive)', async () => {
    for (const algorithm of ['ring', 'naive'] as const) {
      const world = 5;
      // Uneven links, so that each rank hears its peers in a different order.
      const mesh = createMemoryMesh(world, { linkLatencyMs: (from, to) => (from * 7 + to * 3) % 5 });
      const data = mesh.map((t) => randomFloats(t.rank + 1, 333));
      await Promise.all(mesh.map((t, r) => runAllReduce(t, data[r], { round: 0, collective: 0, algorithm, maxMessageElements: 50 })));
      for (const x of data) expect(bytesOf(x)).toEqual(bytesOf(data[0]));
      const approx = new Float64Array(333);
      for (let r = 0; r < world; r++) randomFloats(r + 1, 333).forEach((v, i) => (approx[i] += v));
      data[0].forEach((v, i) => expect(v).toBeCloseTo(approx[i], 4));
    }
  });

  it('averages when asked', async () => {
    const world = 4;
    const mesh = createMemoryMesh(world);
    const data = mesh.map((t) => integerInput(t.rank, 50).map((v) => v * world));
    await Promise.all(mesh.map((t, r) => runAllReduce(t, data[r], { round: 0, collective: 0, average: true, maxMessageElements: 4 })));
    for (const x of data) expect(Array.from(x)).toEqual(Array.from(exactSum(world, 50)));
  });

  it('reduce-scatters into ZeRO-style shards and all-gathers them back', async () => {
    const world = 3;
    const boundaries = [0, 64, 128, 150];
    const mesh = createMemoryMesh(world);
    const data = mesh.map((t) => integerInput(t.rank, 150));
    const results = await Promise.all(mesh.map((t, r) => runReduceScatter(t, data[r], { round: 1, collective: 0, boundaries, average: true })));
    const mean = exactSum(world, 150).map((v) => v / world);
    results.forEach(({ owned }, rank) => {
      expect(owned).toEqual({ offset: boundaries[rank], length: boundaries[rank + 1] - boundaries[rank] });
      expect(bytesOf(data[rank].subarray(owned.offset, owned.offset + owned.length))).toEqual(bytesOf(mean.subarray(owned.offset, owned.offset + owned.length)));
    });
    await Promise.all(mesh.map((t, r) => runAllGather(t, data[r], { round: 1, collective: 1, boundaries })));
    for (const x of data) expect(bytesOf(x)).toEqual(bytesOf(mean));
  });

  it('broadcasts from a root', async () => {
    for (const topology of ['chain', 'star'] as const) {
      const mesh = createMemoryMesh(6);
      const data = mesh.map((t) => (t.rank === 2 ? integerInput(7, 90) : new Float32Array(90)));
      await Promise.all(mesh.map((t, r) => runBroadcast(t, data[r], 2, { round: 0, collective: 0, topology, maxMessageElements: 20 })));
      for (const x of data) expect(Array.from(x)).toEqual(Array.from(integerInput(7, 90)));
    }
  });

  it('runs a parameter-server round: gather, update at the server, broadcast', async () => {
    const world = 4;
    const server = 0;
    const mesh = createMemoryMesh(world);
    const grads = mesh.map((t) => integerInput(t.rank, 40));
    const params = mesh.map((t) => (t.rank === server ? new Float32Array(40).fill(1) : new Float32Array(40)));
    await Promise.all(
      mesh.map(async (t, r) => {
        const round = parameterServerRound(server, world, r, 40);
        await runSchedule(t, round.gather, grads[r], { round: 0, collective: 0, average: true });
        if (r === server) params[r].forEach((p, i) => (params[r][i] = p - 0.5 * grads[r][i]));
        await runSchedule(t, round.broadcast, params[r], { round: 0, collective: 1 });
      }),
    );
    const want = exactSum(world, 40).map((g) => 1 - 0.5 * (g / world));
    for (const p of params) expect(bytesOf(p)).toEqual(bytesOf(want));
  });

  it('sparse all-gather returns every payload bit for bit, any sizes', async () => {
    const world = 4;
    const mesh = createMemoryMesh(world);
    const payloads = [12, 0, 4, 1000].map((bytes, r) => Uint8Array.from({ length: bytes }, (_, i) => (i * 31 + r) & 255));
    const results = await Promise.all(mesh.map((t, r) => runSparseAllGather(t, payloads[r], { round: 0, collective: 4, maxMessageElements: 16 })));
    for (const { payloads: got } of results) {
      expect(got.map((p) => Array.from(p))).toEqual(payloads.map((p) => Array.from(p)));
    }
    await expect(runSparseAllGather(mesh[0], new Uint8Array(3), { round: 1, collective: 0 })).rejects.toThrow(/whole 32-bit words/);
  });

  it('emits one ChunkEvent per scheduled send and receive (4-rank all-reduce)', async () => {
    const world = 4;
    const mesh = createMemoryMesh(world);
    const events: ChunkEvent[] = [];
    const data = mesh.map((t) => integerInput(t.rank, 70));
    await Promise.all(mesh.map((t, r) => runAllReduce(t, data[r], { round: 9, collective: 2, maxMessageElements: 8, onEvent: (e) => events.push(e) })));
    for (let rank = 0; rank < world; rank++) {
      const schedule = ringAllReduce(world, rank, 70, { maxMessageElements: 8 });
      const key = (d: string, step: number, a: { chunk: number; part: number; offset: number; length: number }, peer: number) =>
        `${d} s${step} c${a.chunk} p${a.part} @${a.offset}+${a.length} peer${peer} ${a.length * 4}B`;
      const expected = schedule.steps.flatMap((s) => [
        ...s.sends.map((a) => key('send', s.step, a, a.to)),
        ...s.recvs.map((a) => key('recv', s.step, a, a.from)),
      ]);
      const got = events.filter((e) => e.rank === rank).map((e) => key(e.direction, e.step, e, e.peer) + ` ${e.bytes}B`);
      expect(got.sort()).toEqual(expected.map((k) => `${k} ${k.split(' ').pop()}`).sort());
    }
    for (const e of events) {
      expect(e.runId).toBe('9:2');
      expect(e.collective).toBe('ring-allreduce');
      expect(e.tEnd).toBeGreaterThanOrEqual(e.tStart);
    }
  });

  it('awaits the gate before each step, so a teacher can hold the whole ring', async () => {
    const world = 3;
    const mesh = createMemoryMesh(world);
    const data = mesh.map((t) => integerInput(t.rank, 30));
    const events: ChunkEvent[] = [];
    const seen: StepInfo[] = [];
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const gate = async (info: StepInfo) => {
      seen.push(info);
      if (info.step === 2) await held;
    };
    const run = Promise.all(mesh.map((t, r) => runAllReduce(t, data[r], { round: 0, collective: 0, gate, onEvent: (e) => events.push(e) })));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(events.every((e) => e.step < 2)).toBe(true);
    expect(events.length).toBe(2 * 2 * world); // 2 steps x (send + recv) x ranks
    release();
    await run;
    expect(seen.filter((s) => s.rank === 0).map((s) => s.step)).toEqual([0, 1, 2, 3]);
    expect(seen[0].steps).toBe(4);
    expect(Array.from(data[1])).toEqual(Array.from(exactSum(world, 30)));
  });

  it('fails with a clear error on every survivor when a rank dies mid-collective', async () => {
    const world = 4;
    const mesh = createMemoryMesh(world, { latencyMs: 5, recvTimeoutMs: 300 });
    const data = mesh.map((t) => integerInput(t.rank, 400));
    const runs = mesh.map((t, r) => runAllReduce(t, data[r], { round: 0, collective: 0, maxMessageElements: 10 }));
    setTimeout(() => mesh[2].kill(), 12);
    const results = await Promise.allSettled(runs);
    const reasons = results.map((result) => {
      expect(result.status).toBe('rejected');
      const error = (result as PromiseRejectedResult).reason;
      expect(error).toBeInstanceOf(CollectiveError);
      return error as CollectiveError;
    });
    // The dead rank's neighbours learn at once (send to it / receive from it fails); rank 0 only talks
    // to live ranks that stopped, and learns from the transport's deadline.
    for (const rank of [1, 2, 3]) expect(reasons[rank].cause).toBeInstanceOf(PeerLostError);
    expect(reasons[0].message).toMatch(/rank 0 step \d+: .*timed out/);
  });

  it('refuses a schedule for the wrong rank or vector size, and messages of the wrong size', async () => {
    const mesh = createMemoryMesh(2);
    await expect(runSchedule(mesh[0], ringAllReduce(2, 1, 4), new Float32Array(4), { round: 0, collective: 0 })).rejects.toThrow(/rank 1\/2/);
    await expect(runSchedule(mesh[0], ringAllReduce(2, 0, 4), new Float32Array(5), { round: 0, collective: 0 })).rejects.toThrow(/4 elements/);
    // Rank 1 sends a forged short message where rank 0 expects its first chunk.
    await mesh[1].send(0, { round: 0, collective: 0, chunk: 0 }, new Uint8Array(3));
    await expect(runSchedule(mesh[0], ringAllReduce(2, 0, 4), new Float32Array(4), { round: 0, collective: 0 })).rejects.toThrow(/3 bytes, expected 8/);
  });

  it('fp16 wire: half the bytes, every rank bitwise equal, within fp16 rounding of the exact mean', async () => {
    for (const algorithm of ['ring', 'naive'] as const) {
      for (const world of [2, 3, 4]) {
        const length = 1001;
        const mesh = createMemoryMesh(world, { linkLatencyMs: (from, to) => (from * 5 + to) % 3 });
        const data = mesh.map((t) => randomFloats(t.rank + 7, length));
        const dense = await Promise.all(mesh.map((t) => runAllReduce(t, randomFloats(t.rank + 7, length), { round: 0, collective: 0, algorithm, average: true })));
        const halves = await Promise.all(
          mesh.map((t, r) => runAllReduce(t, data[r], { round: 1, collective: 0, algorithm, average: true, wire: 'f16', maxMessageElements: 100 })),
        );
        for (const x of data) expect(bytesOf(x)).toEqual(bytesOf(data[0]));
        halves.forEach((stats, rank) => expect(stats.bytesSent).toBe(dense[rank].bytesSent / 2));
        const mean = new Float64Array(length);
        for (let r = 0; r < world; r++) randomFloats(r + 7, length).forEach((v, i) => (mean[i] += v / world));
        // fp16 keeps 11 significant bits; every hop of a partial sum rounds once more.
        data[0].forEach((v, i) => expect(Math.abs(v - mean[i])).toBeLessThan(world * 2 ** -10 * 2));
        // ...and in the ring the result really travelled as fp16: every value is an fp16 number (the
        // naive exchange adds rounded inputs locally, so its sums need not be).
        if (algorithm === 'ring') for (const v of data[0]) expect(f16BitsToF32(f32ToF16Bits(v))).toBe(v);
      }
    }
  });

  it('fp16 wire: refuses a message of float32 size', async () => {
    const mesh = createMemoryMesh(2);
    await mesh[1].send(0, { round: 0, collective: 0, chunk: 0 }, new Uint8Array(8));
    await expect(runSchedule(mesh[0], ringAllReduce(2, 0, 4), new Float32Array(4), { round: 0, collective: 0, wire: 'f16' })).rejects.toThrow(/8 bytes, expected 4/);
  });
});
