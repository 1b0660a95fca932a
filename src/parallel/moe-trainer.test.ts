import { describe, expect, it } from 'vitest';
import { createMemoryMesh } from '../collective/memory-transport';
import { initMoeParams, type MoeConfig } from './moe-layer';
import { maxRelativeDifference } from './pipeline-test-support';
import { flattenMoe, type MoeTrainingCase, trainExpertParallel, trainMoeReference } from './moe-test-support';
import { ExpertParallelTrainer, expertPlacement } from './moe-trainer';

const CONFIG: MoeConfig = { width: 4, hidden: 6, experts: 4, topK: 2, capacityFactor: 1.25, auxWeight: 0.01 };

describe('EP x DP: expert-parallel groups with data parallelism over the rest (SGD, 5 steps, a new batch each step)', () => {
  for (const [world, expertRanks] of [[4, 2], [4, 4], [2, 2], [4, 1]] as const) {
    it(`W = ${world}, EP groups of ${expertRanks}: ends where one rank holding all 4 experts ends (relative 1e-6), router hash equal on every rank, experts' hash equal within each replica group`, async () => {
      const c: MoeTrainingCase = { config: CONFIG, seed: 9, steps: 5, world, tokensPerRank: 8, lr: 0.1 };
      const reference = trainMoeReference(c);
      const run = await trainExpertParallel(c, expertRanks);
      const difference = maxRelativeDifference(flattenMoe(run.params), flattenMoe(reference.params));
      expect(difference).toBeLessThan(1e-6);
      run.losses.forEach((l, i) => expect(l).toBeCloseTo(reference.losses[i], 6));
      expect(new Set(run.hashes.map((h) => h.router)).size).toBe(1);
      for (let r = 0; r < expertRanks; r++) expect(new Set(run.hashes.filter((h) => h.expertRank === r).map((h) => h.experts)).size).toBe(1);
      expect(new Set(run.hashes.map((h) => h.experts)).size).toBe(expertRanks);
      // The trained parameters moved well beyond the tolerance.
      expect(maxRelativeDifference(flattenMoe(reference.params), flattenMoe(initMoeParams(CONFIG, 9)))).toBeGreaterThan(1e-3);
      expect(run.reports[0].bytes.expertReplicas > 0).toBe(world > expertRanks);
    });
  }

  it('places rank 5 of 8 in groups of 4: replica 1, expert rank 1, its experts summed with rank 1', () => {
    expect(expertPlacement(5, 8, 4, 8)).toEqual({ replica: 1, expertRank: 1, expertGroup: [4, 5, 6, 7], replicaGroup: [1, 5], firstExpert: 2, expertCount: 2 });
    expect(() => expertPlacement(0, 6, 4, 8)).toThrow(/does not split into expert-parallel groups of 4/);
    expect(() => expertPlacement(0, 4, 4, 6)).toThrow(/6 experts do not spread evenly over 4 ranks/);
  });

  it('a lost partner: the step rejects naming rank 1, and rank 0 keeps the parameters of the last completed step', async () => {
    const [t0, t1] = createMemoryMesh(4);
    const data = () => ({ x: new Float32Array(32).fill(0.5), target: new Float32Array(32) });
    const trainer = new ExpertParallelTrainer({ config: CONFIG, transport: t0, expertRanks: 2, initial: initMoeParams(CONFIG, 9), lr: 0.1, data, totalTokens: 32 });
    const [router, experts] = [trainer.routerHash(), trainer.expertsHash()];
    t1.kill();
    await expect(trainer.trainStep()).rejects.toThrow(/rank 1/);
    expect([trainer.routerHash(), trainer.expertsHash(), trainer.stepsDone]).toEqual([router, experts, 0]);
  });
});
