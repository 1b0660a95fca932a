// Gradient compression on the wire: fp16 inside the ring, Top-K and Random-K with error feedback.
// Replicas must stay bitwise equal every step, bytes counted must be exactly the codec's, and error
// feedback must lose nothing (sent + residual = everything accumulated).
import { describe, expect, it } from 'vitest';
import { compactSparseBytes, kForRatio } from '../collective/codecs';
import { viewOf } from '../engine/backend';
import { sparseHooks, type ParallelContext } from './strategy';
import { bytesSentBy, maxDifference, testConfig, trainRoom } from '../lab/parallel-test-support';

describe('fp16 on the wire', () => {
  it.each([2, 4])('%i ranks: replicas bitwise equal every step, half the bytes of float32, close to it', async (world) => {
    const dense = await trainRoom(world, testConfig());
    const half = await trainRoom(world, testConfig({ compression: 'fp16' }));
    for (const hashes of half.hashesPerStep) expect(new Set(hashes).size).toBe(1);
    half.ranks.forEach((rank, r) => expect(bytesSentBy(rank)).toBe(bytesSentBy(dense.ranks[r]) / 2));
    const start = await trainRoom(1, testConfig({ steps: 1 }));
    const moved = maxDifference(start.params[0], dense.params[0]);
    // fp16 keeps ~3 significant digits of each gradient: the run stays within a few percent of the move.
    expect(maxDifference(dense.params[0], half.params[0])).toBeLessThan(0.05 * moved);
    expect(maxDifference(dense.params[0], half.params[0])).toBeGreaterThan(0); // it did round
  });
});

interface Recorded {
  grads: Float32Array[];
  sent: { indices: Uint32Array; values: Float32Array }[];
  payloadBytes: number[][];
  stepBytes: number[];
}

/** The real sparse hooks, wrapped to record each step's local gradient and what went on the wire. */
function recordingSparseHooks(kind: 'topk' | 'randomk', log: Recorded[]) {
  return (ctx: ParallelContext) => {
    const hooks = sparseHooks(ctx, kind);
    const record: Recorded = { grads: [], sent: [], payloadBytes: [], stepBytes: [] };
    log[ctx.transport.rank] = record;
    return {
      ...hooks,
      gradSync: async (c: Parameters<NonNullable<typeof hooks.gradSync>>[0]) => {
        record.grads.push(await ctx.backend.read(viewOf(c.grads)));
        const result = await hooks.gradSync!(c);
        const step = hooks.sync().lastStep!;
        record.sent.push(step.sent);
        record.payloadBytes.push(step.payloadBytes);
        record.stepBytes.push(result?.bytesSent ?? NaN);
        return result;
      },
    };
  };
}

describe.each(['topk', 'randk'] as const)('%s with error feedback', (compression) => {
  const kind = compression === 'topk' ? 'topk' : 'randomk';

  it.each([2, 4])('%i ranks: replicas bitwise equal every step; bytes exactly the codec formula; nothing lost', async (world) => {
    const ratio = 0.05;
    const log: Recorded[] = [];
    const config = testConfig({ compression, ratio });
    const room = await trainRoom(world, config, { makeHooks: recordingSparseHooks(kind, log) });
    for (const hashes of room.hashesPerStep) expect(new Set(hashes).size).toBe(1);

    const length = room.ranks[0].run.model.params.length;
    const k = kForRatio(length, ratio);
    room.ranks.forEach((rank, r) => {
      const { sent, payloadBytes, stepBytes } = log[r];
      for (let step = 0; step < config.steps; step++) {
        expect(sent[step].indices.length).toBe(k);
        if (compression === 'topk') {
          // Sizes first (one word per rank, N-1 hops), then every payload but the next rank's own.
          expect(payloadBytes[step][r]).toBe(compactSparseBytes(sent[step].indices));
          const forwarded = payloadBytes[step].reduce((sum, bytes, q) => (q === (r + 1) % world ? sum : sum + bytes), 0);
          expect(stepBytes[step]).toBe((world - 1) * 4 + forwarded);
          // Compact indices: well under the 8 bytes per entry of the interleaved format.
          expect(payloadBytes[step][r]).toBeLessThan(4 + 6 * k);
        } else {
          // Shared indices: every rank drew the same ones, and only k values are all-reduced.
          expect(Array.from(sent[step].indices)).toEqual(Array.from(log[0].sent[step].indices));
        }
      }
      expect(stepBytes.reduce((a, b) => a + b, 0)).toBe(bytesSentBy(rank));
    });
    if (compression === 'randk') {
      // A ring all-reduce of k floats: 2(N-1) chunks of k/N per rank, 8k(N-1) bytes over the room.
      const total = room.ranks.reduce((sum, rank) => sum + bytesSentBy(rank), 0);
      expect(total).toBe(config.steps * 8 * k * (world - 1));
    }

    // Error feedback conserves mass on every rank: sum of gradients = sum of what was sent + residual.
    for (const [r, { grads, sent }] of log.entries()) {
      const accumulated = new Float64Array(length);
      for (const g of grads) g.forEach((v, i) => (accumulated[i] += v));
      const delivered = new Float64Array(length);
      for (const s of sent) s.indices.forEach((index, i) => (delivered[index] += s.values[i]));
      const hooks = room.ranks[r].hooks as unknown as ReturnType<typeof sparseHooks>;
      const residual = hooks.sync().sparsifier.residual;
      let worst = 0;
      let scale = 0;
      for (let i = 0; i < length; i++) {
        worst = Math.max(worst, Math.abs(delivered[i] + residual[i] - accumulated[i]));
        scale = Math.max(scale, Math.abs(accumulated[i]));
      }
      expect(worst).toBeLessThan(1e-5 * Math.max(1, scale));
      expect(residual.some((v) => v !== 0)).toBe(true); // something really was held back
    }
  });
});

describe('momentum correction (DGC) and the optimizer', () => {
  const topk = (ctx: ParallelContext) => sparseHooks(ctx, 'topk');

  it('AdamW (the defaults): no momentum to correct, the optimizer is left alone', async () => {
    const room = await trainRoom(2, testConfig({ compression: 'topk', ratio: 0.1, steps: 2 }), { makeHooks: topk });
    expect(room.ranks[0].run.optimizer.config.kind).toBe('adamw');
    const hooks = room.ranks[0].hooks;
    expect(hooks.sync().sparsifier.velocity).toBeNull();
  });

  it('SGD + momentum: the sparsifier owns the momentum and the optimizer runs without it', async () => {
    const sgd = { optimizer: { kind: 'sgd' as const, lr: 0.1, momentum: 0.9, weightDecay: 0 } };
    const config = testConfig({ compression: 'topk', ratio: 0.1, steps: 4 });
    const room = await trainRoom(2, config, { recipe: sgd, makeHooks: topk });
    for (const hashes of room.hashesPerStep) expect(new Set(hashes).size).toBe(1);
    expect(room.ranks[0].run.optimizer.config).toMatchObject({ kind: 'sgd', momentum: 0 });
    const hooks = room.ranks[0].hooks;
    expect(hooks.sync().sparsifier.velocity).not.toBeNull();
    // Sending everything (ratio 1) masks all the momentum every step (DGC's momentum factor masking):
    // the run is then exactly dense SGD without momentum, which pins down how the two interact.
    const all = await trainRoom(2, testConfig({ compression: 'topk', ratio: 1, steps: 4 }), { recipe: sgd });
    const plain = await trainRoom(2, testConfig({ steps: 4 }), { recipe: { optimizer: { ...sgd.optimizer, momentum: 0 } } });
    const withMomentum = await trainRoom(2, testConfig({ steps: 4 }), { recipe: sgd });
    expect(maxDifference(all.params[0], plain.params[0])).toBeLessThan(1e-6);
    expect(maxDifference(all.params[0], withMomentum.params[0])).toBeGreaterThan(1e-4);
  });
});
