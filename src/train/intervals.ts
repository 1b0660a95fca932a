// Time intervals of one step ([start, end] in performance.now() ms): how long something was busy, and
// how long two things were busy at once. Computing and communicating overlap in a data-parallel step
// (buckets are all-reduced while the backward pass still runs), so their durations cannot simply be
// added or stacked; these give the exact split.

export type Interval = readonly [start: number, end: number];

/** Sorted, disjoint intervals covering the same time as `intervals` (empty ones dropped). */
function merged(intervals: readonly Interval[]): [number, number][] {
  const sorted = intervals.filter(([start, end]) => end > start).sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [start, end] of sorted) {
    const last = out[out.length - 1];
    if (last && start <= last[1]) last[1] = Math.max(last[1], end);
    else out.push([start, end]);
  }
  return out;
}

/**
 * Length of the union of the intervals: the time at least one of them was running. A gap between two
 * (one bucket done, the next still being computed) moves no bytes and counts for nothing; measuring
 * from the first start to the last end instead would make communication look longer and the overlap
 * better than they are.
 */
export function unionMs(intervals: readonly Interval[]): number {
  return merged(intervals).reduce((sum, [start, end]) => sum + (end - start), 0);
}

/** Length of the time covered by both sets of intervals at once (each set may overlap itself). */
export function intersectionMs(a: readonly Interval[], b: readonly Interval[]): number {
  const [x, y] = [merged(a), merged(b)];
  let total = 0;
  let [i, j] = [0, 0];
  while (i < x.length && j < y.length) {
    const from = Math.max(x[i][0], y[j][0]);
    const to = Math.min(x[i][1], y[j][1]);
    if (to > from) total += to - from;
    if (x[i][1] < y[j][1]) i++;
    else j++;
  }
  return total;
}

/**
 * Spans of work (started at `start`, finished at `end` once known) clipped to [from, to]: one still
 * running counts until `to`, one not started yet (no `start`) counts for nothing.
 */
export function spansWithin(spans: readonly { start?: number; end?: number }[], from: number, to: number): Interval[] {
  const out: Interval[] = [];
  for (const { start, end } of spans) {
    if (start === undefined) continue;
    const [a, b] = [Math.max(start, from), Math.min(end ?? to, to)];
    if (b > a) out.push([a, b]);
  }
  return out;
}
