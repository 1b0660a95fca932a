// Knowing at once that a tab of this browser is gone, closed or crashed, without waiting for it to fall
// silent. Every tab of a BroadcastChannel room holds a Web Lock named after its room and peer id for as
// long as it is in the room, and asks for the lock of every member it knows. The browser grants such a
// request only when the holder released the lock: it left, or its document is gone, which includes a
// renderer that crashed or was killed (the lock manager lives in the browser process, not in the tab).
// So a granted request is proof that the member is gone, never a guess: a tab whose main thread is busy
// or frozen keeps its lock, and is left to the heartbeat deadline (mesh.ts).
//
// Web Locks are shared by the pages of one origin in one browser profile, exactly the tabs that one
// BroadcastChannel reaches; rooms through the signalling server learn the same from the server, which
// sees a gone tab's WebSocket close (server/signalling.ts).
//
// The one way a live tab's lock can be freed is another page of the origin taking it with `steal`; the
// holder then takes it back and says hello again, so that its peers, which dropped it, admit it again.

export interface TabLocks {
  /**
   * Takes the lock `name` and keeps it until the returned release() is called. Resolves once it is held.
   * `onStolen` is called if another page takes it away (`steal`); the lock is then no longer held.
   */
  hold(name: string, onStolen: () => void): Promise<() => void>;
  /**
   * Calls `onFree` once, when the lock `name` is free: its holder released it or its tab is gone (at
   * once if nobody holds it). Returns a function that stops watching (no call after it).
   */
  watch(name: string, onFree: () => void): () => void;
}

/** The lock a tab holds while it is in a room (lock names are per origin, so the room is part of it). */
export function memberLockName(room: string, peerId: string): string {
  return `webgpu-lab-member:${room}:${peerId}`;
}

/** Web Locks of this browser, or null where the page has none (not a secure context, or Node). */
export function browserTabLocks(): TabLocks | null {
  const locks = typeof navigator !== 'undefined' ? (navigator as Navigator & { locks?: LockManager }).locks : undefined;
  if (!locks || typeof locks.request !== 'function') return null;
  return {
    hold(name, onStolen) {
      return new Promise((resolve, reject) => {
        let granted = false;
        locks
          .request(name, { mode: 'exclusive' }, () => {
            granted = true;
            // The lock is held until this promise settles.
            return new Promise<void>((release) => resolve(() => release()));
          })
          // A lock that is stolen rejects its request with an AbortError.
          .catch((error: unknown) => (granted ? onStolen() : reject(error instanceof Error ? error : new Error(String(error)))));
      });
    },
    watch(name, onFree) {
      const stop = new AbortController();
      locks
        .request(name, { mode: 'exclusive', signal: stop.signal }, () => {
          if (!stop.signal.aborted) onFree();
          // Returning releases the lock at once: the next watcher of the same member is granted it too.
        })
        .catch(() => undefined); // aborted: this tab stopped watching
      return () => stop.abort();
    },
  };
}
