// What the classroom view derives from the snapshots it is given: the totals every rank should end
// with, and whether a rank's element already holds its total.
import type { ClassroomSnapshot } from '../shared/events';

/** Element-wise sum over ranks of the initial vectors: what an all-reduce (sum) must end with. */
export function expectedTotals(snapshots: readonly ClassroomSnapshot[]): number[] | null {
  const first = snapshots[0];
  if (!first || first.phase !== 'initial' || first.perRank.length === 0) return null;
  const totals = new Array<number>(first.perRank[0].values.length).fill(0);
  for (const r of first.perRank) r.values.forEach((v, i) => (totals[i] += v));
  return totals;
}

/** Float sums arrive in whatever order the ring added them: compare with a relative tolerance. */
export function sameNumber(a: number, b: number): boolean {
  return Math.abs(a - b) <= 1e-5 * Math.max(1, Math.abs(a), Math.abs(b));
}

export function allRanksAgree(snapshot: ClassroomSnapshot | undefined, totals: readonly number[] | null): boolean {
  if (!snapshot || snapshot.perRank.length === 0) return false;
  const reference = totals ?? snapshot.perRank[0].values;
  return snapshot.perRank.every((r) => r.values.length === reference.length && r.values.every((v, i) => sameNumber(v, reference[i])));
}

export function formatValue(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(3).replace(/0+$/, '').replace(/\.$/, '');
}
