// TEST SUPPORT ONLY: an in-memory stand-in for the browser's Web Locks (tab-locks.ts), one lock manager
// shared by the "tabs" of a test, so that signalling's departure logic is unit-tested in Node, where
// there are no Web Locks. A tab's crash releases every lock it held, as the browser does for a dead
// renderer; a steal takes a lock from its holder. Watchers hear of a free lock asynchronously, as in a
// browser. The real Web Locks of real Chromium tabs are covered by e2e/elastic-crash.spec.ts.
import type { TabLocks } from './tab-locks';

interface Holder {
  tab: string;
  onStolen: () => void;
}

export class FakeLockManager {
  private readonly held = new Map<string, Holder>();
  private readonly watchers = new Map<string, Set<() => void>>();

  /** The locks as one tab sees them. */
  forTab(tab: string): TabLocks {
    return {
      hold: (name, onStolen) => {
        if (this.held.has(name)) return Promise.reject(new Error(`fake locks: ${name} is already held`));
        const holder: Holder = { tab, onStolen };
        this.held.set(name, holder);
        return Promise.resolve(() => {
          if (this.held.get(name) === holder) this.free(name);
        });
      },
      watch: (name, onFree) => {
        let live = true;
        const fire = () => {
          if (live) onFree();
          live = false;
        };
        if (!this.held.has(name)) {
          queueMicrotask(fire);
        } else {
          const set = this.watchers.get(name) ?? new Set();
          set.add(fire);
          this.watchers.set(name, set);
        }
        return () => {
          live = false;
          this.watchers.get(name)?.delete(fire);
        };
      },
    };
  }

  /** Names of the locks a tab holds. */
  heldBy(tab: string): string[] {
    return [...this.held].filter(([, h]) => h.tab === tab).map(([name]) => name);
  }

  /** How many requests wait on a lock (watchers). */
  waitingOn(name: string): number {
    return this.watchers.get(name)?.size ?? 0;
  }

  /** The tab's renderer dies: the browser releases every lock it held. */
  crash(tab: string): void {
    for (const name of this.heldBy(tab)) this.free(name);
  }

  /** Another page takes the lock with `steal`, and lets it go at once. */
  steal(name: string): void {
    const holder = this.held.get(name);
    if (!holder) return;
    this.free(name);
    queueMicrotask(holder.onStolen);
  }

  private free(name: string): void {
    this.held.delete(name);
    const set = this.watchers.get(name);
    this.watchers.delete(name);
    for (const fire of set ?? []) queueMicrotask(fire);
  }
}
