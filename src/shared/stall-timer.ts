// A wait that gives up only when nothing new happens: the timer restarts whenever `progress` is told
// of something it has not seen before (a tab that joined, a link that opened), and fires `onStall`
// once `ms` pass without such news. Forming a room uses it, so that a room of N tabs opened one at a
// time on a slow machine waits as long as tabs keep arriving, however long that takes in all, and
// still gives up soon after the last one came. Each thing counts once: a link that flaps cannot keep
// a wait alive forever.
export class StallTimer {
  private readonly seen = new Set<string>();
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    /** How long a wait lasts without news. */
    readonly ms: number,
    private readonly onStall: () => void,
  ) {
    this.arm();
  }

  /** Tells of things seen now (ids with a prefix for their kind, e.g. `joined:tab-b`); a new one restarts the wait. */
  progress(things: Iterable<string>): void {
    if (this.timer === null) return;
    let news = false;
    for (const thing of things) {
      if (this.seen.has(thing)) continue;
      this.seen.add(thing);
      news = true;
    }
    if (news) this.arm();
  }

  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private arm(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.onStall();
    }, this.ms);
  }
}
