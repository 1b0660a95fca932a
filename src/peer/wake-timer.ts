// A repeating timer that keeps its pace in a background tab. Browsers throttle a hidden tab's timers
// (Chromium: at most once a second, and after five minutes hidden, once a minute), and a tab whose
// heartbeats stop is dropped from the ring by its peers. A dedicated worker's timers are not throttled
// that way, so the ticks come from a tiny worker; where there are no workers (Node, tests) it is a
// plain setInterval.

/** Calls `tick` every `ms` milliseconds until the returned function is called. */
export function everyMs(ms: number, tick: () => void): () => void {
  if (typeof Worker !== 'undefined' && typeof Blob !== 'undefined' && typeof URL.createObjectURL === 'function') {
    try {
      const url = URL.createObjectURL(new Blob([`setInterval(() => postMessage(0), ${Math.max(1, Math.round(ms))});`], { type: 'text/javascript' }));
      const worker = new Worker(url);
      worker.onmessage = () => tick();
      return () => {
        worker.terminate();
        URL.revokeObjectURL(url);
      };
    } catch {
      // A page whose security policy forbids blob workers: fall back to the throttled timer.
    }
  }
  const id = setInterval(tick, ms);
  return () => clearInterval(id);
}
