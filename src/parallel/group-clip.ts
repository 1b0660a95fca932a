// The global-norm gradient clip of a model split over a group of tabs (tensor shards, expert groups):
// each tab sums the squares of the gradient entries it counts (its own split tensors, and the replicated
// ones on one tab only, so the whole model holds each once), the group all-reduces those sums, and every
// tab scales by the factor one tab's clip of the whole gradient would use. Equal bits on every tab: the
// all-reduce gives each the same per-rank sums, added in the same order.
import { runAllReduce } from '../collective/collectives';
import type { Transport } from '../collective/types';
import { type Backend, type DeviceBuffer, viewOf } from '../engine/backend';

export interface GroupClip {
  backend: Backend;
  grads: DeviceBuffer;
  /** The layout's entries; `counts(name)` says whether this tab's copy of an entry counts in the norm. */
  entries: readonly { name: string; offset: number; length: number }[];
  counts: (name: string) => boolean;
  group: Transport;
  maxNorm: number;
  round: number;
  collective: number;
}

export async function clipOverGroup({ backend: b, grads: buffer, entries, counts, group, maxNorm, round, collective }: GroupClip): Promise<void> {
  const grads = await b.read(viewOf(buffer));
  let own = 0;
  for (const e of entries) {
    if (!counts(e.name)) continue;
    for (let i = e.offset; i < e.offset + e.length; i++) own += grads[i] * grads[i];
  }
  const perRank = new Float32Array(group.world);
  perRank[group.rank] = own;
  if (group.world > 1) await runAllReduce(group, perRank, { round, collective });
  let sumSq = 0;
  for (const v of perRank) sumSq += v;
  const norm = Math.sqrt(sumSq);
  if (norm > maxNorm) {
    const scale = maxNorm / norm;
    for (let i = 0; i < grads.length; i++) grads[i] *= scale;
    b.write(viewOf(buffer), grads);
  }
}
