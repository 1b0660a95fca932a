import { describe, expect, it } from 'vitest';
import type { ChunkEvent } from '../collective/types';
import { EventBus, type LabEvent, type StepMetrics } from '../shared/events';
import { LIMITS } from './lab-state';
import { connectBus, createLabStore } from './lab-store';
import { metricsToCsv, metricsToJson } from './export';

function setup() {
  const store = createLabStore();
  const bus = new EventBus();
  const disconnect = connectBus(store, bus);
  return { store, bus, disconnect };
}

const step = (rank: number, n: number, loss: number): StepMetrics => ({
  type: 'step',
  rank,
  step: n,
  loss,
  samplesPerSec: 100,
  computeMs: 3,
  commMs: 2,
  overlapMs: 1,
  waitMs: 1,
  stepMs: 6,
  bytesSent: 10,
  bytesReceived: 12,
  t: n * 10 + rank,
});

const chunk = (i: number): ChunkEvent => ({
  type: 'chunk',
  direction: 'send',
  collective: 'ring-allreduce',
  runId: '1:0',
  round: 1,
  phase: 'reduce-scatter',
  step: 0,
  chunk: i,
  part: 0,
  rank: 0,
  peer: 1,
  bytes: 16,
  offset: i * 4,
  length: 4,
  tStart: i,
  tEnd: i + 1,
});

const peers = (world: number): LabEvent => ({
  type: 'peers',
  self: { peerId: 'a', rank: 0, world, room: 'r1' },
  peers: [{ peerId: 'b', rank: 1, state: 'connected', rttMs: 3 }],
});

describe('lab store reducer', () => {
  it('appends steps and chunks to ring buffers and bumps their ticks, nothing else', () => {
    const { store, bus } = setup();
    const before = store.getState();
    bus.publish(step(0, 1, 2.5));
    bus.publish(chunk(0));
    bus.publish(chunk(1));
    const after = store.getState();
    expect(after.steps.toArray().map((s) => s.loss)).toEqual([2.5]);
    expect(after.chunks.toArray().map((c) => c.chunk)).toEqual([0, 1]);
    expect(after.metricsTick).toBe(before.metricsTick + 1);
    expect(after.chunkTick).toBe(before.chunkTick + 2);
    // Low-frequency slices keep their identity, so views that select them do not re-render.
    expect(after.peers).toBe(before.peers);
    expect(after.logs).toBe(before.logs);
  });

  it('keeps chunk events bounded', () => {
    const { store, bus } = setup();
    for (let i = 0; i < LIMITS.chunks + 10; i++) bus.publish(chunk(i));
    const { chunks } = store.getState();
    expect(chunks.size).toBe(LIMITS.chunks);
    expect(chunks.at(0)?.chunk).toBe(10);
  });

  it('records run state, errors, room and peers', () => {
    const { store, bus } = setup();
    bus.publish({ type: 'state', state: 'error', error: 'device lost' });
    bus.publish(peers(2));
    const s = store.getState();
    expect(s.run).toEqual({ state: 'error', error: 'device lost' });
    expect(s.self?.room).toBe('r1');
    expect(s.peers[0].rttMs).toBe(3);
  });

  it('says hashes agree only once every rank of the room reported the same one', () => {
    const { store, bus } = setup();
    bus.publish(peers(3));
    bus.publish({ type: 'hash', step: 1, rank: 0, hash: 'aa' });
    bus.publish({ type: 'hash', step: 1, rank: 1, hash: 'aa' });
    expect(store.getState().hashes[0].agree).toBeNull();
    bus.publish({ type: 'hash', step: 1, rank: 2, hash: 'aa' });
    expect(store.getState().hashes[0].agree).toBe(true);
    bus.publish({ type: 'hash', step: 2, rank: 1, hash: 'bb' });
    bus.publish({ type: 'hash', step: 2, rank: 0, hash: 'cc' });
    bus.publish({ type: 'hash', step: 2, rank: 2, hash: 'cc' });
    const { hashes, hashMismatches } = store.getState();
    expect(hashes.map((h) => [h.step, h.agree])).toEqual([
      [1, true],
      [2, false],
    ]);
    expect(hashMismatches).toBe(1);
  });

  it('counts refused frames by reason and keeps memory per rank', () => {
    const { store, bus } = setup();
    bus.publish({ type: 'refused', from: 'x', reason: 'bad checksum', t: 1 });
    bus.publish({ type: 'refused', from: 'x', reason: 'bad checksum', t: 2 });
    bus.publish({ type: 'refused', from: 'y', reason: 'wrong room', t: 3 });
    const bytes = { params: 400, grads: 400, optimizer: 800, activations: 0, workspace: 0, data: 0 };
    bus.publish({ type: 'memory', rank: 1, bytes });
    const s = store.getState();
    expect(s.refused.total).toBe(3);
    expect(s.refused.byReason).toEqual({ 'bad checksum': 2, 'wrong room': 1 });
    expect(s.memory[1].optimizer).toBe(800);
  });

  it('bounds logs and samples, newest last', () => {
    const { store, bus } = setup();
    for (let i = 0; i < LIMITS.logs + 5; i++) bus.publish({ type: 'log', level: 'info', message: `m${i}`, t: i });
    for (let i = 0; i < LIMITS.samples + 1; i++) bus.publish({ type: 'sample', step: i, text: `s${i}` });
    const s = store.getState();
    expect(s.logs).toHaveLength(LIMITS.logs);
    expect(s.logs.at(-1)?.message).toBe(`m${LIMITS.logs + 4}`);
    expect(s.samples[0].text).toBe('s1');
  });

  it('collects classroom snapshots by lesson, and a new lesson starts over', () => {
    const { store, bus } = setup();
    const chunks = [{ start: 0, end: 1 }];
    const snap = (n: number) => ({ step: n, phase: 'reduce-scatter' as const, perRank: [{ rank: 0, values: [n] }] });
    bus.publish({ type: 'classroom', runId: 'L1', chunks, snapshot: snap(1) });
    bus.publish({ type: 'classroom', runId: 'L1', chunks, snapshot: snap(0) });
    store.getState().setClassroomIndex(5);
    expect(store.getState().classroom.snapshots.map((s) => s.step)).toEqual([0, 1]);
    expect(store.getState().classroom.index).toBe(1);
    bus.publish({ type: 'classroom', runId: 'L2', chunks, snapshot: snap(0) });
    expect(store.getState().classroom).toMatchObject({ runId: 'L2', index: 0 });
    expect(store.getState().classroom.snapshots).toHaveLength(1);
  });

  it('moves a viewer on the newest classroom step on to the next one, but not one who stepped back', () => {
    const { store, bus } = setup();
    const chunks = [{ start: 0, end: 1 }];
    const snap = (n: number) => ({ step: n, phase: 'reduce-scatter' as const, perRank: [{ rank: 0, values: [n] }] });
    bus.publish({ type: 'classroom', runId: 'L1', chunks, snapshot: snap(0), teaching: true });
    bus.publish({ type: 'classroom', runId: 'L1', chunks, snapshot: snap(1), teaching: true });
    expect(store.getState().classroom).toMatchObject({ index: 1, teaching: true });
    store.getState().setClassroomIndex(0);
    bus.publish({ type: 'classroom', runId: 'L1', chunks, snapshot: snap(2), teaching: true });
    expect(store.getState().classroom.index).toBe(0);
    bus.publish({ type: 'classroom', runId: 'L2', chunks, snapshot: snap(0) });
    expect(store.getState().classroom).toMatchObject({ index: 0, teaching: false });
  });

  it('ignores an event type it does not know instead of throwing into the producer', () => {
    const { store, bus } = setup();
    const before = store.getState();
    bus.publish({ type: 'from-the-future' } as unknown as LabEvent);
    expect(store.getState()).toBe(before);
  });

  it('stops listening when disconnected, and clearRun forgets the last run', () => {
    const { store, bus, disconnect } = setup();
    bus.publish(step(0, 1, 1));
    disconnect();
    bus.publish(step(0, 2, 1));
    expect(store.getState().steps.size).toBe(1);
    store.getState().clearRun();
    expect(store.getState().steps.size).toBe(0);
  });

  it('setConfig patches the config', () => {
    const { store } = setup();
    store.getState().setConfig({ zero: 2, batch: 128 });
    expect(store.getState().config).toMatchObject({ zero: 2, batch: 128, model: 'mlp' });
  });
});

describe('metrics export', () => {
  it('writes one CSV row per step and eval, in time order, with a header', () => {
    const csv = metricsToCsv(
      [step(0, 1, 2.5), step(0, 2, 2.0)],
      [{ type: 'eval', rank: 0, step: 1, valLoss: 2.2, accuracy: 0.5, t: 15 }],
    );
    const lines = csv.trim().split('\n');
    expect(lines[0]).toBe(
      'kind,rank,step,loss,valLoss,accuracy,samplesPerSec,computeMs,commMs,overlapMs,waitMs,stepMs,bytesSent,bytesReceived,t',
    );
    expect(lines[1]).toBe('step,0,1,2.5,,,100,3,2,1,1,6,10,12,10');
    expect(lines[2]).toBe('eval,0,1,,2.2,0.5,,,,,,,,,15');
    expect(lines[3].startsWith('step,0,2,2,')).toBe(true);
  });

  it('writes JSON that parses back to the store contents', () => {
    const { store, bus } = setup();
    bus.publish(step(1, 3, 0.7));
    const parsed = JSON.parse(metricsToJson(store.getState()));
    expect(parsed.steps).toEqual([step(1, 3, 0.7)]);
    expect(parsed.config.model).toBe('mlp');
  });
});

describe('one lesson at a time', () => {
  it('a pipeline lesson replacing a ring lesson takes the ring lesson\'s Next away, and the other way round', () => {
    const { store, bus } = setup();
    const ring = (runId: string) => bus.publish({ type: 'classroom', runId, chunks: [], teaching: true, snapshot: { step: 0, phase: 'initial', perRank: [] } });
    const pipe = (runId: string) =>
      bus.publish({ type: 'pipeline-lesson', runId, schedule: 'gpipe', stages: 2, micro: 2, steps: 16, stage: 0, teaching: true, report: { step: 0, rank: 0, tensors: [] } });
    ring('1:x');
    expect(store.getState().classroom.teaching).toBe(true);
    pipe('2:pipeline');
    expect(store.getState().classroom.teaching).toBe(false);
    expect(store.getState().pipelineLesson.teaching).toBe(true);
    ring('3:x');
    expect(store.getState().pipelineLesson.teaching).toBe(false);
    expect(store.getState().classroom.teaching).toBe(true);
  });

  it('a tensor lesson takes the Next of the ring and pipeline lessons away, and either of them takes the tensor lesson\'s', () => {
    const { store, bus } = setup();
    const tensor = (runId: string) => bus.publish({ type: 'tensor-lesson', runId, ranks: 2, steps: 11, rank: 0, teaching: true, report: { step: 0, rank: 0, tensors: [] } });
    bus.publish({ type: 'pipeline-lesson', runId: '1:pipeline', schedule: 'gpipe', stages: 2, micro: 2, steps: 16, stage: 0, teaching: true, report: { step: 0, rank: 0, tensors: [] } });
    tensor('2:tensor');
    expect(store.getState().pipelineLesson.teaching).toBe(false);
    expect(store.getState().tensorLesson.teaching).toBe(true);
    // A second report of the same lesson keeps it.
    tensor('2:tensor');
    expect(store.getState().tensorLesson.teaching).toBe(true);
    bus.publish({ type: 'classroom', runId: '3:x', chunks: [], teaching: true, snapshot: { step: 0, phase: 'initial', perRank: [] } });
    expect(store.getState().tensorLesson.teaching).toBe(false);
    tensor('4:tensor');
    expect(store.getState().classroom.teaching).toBe(false);
    bus.publish({ type: 'pipeline-lesson', runId: '5:pipeline', schedule: 'gpipe', stages: 2, micro: 2, steps: 16, stage: 0, teaching: true, report: { step: 0, rank: 0, tensors: [] } });
    expect(store.getState().tensorLesson.teaching).toBe(false);
  });
});
