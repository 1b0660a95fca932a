// The swarm summary's ZeRO lines: bytes held and sent per rank against the formulas. The inputs here
// are built from those formulas (no tab ran): these tests check the summary's arithmetic and wording;
// the real allocations and bytes are measured by src/parallel/zero/*.test.ts and e2e/zero.spec.ts.
import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG } from '../src/lab/config';
import type { LabMetrics } from '../src/lab/api';
import { formatZero, zeroFigures } from './swarm-summary';

const P = 4096;
const N = 4;

function metrics(memory: LabMetrics['memory'], stepBytesSent: number, stage: number): { metrics: LabMetrics } {
  return {
    metrics: {
      losses: [], lossSteps: [], valLoss: null, accuracy: null, bigramValLoss: null, bytesSent: 0, bytesReceived: 0,
      computeMsPerStep: 0, commMsPerStep: 0, overlapMsPerStep: 0, waitMsPerStep: 0, stepMsPerStep: 0, wallMsPerStep: null, samplesPerSec: 0,
      memory, hashesAgree: true, lastHash: null, sample: null, stepBytesSent,
      zero: stage ? { stage, world: N, elements: P, optimizerFloatsPerParam: 2 } : null,
    },
  };
}

describe('ZeRO figures of the swarm summary (formula-built inputs)', () => {
  it('stage 3, fed exactly the formulas\' bytes: prints them as +0.0% of 16P/N held and 1.5x a 2P-sized all-reduce, activations and workspace apart', () => {
    const held = { params: 4 * P / N, grads: 4 * P / N, optimizer: 8 * P / N, activations: 777, workspace: 999, data: 0 };
    const wire = 3 * 4 * P * (N - 1) / N;
    const z = zeroFigures({ ...DEFAULT_CONFIG, zero: 3 }, Array.from({ length: N }, () => metrics(held, wire, 3)))!;
    expect(z.theory.total).toBe((16 * P) / N);
    expect(z.held.total).toBe(z.theory.total);
    expect(z.wirePerStep).toBe(z.wireTheory);
    const text = formatZero(z).join('\n');
    expect(text).toMatch(/16P\/N/);
    expect(text).toMatch(/\+0\.0%/);
    expect(text).toMatch(/activations 777 B, workspace 999 B/);
    expect(text).toMatch(/1\.5x a 2P-sized all-reduce/);
  });

  it('stage 3 in an elastic room: host memory by kind, and the wire split into the stage, the replica check and backups, each beside its formula', () => {
    const held = { params: 4 * P / N, grads: 4 * P / N, optimizer: 8 * P / N, activations: 0, workspace: 0, data: 0 };
    const slice = 3 * 4 * P / N;
    const ranks = Array.from({ length: N }, () => {
      const r = metrics(held, 3 * 4 * P * (N - 1) / N, 3);
      r.metrics.hostMemory = { backups: 4 * slice, staging: 4 * 1024, offload: 0, wholeModel: 0 };
      r.metrics.zeroBackups = { bytesSent: 11 * slice, floatsHeld: 2 * slice / 4, steps: 11 };
      r.metrics.replicaCheck = { bytesSent: 2 * 4 * P * (N - 1) / N };
      return r;
    });
    const z = zeroFigures({ ...DEFAULT_CONFIG, zero: 3 }, ranks)!;
    expect([z.host?.backups, z.backupsTheory, z.wirePerBackup, z.wireBackupTheory]).toEqual([4 * slice, 4 * slice, slice, slice]);
    expect(z.wireCheckPerRun).toBe(z.wireCheckTheory);
    const text = formatZero(z).join('\n');
    expect(text).toMatch(/replica check +24\.00 KiB per run vs 2 verification passes .*\(\+0\.0%\)/);
    expect(text).toMatch(/backups +12\.00 KiB per backup \(every 10 steps\) vs a slice.*\(\+0\.0%\)/);
    expect(text).toMatch(/host per rank +backups 48\.00 KiB vs 4 slices \(own and predecessor's, 2 steps\) = 48\.00 KiB \(\+0\.0%\), staging 4\.00 KiB \(one layer group at a time\)/);
  });

  it('prints the largest rank\'s total against the budget when one is set (formula-built ranks)', () => {
    const small = { params: 4 * P / N, grads: 4 * P / N, optimizer: 8 * P / N, activations: 1024, workspace: 2048, data: 0 };
    const large = { ...small, workspace: 4096 };
    const ranks = [metrics(small, 0, 3), metrics(large, 0, 3)];
    const total = (16 * P) / N + 1024 + 4096;
    const noBudget = zeroFigures({ ...DEFAULT_CONFIG, zero: 3 }, ranks)!;
    expect(noBudget.largestRankTotal).toBe(total);
    expect(formatZero(noBudget).join('\n')).toMatch(/total per rank {8}21\.00 KiB \(largest rank, every kind; no budget set\)/);
    const fits = formatZero(zeroFigures({ ...DEFAULT_CONFIG, zero: 3, budget: 0.5 }, ranks)!).join('\n');
    expect(fits).toMatch(/21\.00 KiB \(largest rank, every kind\) vs budget 512\.00 KiB: fits \(4\.1% of it\)/);
    const over = formatZero(zeroFigures({ ...DEFAULT_CONFIG, zero: 3, budget: 0.01 }, ranks)!).join('\n');
    expect(over).toMatch(/vs budget 10\.24 KiB: OVER \(205\.1% of it\)/);
  });

  it('plain data parallelism reads P from the parameter bytes; a single tab has no figures', () => {
    const held = { params: 4 * P, grads: 4 * P, optimizer: 8 * P * 1.1, activations: 0, workspace: 0, data: 0 };
    const z = zeroFigures({ ...DEFAULT_CONFIG, zero: 0 }, Array.from({ length: N }, () => metrics(held, 0, 0)))!;
    expect(z.elements).toBe(P);
    expect(formatZero(z).join('\n')).toMatch(/optimizer .*\(\+10\.0%\)/);
    expect(zeroFigures(DEFAULT_CONFIG, [metrics(held, 0, 0)])).toBeNull();
  });
});
