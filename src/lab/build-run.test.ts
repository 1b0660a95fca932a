import { describe, expect, it } from 'vitest';
import { createMemoryMesh } from '../collective/memory-transport';
import { CpuBackend } from '../engine/cpu-backend';
import type { LabEvent, ZeroLayoutReport } from '../shared/events';
import { buildRun } from './build-run';
import type { LabConfig } from './config';
import { loadDataset } from './datasets';
import { testConfig } from './parallel-test-support';
import { recipeFor } from './recipe';

/** The 'zero-layout' events rank 0 of a 2-tab room publishes while its run is built. */
async function layoutsPublished(overrides: Partial<LabConfig>): Promise<{ layouts: ZeroLayoutReport[]; params: number }> {
  const config = testConfig({ room: 'r', ...overrides });
  const data = await loadDataset(config, '/data/');
  const [transport] = createMemoryMesh(2);
  const events: LabEvent[] = [];
  const { run } = buildRun({ config, recipe: recipeFor(config, 2), backend: new CpuBackend(), data, transport, shard: { world: 2, rank: 0 }, publish: (e) => events.push(e), alongsideComm: () => [] });
  const params = run.model.params.length;
  run.dispose();
  return { layouts: events.filter((e): e is ZeroLayoutReport => e.type === 'zero-layout'), params };
}

describe('the ZeRO panel outside ZeRO', () => {
  it('plain data parallelism publishes stage 0: the would-be slices, contiguous over the whole vector, each rank holding everything', async () => {
    const { layouts, params } = await layoutsPublished({});
    expect(layouts).toHaveLength(1);
    const [layout] = layouts;
    expect(layout.stage).toBe(0);
    expect(layout.optimizerFloatsPerParam).toBe(2); // AdamW
    expect(layout.partition.map((p) => p.rank)).toEqual([0, 1]);
    expect(layout.partition[0].start).toBe(0);
    expect(layout.partition[0].end).toBe(layout.partition[1].start);
    expect(layout.partition[1].end).toBe(layout.total);
    expect(layout.total).toBeLessThanOrEqual(params);
  });

  it('plain SGD holds no optimizer state; momentum one float per parameter', async () => {
    expect((await layoutsPublished({ optimizer: 'sgd' })).layouts[0].optimizerFloatsPerParam).toBe(0);
    expect((await layoutsPublished({ optimizer: 'momentum' })).layouts[0].optimizerFloatsPerParam).toBe(1);
  });

  it('ZeRO publishes its own stage only, and the parameter server (state on one tab) none', async () => {
    expect((await layoutsPublished({ zero: 1 })).layouts.map((l) => l.stage)).toEqual([1]);
    expect((await layoutsPublished({ mode: 'ps' })).layouts).toEqual([]);
  });
});
