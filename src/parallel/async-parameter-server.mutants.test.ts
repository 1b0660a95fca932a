// Checks of async-parameter-server.ts that mutation testing (npm run mutate) showed missing: no unit test
// drove the class directly (the strategy tests reach it through whole training runs with a clip norm
// set and gradients that are never refused), and 51 of its 196 mutants survived, 18 more uncovered.
// Here each rank is the class itself over the in-memory mesh with a stand-in model (two buffers) and
// plain SGD, and gradients made of small integers, so that every expected parameter is exact:
// - every push is applied once at lr / world, on a server that is not rank 0 too, and every rank ends
//   with the same final parameters; the server stops receiving after the last step;
// - the bytes each step reports (the server's background traffic included) and the chunk events;
// - the wire format [u32 round, little-endian | float32 vector] that another build must read alike;
// - clipping at the server on and off, a gradient from a faulty peer refused (future round), and bad
//   input: options out of range, a payload of the wrong size, an own push out of order, a lost worker:
//   each a clear error instead of a hang or a silently wrong step.
import { describe, expect, it } from 'vitest';
import { COLLECTIVE_IDS } from '../collective/collective-ids';
import { createMemoryMesh, type MemoryTransport } from '../collective/memory-transport';
import type { ChunkEvent, MessageTag, Transport } from '../collective/types';
import { viewOf, type DeviceBuffer } from '../engine/backend';
import { CpuBackend } from '../engine/cpu-backend';
import { buildLayout } from '../model/layout';
import type { Model } from '../model/model';
import { Optimizer } from '../train/optimizer';
import type { GradSyncContext, GradSyncResult } from '../train/trainer';
import { AsyncParameterServer, type AsyncParameterServerOptions } from './async-parameter-server';

const N = 64;
const layout = buildLayout([{ name: 'w', shape: [N], group: 'layer', decay: false, init: { kind: 'constant', value: 0 } }]);
const GRAD = COLLECTIVE_IDS.asyncPsGradients.first;
const PARAMS = COLLECTIVE_IDS.asyncPsParams.first;
const FINAL = COLLECTIVE_IDS.asyncPsFinal.first;
/** A message: 4-byte round header, then the floats. */
const MESSAGE_BYTES = 4 + 4 * N;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const ctx = (step: number) => ({ step }) as GradSyncContext;

/** Rank r's gradient at step s: every element (r + 1) * (s + 1) (small integers: sums are exact). */
const gradientOf = (rank: number, step: number) => new Float32Array(N).fill((rank + 1) * (step + 1));

interface Sent {
  from: number;
  to: number;
  tag: MessageTag;
  payload: Uint8Array;
}

/** Records every send, and counts receives asked for and not yet settled. */
function instrumented(inner: Transport, sent: Sent[]): Transport & { outstanding: () => number } {
  let outstanding = 0;
  return {
    rank: inner.rank,
    world: inner.world,
    send: (to, tag, payload) => {
      sent.push({ from: inner.rank, to, tag, payload: payload.slice() });
      return inner.send(to, tag, payload);
    },
    recv: (from, tag) => {
      outstanding++;
      const message = inner.recv(from, tag);
      message.then(
        () => outstanding--,
        () => outstanding--,
      );
      return message;
    },
    outstanding: () => outstanding,
  };
}

interface Rank {
  ps: AsyncParameterServer;
  backend: CpuBackend;
  params: DeviceBuffer;
  grads: DeviceBuffer;
  transport: ReturnType<typeof instrumented>;
  events: ChunkEvent[];
  results: { gradSync: GradSyncResult; afterUpdate: GradSyncResult }[];
}

/** One rank: the class over `transport`, parameters starting at 0, SGD at lr = world / 4 (lr / world = 0.25, exact). */
function rankOn(transport: Transport, sent: Sent[], options: Partial<AsyncParameterServerOptions> = {}): Rank {
  const backend = new CpuBackend();
  const params = backend.alloc(N, 'params', 'params');
  const grads = backend.alloc(N, 'grads', 'grads');
  backend.fill(viewOf(params), 0);
  const model = { params, grads } as unknown as Model;
  const lr = transport.world / 4;
  const optimizer = new Optimizer(backend, layout, { kind: 'sgd', lr, momentum: 0, weightDecay: 0 });
  const events: ChunkEvent[] = [];
  const wrapped = instrumented(transport, sent);
  const ps = new AsyncParameterServer({
    backend,
    transport: wrapped,
    model,
    optimizer: () => optimizer,
    steps: 1,
    staleness: 1,
    learningRate: () => lr,
    clipNorm: 0,
    onChunk: (e) => events.push(e),
    ...options,
  });
  return { ps, backend, params, grads, transport: wrapped, events, results: [] };
}

/** Every step of one rank: write its gradient, push, wait for the parameters. */
async function train(rank: Rank, steps: number, gradient = gradientOf): Promise<void> {
  for (let step = 0; step < steps; step++) {
    rank.backend.write(viewOf(rank.grads), gradient(rank.transport.rank, step));
    const gradSync = await rank.ps.gradSync(ctx(step));
    const afterUpdate = await rank.ps.afterUpdate(ctx(step));
    rank.results.push({ gradSync, afterUpdate });
  }
}

async function room(world: number, steps: number, options: Partial<AsyncParameterServerOptions> = {}, gradient = gradientOf) {
  const sent: Sent[] = [];
  const ranks = createMemoryMesh(world).map((t) => rankOn(t, sent, { steps, ...options }));
  await Promise.all(ranks.map((r) => train(r, steps, gradient)));
  const finals = await Promise.all(ranks.map((r) => r.backend.read(viewOf(r.params))));
  return { ranks, sent, finals };
}

const headerOf = (payload: Uint8Array) => new DataView(payload.buffer, payload.byteOffset, 4).getUint32(0, true);
const floatsOf = (payload: Uint8Array) => new Float32Array(payload.slice(4).buffer);

describe('asynchronous parameter server: the arithmetic', () => {
  it('every push is applied once at lr / world (server on rank 1 of 3, staleness 1, 4 steps): every rank ends at -0.25 x the sum of all gradients, exactly, and the server receives nothing after the last step', async () => {
    const [world, steps, server] = [3, 4, 1];
    const { ranks, finals } = await room(world, steps, { server });
    let sum = 0;
    for (let r = 0; r < world; r++) for (let s = 0; s < steps; s++) sum += (r + 1) * (s + 1);
    for (const final of finals) expect(Array.from(final)).toEqual(new Array(N).fill(-0.25 * sum));
    expect(ranks[server].ps.isServer).toBe(true);
    expect(ranks[server].ps.dropped).toBe(0);
    for (const release of ranks[server].ps.releases) expect(release.clock - release.slowest).toBeLessThanOrEqual(1);
    // One receive per worker and step, all settled: none left waiting for a step that never comes.
    await sleep(5);
    expect(ranks[server].transport.outstanding()).toBe(0);
  });

  it('with clipNorm 1, each gradient is clipped on its own at the server before it is applied (1e-6 relative)', async () => {
    const [world, steps] = [2, 3];
    // Every gradient has norm (r + 1)(s + 1) x 8 > 1; clipped, each element is 1 / 8.
    const { finals } = await room(world, steps, { clipNorm: 1 });
    const want = -0.25 * (1 / 8) * world * steps;
    for (const final of finals) for (const v of final) expect(Math.abs(v - want) / Math.abs(want)).toBeLessThan(1e-6);
  });
});

describe('asynchronous parameter server: bytes, events and the wire', () => {
  it('each step reports its bytes: a worker its push (sent) and its parameters (received); the server\'s steps together everything its background loop moved', async () => {
    const [world, steps] = [3, 3];
    const { ranks } = await room(world, steps);
    for (const rank of ranks.slice(1)) {
      for (const { gradSync, afterUpdate } of rank.results) {
        expect(gradSync).toEqual({ bytesSent: MESSAGE_BYTES });
        expect(afterUpdate).toEqual({ bytesReceived: MESSAGE_BYTES });
      }
    }
    const server = ranks[0].results;
    for (const { gradSync } of server) expect(gradSync).toEqual({});
    const total = (key: 'bytesSent' | 'bytesReceived') => server.reduce((n, { afterUpdate }) => n + (afterUpdate[key] ?? 0), 0);
    // Every worker pushes once a step and is answered once a step (steps - 1 releases and the final parameters).
    expect(total('bytesReceived')).toBe((world - 1) * steps * MESSAGE_BYTES);
    expect(total('bytesSent')).toBe((world - 1) * steps * MESSAGE_BYTES);
  });

  it('chunk events: per worker and step a gradient sent and received (gather) and parameters sent and received (broadcast), under the message\'s step and collective', async () => {
    const [world, steps] = [2, 2];
    const { ranks } = await room(world, steps);
    const describeEvent = (e: ChunkEvent) => `${e.type} ${e.collective} ${e.direction} ${e.phase} rank ${e.rank} peer ${e.peer} round ${e.round} run ${e.runId} bytes ${e.bytes} length ${e.length}`;
    const want: string[] = [];
    for (let s = 0; s < steps; s++) {
      const answer = s === steps - 1 ? FINAL : PARAMS;
      want.push(`chunk ps-round send gather rank 1 peer 0 round ${s} run ${s}:${GRAD} bytes ${MESSAGE_BYTES} length ${N}`);
      want.push(`chunk ps-round recv gather rank 0 peer 1 round ${s} run ${s}:${GRAD} bytes ${MESSAGE_BYTES} length ${N}`);
      want.push(`chunk ps-round send broadcast rank 0 peer 1 round ${s} run ${s}:${answer} bytes ${MESSAGE_BYTES} length ${N}`);
      want.push(`chunk ps-round recv broadcast rank 1 peer 0 round ${s} run ${s}:${answer} bytes ${MESSAGE_BYTES} length ${N}`);
    }
    expect(ranks.flatMap((r) => r.events).map(describeEvent).sort()).toEqual(want.sort());
  });

  it('wire format [u32 round, little-endian | float32 vector]: a push carries the round of the parameters it was computed on, an answer the server round it releases at', async () => {
    const [world, steps] = [3, 3];
    const { ranks, sent, finals } = await room(world, steps);
    const server = ranks[0].ps;
    for (const worker of [1, 2]) {
      const pushes = sent.filter((m) => m.from === worker && m.tag.collective === GRAD).sort((a, b) => a.tag.round - b.tag.round);
      const answers = sent.filter((m) => m.to === worker && m.tag.collective === PARAMS).sort((a, b) => a.tag.round - b.tag.round);
      const final = sent.find((m) => m.to === worker && m.tag.collective === FINAL)!;
      expect(pushes.map((m) => m.tag.round)).toEqual([0, 1, 2]);
      for (const [s, push] of pushes.entries()) {
        expect(push.payload.byteLength).toBe(MESSAGE_BYTES);
        expect(Array.from(floatsOf(push.payload))).toEqual(Array.from(gradientOf(worker, s)));
      }
      // Step 0 starts from round 0; each later push echoes the round of the answer before it, which is
      // the slowest worker's clock at the release.
      expect(headerOf(pushes[0].payload)).toBe(0);
      const released = server.releases.filter((r) => r.worker === worker);
      expect(answers.map(({ payload }) => headerOf(payload))).toEqual(released.map((r) => r.slowest));
      for (let s = 1; s < steps; s++) expect(headerOf(pushes[s].payload)).toBe(headerOf(answers[s - 1].payload));
      expect(headerOf(final.payload)).toBe(steps);
      expect(Array.from(floatsOf(final.payload))).toEqual(Array.from(finals[worker]));
    }
  });
});

describe('asynchronous parameter server: refusals and failures', () => {
  it('options out of range are refused by name', () => {
    const [transport] = createMemoryMesh(2);
    const make = (options: Partial<AsyncParameterServerOptions>) => () => rankOn(transport, [], options);
    expect(make({ server: 2 })).toThrow('no rank 2 to be the server');
    expect(make({ server: -1 })).toThrow('no rank -1 to be the server');
    expect(make({ staleness: 0 })).toThrow('asynchronous mode needs staleness >= 1, got 0');
    expect(make({ staleness: 1.5 })).toThrow('asynchronous mode needs staleness >= 1, got 1.5');
    expect(make({ steps: 0 })).toThrow('steps must be an integer >= 1, got 0');
    expect(make({ steps: 2.5 })).toThrow('steps must be an integer >= 1, got 2.5');
    expect(make({ server: 1, staleness: 1, steps: 1 })).not.toThrow();
  });

  /** Rank 0 is the server; rank 1 a scripted peer whose messages the test writes. */
  function serverAndScriptedPeer(steps: number): { server: Rank; mesh: MemoryTransport[] } {
    const mesh = createMemoryMesh(2);
    return { server: rankOn(mesh[0], [], { steps }), mesh };
  }
  const push = (round: number, values: Float32Array) => {
    const out = new Uint8Array(4 + values.byteLength);
    new DataView(out.buffer).setUint32(0, round, true);
    out.set(new Uint8Array(values.buffer), 4);
    return out;
  };

  it('a gradient claiming a round the server has not reached (a faulty peer) is dropped, not applied', async () => {
    const { server, mesh } = serverAndScriptedPeer(1);
    void mesh[1].send(0, { round: 0, collective: GRAD, chunk: 0 }, push(99, new Float32Array(N).fill(1000)));
    await train(server, 1);
    expect(server.ps.dropped).toBe(1);
    // Only the server's own gradient (1 at step 0, lr / world = 0.25) moved the parameters.
    expect(Array.from(await server.backend.read(viewOf(server.params)))).toEqual(new Array(N).fill(-0.25));
    const final = await mesh[1].recv(0, { round: 0, collective: FINAL, chunk: 0 });
    expect(Array.from(floatsOf(final))).toEqual(new Array(N).fill(-0.25));
  });

  it('a pushed gradient of the wrong size fails the server with its size, at its next step', async () => {
    const { server, mesh } = serverAndScriptedPeer(2);
    void mesh[1].send(0, { round: 0, collective: GRAD, chunk: 0 }, new Uint8Array(7));
    const run = (async () => {
      await server.ps.gradSync(ctx(0));
      await server.ps.afterUpdate(ctx(0));
      await sleep(20);
      await server.ps.gradSync(ctx(1));
    })();
    await expect(run).rejects.toThrow(`parameter server failed: gradient of rank 1 step 0 has 7 bytes, expected ${MESSAGE_BYTES}`);
  });

  it('the server\'s own push out of order fails it by name at its next call, and nothing is applied after the failure', async () => {
    const { server, mesh } = serverAndScriptedPeer(3);
    await server.ps.gradSync(ctx(1));
    await sleep(10);
    await expect(server.ps.gradSync(ctx(2))).rejects.toThrow('parameter server failed: rank 0 pushed step 1, expected 0');
    // The worker's push of step 0 is well formed, but the server has failed: its parameters stay as they were.
    void mesh[1].send(0, { round: 0, collective: GRAD, chunk: 0 }, push(0, new Float32Array(N).fill(1)));
    await sleep(20);
    expect(Array.from(await server.backend.read(viewOf(server.params)))).toEqual(new Array(N).fill(0));
  });

  it('the server\'s own worker waits while it is more than `staleness` steps ahead of the slowest, and goes on when the slowest pushes', async () => {
    // Staleness 1: after two steps of its own the server is 2 ahead of the worker, which has pushed nothing.
    const { server, mesh } = serverAndScriptedPeer(3);
    for (const step of [0, 1]) {
      server.backend.write(viewOf(server.grads), gradientOf(0, step));
      await server.ps.gradSync(ctx(step));
      if (step === 0) await server.ps.afterUpdate(ctx(step));
    }
    let released = false;
    const waiting = server.ps.afterUpdate(ctx(1)).then(() => (released = true));
    await sleep(30);
    expect(released).toBe(false);
    void mesh[1].send(0, { round: 0, collective: GRAD, chunk: 0 }, push(0, new Float32Array(N).fill(1)));
    await waiting;
    expect(server.ps.releases.filter((r) => r.worker === 0).map((r) => r.clock - r.slowest)).toEqual([1, 1]);
  });

  it('runs without a chunk listener', async () => {
    const { finals } = await room(2, 2, { onChunk: undefined });
    expect(finals[1]).toEqual(finals[0]);
  });

  it('a worker that vanishes fails the server\'s wait for release with the loss, instead of a hang', async () => {
    // Staleness 1 over 3 steps: the server's second step waits for rank 2, which is gone.
    const mesh = createMemoryMesh(3, { recvTimeoutMs: 2_000 });
    const sent: Sent[] = [];
    const [server, worker] = [rankOn(mesh[0], sent, { steps: 3 }), rankOn(mesh[1], sent, { steps: 3 })];
    const serverRun = train(server, 3);
    const workerRun = train(worker, 3);
    workerRun.catch(() => undefined);
    await sleep(10);
    mesh[2].kill('rank 2 closed its tab');
    await expect(serverRun).rejects.toThrow(/rank 2/);
  });

  it('dispose frees the server\'s incoming-gradient buffer', async () => {
    const { ranks } = await room(2, 1);
    const workspace = () => ranks[0].backend.memory().workspace;
    expect(workspace()).toBeGreaterThan(0);
    ranks[0].ps.dispose();
    expect(workspace()).toBe(0);
  });
});
