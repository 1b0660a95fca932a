// A classroom room in one process for unit tests: N tabs whose classroom messages go through the real
// encoder and decoder over per-link delays, and whose lesson tensors move over the in-memory transport.
import { createMemoryMesh } from '../collective/memory-transport';
import type { Transport } from '../collective/types';
import { Classroom, type ClassroomVenue } from './classroom';
import { decodeClassroomMessage, encodeClassroomMessage, isMessageError, type ClassroomChannel, type ClassroomMessage } from './classroom-protocol';
import { EventBus, type ClassroomSnapshotEvent, type LabEvent } from '../shared/events';

/**
 * N tabs in one process: classroom messages go through the real encoder and decoder, each directed
 * link delivers in order after its own delay (so one rank's report can overtake the teacher's start),
 * and chunks move over the in-memory transport.
 */
export function room(world: number, linkDelayMs: (from: number, to: number) => number = () => 1) {
  const ids = Array.from({ length: world }, (_, r) => `p${r}`);
  const handlers = ids.map(() => new Set<(from: string, m: ClassroomMessage) => void>());
  const refusals = ids.map(() => [] as string[]);
  const linkFreeAt = new Map<string, number>();
  const transports = createMemoryMesh(world, { recvTimeoutMs: 5000 });
  const buses = ids.map(() => new EventBus());
  const events = buses.map((bus) => {
    const seen: LabEvent[] = [];
    bus.subscribe((e) => seen.push(e));
    return seen;
  });
  const venues: ClassroomVenue[] = ids.map((selfId, self) => {
    const channel: ClassroomChannel = {
      selfId,
      send(to, message) {
        const target = ids.indexOf(to);
        const bytes = encodeClassroomMessage(message);
        // In order per link: never deliver before the previous message of the same link.
        const key = `${self}>${target}`;
        const at = Math.max(performance.now() + linkDelayMs(self, target), linkFreeAt.get(key) ?? 0);
        linkFreeAt.set(key, at);
        setTimeout(() => {
          const decoded = decodeClassroomMessage(bytes);
          if (isMessageError(decoded)) throw new Error(decoded.error);
          for (const h of handlers[target]) h(selfId, decoded);
        }, at - performance.now());
      },
      listen(handler) {
        handlers[self].add(handler);
        return () => handlers[self].delete(handler);
      },
      refuse: (from, reason) => refusals[self].push(`${from}: ${reason}`),
    };
    return {
      channel,
      members: async () => ids.slice(),
      transport: (): { transport: Transport; done(): void } => ({ transport: transports[self], done: () => undefined }),
    };
  });
  const classrooms = buses.map((bus) => new Classroom((event) => bus.publish(event)));
  classrooms.forEach((c, r) => c.attach(venues[r]));
  const snapshots = (rank: number) => events[rank].filter((e): e is ClassroomSnapshotEvent => e.type === 'classroom');
  const chunkEvents = (rank: number) => events[rank].filter((e) => e.type === 'chunk');
  const inject = (from: number, to: number, message: ClassroomMessage) => {
    for (const h of handlers[to]) h(ids[from], message);
  };
  return { ids, venues, classrooms, events, snapshots, chunkEvents, refusals, inject };
}

export async function until(check: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const t0 = performance.now();
  while (!check()) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
