// Link shaping for teaching (`latency=ms`, `bandwidth=MB/s`): makes this tab's data channels behave
// like a slow network. Each outgoing frame to a peer first waits for that link's earlier frames to be
// "serialised" at the set rate (bytes / bandwidth, one frame after another per link), then travels for
// the set one-way latency before it is put on the real channel. The sender is held only for the
// serialisation (a real link's send returns once the bytes are on the wire, not when they arrive), so
// frames overlap in flight as they do on a long pipe, and each link keeps its frames in order (one
// queue per link, drained in order by one timer at a time).
//
// Only the sending side shapes: when every tab of a room has the same setting, each direction of each
// link gets it once. One link may be given its own shape (setLink: the dashboard's per-link override),
// which replaces the tab's setting for the frames this tab sends on that link. Browsers run timers at best every few milliseconds (4 ms once nested), so
// latencies below that are rounded up by the browser, not by this code.

export interface LinkShape {
  /** One-way delay added to every frame, in milliseconds (0: none). */
  latencyMs: number;
  /** Link rate in bytes per second (Infinity: no limit). */
  bytesPerSec: number;
}

/** Waits shorter than this are not waited for (a timer cannot do better; the link's clock stays exact). */
const MIN_WAIT_MS = 1;

export class LinkShaper {
  /** Per peer: when the link has finished serialising everything queued on it (performance.now() ms). */
  private readonly freeAt = new Map<string, number>();
  /** Per peer: frames in flight, in send order, with their arrival times. */
  private readonly inFlight = new Map<string, { at: number; deliver: () => void | Promise<void> }[]>();

  /** Per peer: a shape of its own, in place of the tab's. */
  private readonly overrides = new Map<string, LinkShape>();

  constructor(private shape: LinkShape) {
    checkShape(shape);
  }

  get current(): LinkShape {
    return { ...this.shape };
  }

  /** The shape frames to `peerId` get: its own, or the tab's. */
  shapeOf(peerId: string): LinkShape {
    return { ...(this.overrides.get(peerId) ?? this.shape) };
  }

  /** Gives one link its own shape (null: back to the tab's); takes effect for frames sent from now on. */
  setLink(peerId: string, shape: LinkShape | null): void {
    if (shape === null) {
      this.overrides.delete(peerId);
      return;
    }
    checkShape(shape);
    this.overrides.set(peerId, { ...shape });
  }

  /** The links with a shape of their own. */
  overridden(): { peerId: string; shape: LinkShape }[] {
    return [...this.overrides].map(([peerId, shape]) => ({ peerId, shape: { ...shape } }));
  }

  /** Takes effect for frames sent from now on. */
  set(shape: LinkShape): void {
    checkShape(shape);
    this.shape = { ...shape };
  }

  /**
   * Schedules `deliver` (which puts the frame on the real channel) after the link's serialisation and
   * latency; resolves when the frame is serialised.
   */
  send(peerId: string, bytes: number, deliver: () => void | Promise<void>): Promise<void> {
    const shape = this.overrides.get(peerId) ?? this.shape;
    const now = performance.now();
    const start = Math.max(now, this.freeAt.get(peerId) ?? 0);
    const serialised = start + (Number.isFinite(shape.bytesPerSec) ? (1000 * bytes) / shape.bytesPerSec : 0);
    this.freeAt.set(peerId, serialised);
    const queue = this.inFlight.get(peerId) ?? [];
    this.inFlight.set(peerId, queue);
    queue.push({ at: serialised + shape.latencyMs, deliver });
    if (queue.length === 1) this.drainLater(peerId, queue);
    const wait = serialised - now;
    return wait < MIN_WAIT_MS ? Promise.resolve() : new Promise((resolve) => setTimeout(resolve, wait));
  }

  /** Delivers the link's due frames in order, then waits for the next one's arrival. */
  private drainLater(peerId: string, queue: { at: number; deliver: () => void | Promise<void> }[]): void {
    const drain = () => {
      while (queue.length > 0 && queue[0].at <= performance.now() + MIN_WAIT_MS) deliverNow(queue.shift()!.deliver);
      if (queue.length > 0) setTimeout(drain, queue[0].at - performance.now());
      else this.inFlight.delete(peerId);
    };
    const wait = queue[0].at - performance.now();
    if (wait < MIN_WAIT_MS) drain();
    else setTimeout(drain, wait);
  }
}

/** Puts a frame on the channel; a failure is the link's loss, which the mesh reports on its own. */
function deliverNow(deliver: () => void | Promise<void>): void {
  try {
    void Promise.resolve(deliver()).catch(() => undefined);
  } catch {
    // the channel closed meanwhile
  }
}

function checkShape(shape: LinkShape): void {
  if (!(shape.latencyMs >= 0) || !Number.isFinite(shape.latencyMs)) throw new RangeError(`latency must be a finite number of ms >= 0, got ${shape.latencyMs}`);
  if (!(shape.bytesPerSec > 0)) throw new RangeError(`bandwidth must be > 0 bytes per second (Infinity: unlimited), got ${shape.bytesPerSec}`);
}

/** The shape of the lab's `latency` (ms) and `bandwidth` (MB/s, 0: unlimited) keys, or null when both are off. */
export function linkShapeOf(latencyMs: number, bandwidthMBps: number): LinkShape | null {
  if (latencyMs === 0 && bandwidthMBps === 0) return null;
  return { latencyMs, bytesPerSec: bandwidthMBps > 0 ? bandwidthMBps * 1e6 : Infinity };
}

/** No shaping: what a link gets when neither the tab nor the link has a shape. */
export const UNSHAPED: LinkShape = { latencyMs: 0, bytesPerSec: Infinity };
