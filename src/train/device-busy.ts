// When work handed to the device kept it busy: from when it was recorded until the device reported it
// finished. A step's figures are made when the step ends, and the device may still be finishing its
// last work then (nothing waits for it: whatever reads the results is ordered after it on the queue),
// so a span not finished yet counts as busy until the moment asked about.
import { spansWithin, type Interval } from './intervals';

export class DeviceBusy {
  private spans: { start: number; end?: number }[] = [];
  private flushes: Promise<void>[] = [];

  /** Tracks work recorded at `start` whose submission resolves `flushed` once the device has run it. */
  track(start: number, flushed: Promise<void>): void {
    const span: { start: number; end?: number } = { start };
    this.spans.push(span);
    const finished = () => void (span.end = performance.now());
    this.flushes.push(flushed.then(finished, finished));
  }

  /** The tracked spans within [from, to]; one still running counts until `to`. */
  within(from: number, to: number): Interval[] {
    return spansWithin(this.spans, from, to);
  }

  /** Resolves once the device has finished (or failed) everything tracked. */
  async settled(): Promise<void> {
    await Promise.all(this.flushes);
  }

  /** Forgets every span (a new step). */
  clear(): void {
    this.spans = [];
    this.flushes = [];
  }
}
