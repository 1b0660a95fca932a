import { describe, expect, it } from 'vitest';
import { createMemoryMesh } from '../collective/memory-transport';
import { viewOf } from '../engine/backend';
import { CpuBackend } from '../engine/cpu-backend';
import { paramsHash } from '../model/layout';
import { buildRun, type BuiltRun } from './build-run';
import type { LabConfig } from './config';
import { testConfig, spirals } from './parallel-test-support';
import { recipeFor } from './recipe';
import { settingsOf, switchedConfig } from './strategy-switch';
import { carryRunState, stateHarmony, takeRunState } from './switch-state';

const WORLD = 3;

/** Every rank's optimizer state, read back, buffers end to end. */
async function statesOf(ranks: { backend: CpuBackend; built: BuiltRun }[]): Promise<string[]> {
  return Promise.all(
    ranks.map(async ({ built }) => {
      const parts = await Promise.all(built.run.optimizer.stateBuffers().map(({ buf }) => built.run.optimizer.backend.read(viewOf(buf))));
      return parts.map((p) => paramsHash(p)).join(',');
    }),
  );
}

describe('carryRunState: a room switching ring -> fp16 -> diloco -> ps -> ring mid-run', () => {
  it('keeps replicas bitwise equal wherever each strategy promises it, makes optimizer state one again on leaving DiLoCo and the server, and still learns', async () => {
    const steps = 24;
    // At each of these completed steps the room switches (16 is DiLoCo's 4th outer step: replicas equal there).
    const plan: [number, object][] = [
      [4, { compression: 'fp16' }],
      [8, { mode: 'diloco', inner: 4 }],
      [16, { mode: 'ps' }],
      [20, {}],
    ];
    const transports = createMemoryMesh(WORLD);
    let config: LabConfig = testConfig({ room: 'r', world: WORLD, steps });
    const build = (rank: number, backend: CpuBackend, cfg: LabConfig) =>
      buildRun({
        config: cfg,
        recipe: recipeFor(cfg, WORLD),
        backend,
        data: { kind: 'classification', data: spirals },
        transport: transports[rank],
        shard: { world: WORLD, rank },
        publish: () => undefined,
        alongsideComm: () => [],
      });
    const ranks = transports.map((_, rank) => {
      const backend = new CpuBackend();
      return { backend, built: build(rank, backend, config) };
    });
    const first = ranks[0].built.run;
    const before = await first.trainer.evaluate(first.evalBatches);
    const checked: number[] = [];
    for (let step = 1; step <= steps; step++) {
      await Promise.all(ranks.map(({ built }) => built.run.trainer.trainStep()));
      const strategy = ranks[0].built.strategy;
      if (strategy.replicasEqualEveryStep || strategy.replicasEqualAfter?.(step) || step === steps) {
        const hashes = await Promise.all(ranks.map(({ backend, built }) => backend.read(viewOf(built.run.model.params)).then(paramsHash)));
        expect(new Set(hashes).size, `replicas after step ${step} (${strategy.name})`).toBe(1);
        checked.push(step);
      }
      const next = plan.find(([at]) => at === step);
      if (!next) continue;
      const from = settingsOf(config);
      if (from.mode === 'diloco') {
        // Each tab's inner optimizer saw only its own shard: its state differs from the others' before the switch.
        expect(new Set(await statesOf(ranks)).size).toBe(WORLD);
      }
      config = switchedConfig(config, next[1]);
      const to = settingsOf(config);
      await Promise.all(
        ranks.map(async (r, rank) => {
          const held = await takeRunState(r.backend, r.built.run);
          r.built.run.dispose();
          r.built = build(rank, r.backend, config);
          await carryRunState(r.backend, r.built.run, held, { before: from, after: to, transport: transports[rank], round: step });
          expect(r.built.run.trainer.step).toBe(step);
        }),
      );
      const hashes = await Promise.all(ranks.map(({ backend, built }) => backend.read(viewOf(built.run.model.params)).then(paramsHash)));
      expect(new Set(hashes).size, `replicas right after the switch at ${step}`).toBe(1);
      // Out of DiLoCo (averaged) and out of the server (the server's): one optimizer state on every tab.
      if (to.mode !== 'ps') expect(new Set(await statesOf(ranks)).size, `optimizer state after the switch at ${step}`).toBe(1);
    }
    // Every sync step was checked, DiLoCo's only after its outer steps (12, 16).
    expect(checked).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 17, 18, 19, 20, 21, 22, 23, 24]);
    const last = ranks[0].built.run;
    const after = await last.trainer.evaluate(last.evalBatches);
    expect(after.loss).toBeLessThan(before.loss);
  });

  it('says how the optimizer state is made one: averaged out of DiLoCo, the server\'s out of ps, nothing into ps', () => {
    const s = (o: object) => settingsOf(switchedConfig(testConfig({ room: 'r', world: 2 }), o));
    expect(stateHarmony(s({ mode: 'diloco', inner: 5 }), s({}))).toBe('average');
    expect(stateHarmony(s({ mode: 'ps' }), s({ compression: 'fp16' }))).toBe('server');
    expect(stateHarmony(s({ mode: 'diloco', inner: 5 }), s({ mode: 'ps' }))).toBe('none');
    expect(stateHarmony(s({}), s({ compression: 'topk', ratio: 0.1 }))).toBe('none');
  });
});
