// Test-only (imported by tests alone): checks shared by the partitioned run kinds' tests
// (pipeline-run.test.ts, tensor-run.test.ts) on a room of CPU backends over the in-memory transport.
import { expect } from 'vitest';
import { createMemoryMesh } from '../collective/memory-transport';
import { CpuBackend } from '../engine/cpu-backend';
import { paramsHash } from '../model/layout';
import type { LabConfig } from './config';
import type { LoadedData } from './datasets';
import type { PartitionedRunKind } from './partitioned-run';

/**
 * A room of two tabs that checkpoints after 2 of 4 steps and resumes each tab from its own file ends on
 * the bits of an uninterrupted run; tab 1 refuses tab 0's file with a message matching `refusal`.
 */
export async function expectPartsResumeExactly(kind: PartitionedRunKind, config: LabConfig, data: LoadedData, refusal: RegExp): Promise<void> {
  const build = () => createMemoryMesh(2).map((transport) => kind.build({ config, backend: new CpuBackend(), data, transport, publish: () => undefined }));
  const straight = build();
  for (let step = 0; step < 4; step++) await Promise.all(straight.map((r) => r.trainStep()));
  const interrupted = build();
  for (let step = 0; step < 2; step++) await Promise.all(interrupted.map((r) => r.trainStep()));
  const files = await Promise.all(interrupted.map((r, rank) => r.checkpoint({ world: 2, rank, vocab: null })));
  const resumed = build();
  expect(() => resumed[1].restore(files[0], 2)).toThrow(refusal);
  resumed.forEach((r, rank) => r.restore(files[rank], 2));
  expect(resumed.map((r) => r.step)).toEqual([2, 2]);
  for (let step = 2; step < 4; step++) await Promise.all(resumed.map((r) => r.trainStep()));
  for (const [rank, run] of resumed.entries()) expect(paramsHash(await run.partParams())).toBe(paramsHash(await straight[rank].partParams()));
  for (const run of [...straight, ...interrupted, ...resumed]) run.dispose();
}
