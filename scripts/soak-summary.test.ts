import { describe, expect, it } from 'vitest';
import type { LabMetrics, LabStatus } from '../src/lab/api';
import { SOCKET_CLOSED_REASON, TAB_GONE_REASON } from '../src/peer/signalling';
import { departureSignal, formatSoak, heapGrowthBound, summariseSoak, type SoakEventRecord, type SoakInput } from './soak-summary';

const MiB = 1 << 20;

function tab(n: number, rank: number, overrides: Partial<LabMetrics> = {}, status: Partial<LabStatus> = {}): SoakInput['finalTabs'][number] {
  return {
    tab: n,
    status: { rank, world: 4, step: 100, steps: 100, state: 'done', error: null, room: 'r', backend: { kind: 'webgpu', adapter: 'google swiftshader' }, epoch: 5, ...status },
    metrics: {
      losses: [2, 1],
      lossSteps: [10, 100],
      valLoss: 1,
      accuracy: 0.9,
      bigramValLoss: null,
      bytesSent: 0,
      bytesReceived: 0,
      computeMsPerStep: 1,
      commMsPerStep: 1,
      overlapMsPerStep: 0,
      waitMsPerStep: 0,
      stepMsPerStep: 2,
      wallMsPerStep: null,
      samplesPerSec: 1,
      memory: null,
      hashesAgree: true,
      lastHash: 'abc',
      sample: null,
      gpuBuffers: 13,
      elastic: { reforms: 4, joins: 2, departures: 2 },
      ...overrides,
    },
  };
}

const event = (kind: SoakEventRecord['kind'], n: number, recoveredMs: number | null = 2000): SoakEventRecord => ({
  kind,
  step: 10 * n,
  tab: n,
  tabsAfter: 4,
  recoveredMs,
  witnessBuffers: 13,
});

function input(overrides: Partial<SoakInput> = {}): SoakInput {
  return {
    settings: { tabs: 4, minTabs: 2, maxTabs: 6, steps: 100, model: 'mlp', dataset: 'spirals', seed: 1, killEvery: 20, peertimeout: 4000 },
    plannedEvents: 4,
    events: [event('close', 1), event('add', 4, 6000), event('crash', 2), event('add', 5, 4000)],
    finalTabs: [tab(3, 2), tab(0, 0), tab(4, 1), tab(5, 3)],
    refused: { count: 3, reasons: { 'stale epoch': 3 } },
    disagreementSeen: null,
    tabFailures: [],
    start: { step: 25, gpuBuffers: 13, heapBytes: 10 * MiB },
    end: { step: 100, gpuBuffers: 13, heapBytes: 12 * MiB },
    stopped: null,
    wallSec: 60,
    ...overrides,
  };
}

describe('soak summary', () => {
  it('prints recovery after departures against the 10 s goal, and the ring times the tabs logged, closes and crashes apart', () => {
    const events: SoakEventRecord[] = [
      { ...event('close', 1, 12_000), ringMs: 400, detected: { ms: 100, by: 'goodbye' } },
      event('add', 4, 6000),
      { ...event('crash', 2, 9000), ringMs: 11_200, detected: { ms: 10_300, by: 'heartbeat' } },
      { ...event('crash', 3, 3000), ringMs: 800, detected: { ms: 200, by: 'its lock' } },
      event('add', 5, 4000),
    ];
    const text = formatSoak(summariseSoak(input({ events, plannedEvents: 5 })));
    expect(text).toMatch(/after a departure\s+mean 8\.0 s, max 12\.0 s as polled \(goal: under 10 s, NOT met; polling every tab adds seconds on a loaded machine\)/);
    expect(text).toContain("  closed tabs: ring re-formed mean 0.4 s, max 0.4 s after the event, by the tabs' own logs (goal: under 10 s, met); the witness dropped the tab mean 0.1 s, max 0.1 s after the event (1 x goodbye; peertimeout 4000 ms)");
    expect(text).toContain("  crashed tabs: ring re-formed mean 6.0 s, max 11.2 s after the event, by the tabs' own logs (goal: under 10 s, NOT met); the witness dropped the tab mean 5.3 s, max 10.3 s after the event (1 x heartbeat, 1 x its lock; peertimeout 4000 ms)");
    expect(text).toContain('training again at 4 tabs after 12.0 s (the tabs started the new ring after 0.4 s); the witness dropped it after 0.1 s (goodbye)');
  });

  it('names what told a tab that a member was gone, from the reason the mesh logs', () => {
    expect(departureSignal(`[mesh R] peer 0abc-1234: ${TAB_GONE_REASON}`)).toBe('its lock');
    expect(departureSignal(`[mesh R] peer 0abc-1234: ${SOCKET_CLOSED_REASON}`)).toBe('its socket');
    expect(departureSignal('[mesh R] peer 0abc-1234: silent for 10012 ms')).toBe('heartbeat');
    expect(departureSignal('[mesh R] peer 0abc-1234: left the room')).toBe('goodbye');
    expect(departureSignal('[mesh R] peer 0abc-1234: excluded: 201 refused frames')).toBe('other');
  });

  it('passes a run that came through every event, and counts what it survived', () => {
    const s = summariseSoak(input());
    expect(s.failures).toEqual([]);
    expect(s.ok).toBe(true);
    expect(s.stepsCompleted).toBe(100);
    expect([s.joinsSurvived, s.joins, s.failuresSurvived, s.kills, s.closes, s.crashes]).toEqual([2, 2, 2, 2, 1, 1]);
    expect(s.recoveryMeanSec).toBeCloseTo(3.5);
    expect(s.recoveryMaxSec).toBeCloseTo(6);
    expect(s.framesRefused).toBe(3);
    expect(s.replicasAgreed).toBe(true);
    const text = formatSoak(s);
    expect(text).toMatch(/joins survived\s+2 of 2 \(the witness counted 2\)/);
    expect(text).toMatch(/failures survived\s+2 of 2: 1 closed, 1 crashed/);
    expect(text).toMatch(/frames refused\s+3 \(3 x stale epoch\)/);
    expect(text).toMatch(/result\s+PASSED/);
  });

  it('bounds the heap by 8 MiB or a quarter of its start, and the buffers by no growth at all', () => {
    expect(heapGrowthBound(10 * MiB)).toBe(8 * MiB);
    expect(heapGrowthBound(100 * MiB)).toBe(25 * MiB);
    const heap = summariseSoak(input({ end: { step: 100, gpuBuffers: 13, heapBytes: 19 * MiB } }));
    expect(heap.ok).toBe(false);
    expect(heap.failures.join()).toMatch(/heap grew by 9\.00 MiB, over the bound of 8\.00 MiB/);
    const buffers = summariseSoak(input({ end: { step: 100, gpuBuffers: 14, heapBytes: 10 * MiB } }));
    expect(buffers.ok).toBe(false);
    expect(formatSoak(buffers)).toMatch(/GPU buffers \(witness\) 13 at step 25 -> 14 at step 100 \(bound: no growth\) EXCEEDED/);
    expect(summariseSoak(input({ end: { step: 100, gpuBuffers: 12, heapBytes: 9 * MiB } })).ok).toBe(true);
  });

  it('fails on a disagreement seen mid-run even when the final hashes match', () => {
    const s = summariseSoak(input({ disagreementSeen: 'tab 3 (rank 2) saw different parameter hashes at step 41' }));
    expect(s.ok).toBe(false);
    expect(s.replicasAgreed).toBe(false);
    expect(formatSoak(s)).toMatch(/replicas agreed\s+NO/);
  });

  it('fails when the final hashes differ or a tab is not done', () => {
    const hashes = summariseSoak(input({ finalTabs: [tab(0, 0), tab(3, 1, { lastHash: 'def' })] }));
    expect(hashes.failures).toContain('the tabs end with 2 different parameter hashes');
    const notDone = summariseSoak(input({ finalTabs: [tab(0, 0), tab(3, 1, {}, { state: 'training', step: 97 })] }));
    expect(notDone.stepsCompleted).toBe(97);
    expect(notDone.failures.join('\n')).toMatch(/only 97 of 100 steps completed\ntabs not done at the end: tab 3 \(training\)/);
  });

  it('cross-checks its own event counts with what the witness counted', () => {
    const s = summariseSoak(input({ finalTabs: [tab(0, 0, { elastic: { reforms: 5, joins: 2, departures: 3 } })] }));
    expect(s.failures).toEqual(['the witness counted 2 joins and 3 departures; the soak made 2 and 2']);
  });

  it('reports a stopped run with the failing tab and its log, and the event it did not recover from', () => {
    const s = summariseSoak(
      input({
        events: [event('close', 1), event('crash', 2, null)],
        stopped: 'recovering from event 2 (crash tab 2): not within 180 s (witness at step 40)',
        tabFailures: [{ tab: 3, error: 'no ring formed within 120000 ms', log: ['warn re-forming the ring at step 40'] }],
        end: null,
      }),
    );
    expect(s.ok).toBe(false);
    expect(s.failuresSurvived).toBe(1);
    expect(s.buffers).toBeNull();
    const text = formatSoak(s);
    expect(text).toMatch(/tab 2 crashed\s+-> NOT RECOVERED/);
    expect(text).toMatch(/tab 3 error: no ring formed within 120000 ms\n\s+warn re-forming the ring at step 40/);
    expect(text).toMatch(/result\s+FAILED\n\s+- recovering from event 2/);
    expect(text).not.toMatch(/witness at the stop/);
    expect(s.replicasAgreed).toBeNull();
    expect(text).toMatch(/replicas agreed\s+no disagreement seen before the stop/);
    // A stopped run is not also blamed for the steps it never reached.
    expect(s.failures.some((f) => f.startsWith('only'))).toBe(false);
  });

  it('shows where the witness stood when a run hung, as context rather than as a failing tab', () => {
    const s = summariseSoak(
      input({
        stopped: 'the room reaching step 300: the room made no progress for 180 s (witness at step 241)',
        witnessContext: { state: 'state reforming at step 241, rank 0 of 3, epoch 4', log: ['warn re-forming the ring at step 241: rank 2 is gone'] },
        end: null,
      }),
    );
    expect(s.failures).toEqual(['the room reaching step 300: the room made no progress for 180 s (witness at step 241)']);
    expect(formatSoak(s)).toMatch(/witness at the stop   state reforming at step 241, rank 0 of 3, epoch 4\n\s+warn re-forming the ring at step 241: rank 2 is gone\nresult\s+FAILED/);
  });
});
