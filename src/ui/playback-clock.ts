// The ring view's clock. Chunk events reach the dashboard when a transfer has finished, so the view
// replays them a little behind live time: just far enough behind (the lag) that every transfer can be
// drawn from its real start to its real end. `scale` < 1 replays in slow motion; if slow motion falls
// too far behind, the clock skips to the newest round rather than showing stale traffic forever.

const LAG_WINDOW = 64;

export class PlaybackClock {
  /** Playback time, in the events' performance.now() clock; NaN before any event. */
  t = Number.NaN;
  skippedRounds = 0;
  private lags: number[] = [];
  private lastWall = Number.NaN;
  private newestRound = -Infinity;
  private newestRoundStart = Number.NaN;

  constructor(
    public scale = 1,
    /** Real milliseconds slow motion may fall behind live before it skips ahead. */
    private readonly maxBacklogMs = 1500,
  ) {}

  /** How far behind live the replay must run for the transfers seen lately to be drawn whole. */
  get lagMs(): number {
    return this.lags.length === 0 ? 0 : Math.max(...this.lags);
  }

  observe(event: { round: number; tStart: number }, seenAt: number): void {
    this.lags.push(Math.max(0, seenAt - event.tStart));
    if (this.lags.length > LAG_WINDOW) this.lags.shift();
    if (event.round > this.newestRound) {
      this.newestRound = event.round;
      this.newestRoundStart = event.tStart;
    } else if (event.round === this.newestRound) {
      this.newestRoundStart = Math.min(this.newestRoundStart, event.tStart);
    }
  }

  /** Advances to wall time `now` and returns the playback time. */
  tick(now: number): number {
    const live = now - this.lagMs;
    if (Number.isNaN(this.t) || this.scale >= 1) {
      this.t = Number.isNaN(this.t) && this.lags.length === 0 ? Number.NaN : live;
    } else {
      const dt = Number.isNaN(this.lastWall) ? 0 : now - this.lastWall;
      this.t = Math.min(live, this.t + dt * this.scale);
      if (live - this.t > this.maxBacklogMs && this.newestRoundStart > this.t) {
        this.t = this.newestRoundStart;
        this.skippedRounds++;
      }
    }
    this.lastWall = now;
    return this.t;
  }
}
