// collective=auto's part of the swarm summary over a hand-made fit (no tab ran here: the numbers are inputs).
import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG } from '../src/lab/config';
import type { LabMetrics, LabStatus } from '../src/lab/api';
import type { LinkFit } from '../src/shared/events';
import { autoCollectiveReport, formatAutoCollective } from './swarm-collective';
import { formatSummary, summariseRun } from './swarm-summary';

const fit: LinkFit = {
  kind: 'refit',
  step: 39,
  world: 4,
  link: { alpha: 0.021, beta: 1 / 4.9e6, gamma: 1 / 120e6 },
  rmsRelativeError: 0.3,
  samples: 84,
  buckets: [],
  picks: [{ bytes: 290048, algorithm: 'rhd', predictedMs: { ring: 120, tree: 150, rhd: 110, naive: 70 }, latencyBoundMs: 84, source: 'measured', measuredMs: { rhd: 140, naive: 260 } }],
  measured: [
    { bytes: 814336, algorithm: 'rhd', measuredMs: 140, predictedMs: 110, samples: 20 },
    { bytes: 814336, algorithm: 'naive', measuredMs: 260, predictedMs: 70, samples: 12 },
  ],
  usage: [
    { bytes: 290048, algorithm: 'naive', buckets: 3 },
    { bytes: 290048, algorithm: 'rhd', buckets: 35 },
    { bytes: 290048, algorithm: 'ring', buckets: 2 },
  ],
};

describe('autoCollectiveReport', () => {
  it('per size picked for, the all-reduces each algorithm ran (most first); measured beside predicted; the picks and why', () => {
    const r = autoCollectiveReport({ latest: fit, lastRefit: fit, fits: 6 })!;
    expect(r.throughStep).toBe(40);
    expect(r.usage).toEqual([{ bytes: 290048, byAlgorithm: [{ algorithm: 'rhd', buckets: 35 }, { algorithm: 'naive', buckets: 3 }, { algorithm: 'ring', buckets: 2 }] }]);
    expect(r.picks).toEqual([{ bytes: 290048, algorithm: 'rhd', source: 'measured' }]);
    const text = formatAutoCollective(r).join('\n');
    expect(text).toContain('through step 40 (the newest of 6 agreed fits): alpha 21.0 ms, 1/beta 4.90 MB/s per link, 1/gamma 120.00 MB/s per rank');
    expect(text).toContain('for 283.3 KiB: rhd 35, naive 3, ring 2 (trials included)');
    expect(text).toContain('naive 795.3 KiB: 260.0 ms measured (median of 12) / 70.0 ms predicted (3.71x)');
    expect(text).toContain('283.3 KiB: rhd (by measured times)');
  });

  it('is null before any fit; the summary prints it for collective=auto only', () => {
    expect(autoCollectiveReport(null)).toBeNull();
    expect(autoCollectiveReport({ latest: null, lastRefit: null, fits: 0 })).toBeNull();
    const status: LabStatus = { rank: 0, world: 4, step: 40, steps: 40, state: 'done', error: null, room: 'r', backend: { kind: 'cpu', adapter: 'cpu' }, epoch: 1 };
    const metrics = { losses: [1], lossSteps: [40], bytesSent: 1, bytesReceived: 1, computeMsPerStep: 1, commMsPerStep: 1, overlapMsPerStep: 0, waitMsPerStep: 0, stepMsPerStep: 2, wallMsPerStep: null, samplesPerSec: 1, memory: null, hashesAgree: true, lastHash: 'h', sample: null, valLoss: null, accuracy: null, bigramValLoss: null, links: { latest: fit, lastRefit: fit, fits: 6 } } as LabMetrics;
    const auto = summariseRun({ ...DEFAULT_CONFIG, collective: 'auto' }, [{ status, metrics }], 1);
    expect(formatSummary(auto)).toMatch(/collective=auto\n?[\s\S]*picks now +283\.3 KiB: rhd \(by measured times\)/);
    const ring = summariseRun({ ...DEFAULT_CONFIG, collective: 'ring' }, [{ status, metrics }], 1);
    expect(ring.autoCollective).toBeNull();
    expect(formatSummary(ring)).not.toContain('picks now');
  });
});
