// Named moments of a tab's step on its own timeline, through the browser's User Timing API
// (performance.mark): where a step's time goes in a room, measured rather than guessed. A script reads
// them back per tab (performance.getEntriesByType('mark') plus performance.timeOrigin puts every tab on
// one clock: scripts/swarm-shares-timeline.ts) and Chrome's performance panel draws them. A mark costs
// microseconds; the lab's marks are cleared every MAX_MARKS so a long run never grows the buffer.

/** Every mark's name starts with this, so that clearing touches only the lab's own marks. */
export const TRACE_PREFIX = 'lab:';

/** The lab's marks kept at most before they are cleared (about 1,000 steps of a data-parallel room). */
export const MAX_MARKS = 20_000;

let marks = 0;

/** Marks the moment `name` (prefixed with TRACE_PREFIX) with the step it belongs to as its detail. */
export function traceMark(name: string, step: number): void {
  if (typeof performance === 'undefined' || typeof performance.mark !== 'function') return;
  if (++marks > MAX_MARKS) {
    const names = new Set(performance.getEntriesByType('mark').map((entry) => entry.name));
    for (const name of names) if (name.startsWith(TRACE_PREFIX)) performance.clearMarks(name);
    marks = 1;
  }
  performance.mark(TRACE_PREFIX + name, { detail: step });
}
