// Presence cards: every few seconds a tab tells the tabs it is linked to who it is (the name a student
// typed), what it computes on (WebGPU or the CPU fallback), how far it got and how long its steps take,
// so that the peers table shows the class: names, backends, and who is lagging. A card is a small JSON
// control frame, checked field by field before use (a peer may send anything); a bad one is refused.
//
// Names are chosen by people, so two may collide: the earlier tab (the lower peer id, ids start with
// the join time) keeps the name, a later one is shown as "name (2)" and is told so once.
import { encodeFrame, NO_RANK, type Frame } from './frame';
import type { MeshLinks } from './datachannel-transport';
import { decodeJsonMessage, isDecodeError, isInt, isObject, encodeJsonMessage, type Decoded } from './json-message';
import { COLLECTIVE_IDS } from '../collective/collective-ids';
import { everyMs } from './wake-timer';
import type { PeerInfo } from '../shared/events';

export const PRESENCE_COLLECTIVE = COLLECTIVE_IDS.presence.first;
export const MAX_NAME_LENGTH = 32;
/** Letters (any script), digits, spaces and . - _ ' : what a class list needs, and nothing that renders oddly. */
export const NAME_PATTERN = /^[\p{L}\p{N}][\p{L}\p{N} .'_-]*$/u;

export interface PresenceCard {
  /** The name typed on joining ('' when none). */
  name: string;
  backend: 'webgpu' | 'cpu' | '';
  adapter: string;
  /** Completed steps (-1 before the first). */
  step: number;
  /** Mean wall-clock milliseconds per step lately (0: not measured yet). */
  msPerStep: number;
}

/** Why a name cannot be used, or null. */
export function nameProblem(name: string): string | null {
  if (name === '') return null;
  if (name.length > MAX_NAME_LENGTH) return `a name has at most ${MAX_NAME_LENGTH} characters`;
  if (!NAME_PATTERN.test(name)) return "a name starts with a letter or digit and holds only letters, digits, spaces and . - _ '";
  return null;
}

function check(m: unknown): string | null {
  if (!isObject(m)) return 'not an object';
  if (typeof m.name !== 'string') return 'bad name';
  const bad = nameProblem(m.name);
  if (bad) return bad;
  if (m.backend !== 'webgpu' && m.backend !== 'cpu' && m.backend !== '') return 'bad backend';
  if (typeof m.adapter !== 'string' || m.adapter.length > 120) return 'bad adapter';
  if (!isInt(m.step, -1, 0xffffffff)) return 'bad step';
  if (typeof m.msPerStep !== 'number' || !Number.isFinite(m.msPerStep) || m.msPerStep < 0 || m.msPerStep > 1e7) return 'bad msPerStep';
  return null;
}

export function decodePresence(bytes: Uint8Array): Decoded<PresenceCard> {
  return decodeJsonMessage(bytes, 'presence card', check);
}

/**
 * The name each member is shown with: the first tab (lowest id) to claim a name keeps it, later ones get
 * " (2)", " (3)"... in id order. Case and spacing do not make two names different.
 */
export function shownNames(names: ReadonlyMap<string, string>): Map<string, string> {
  const byKey = new Map<string, number>();
  const shown = new Map<string, string>();
  for (const id of [...names.keys()].sort()) {
    const name = names.get(id)!;
    if (name === '') {
      shown.set(id, '');
      continue;
    }
    const key = name.toLowerCase().replace(/\s+/g, ' ').trim();
    const n = (byKey.get(key) ?? 0) + 1;
    byKey.set(key, n);
    shown.set(id, n === 1 ? name : `${name} (${n})`);
  }
  return shown;
}

type PresenceMesh = Pick<MeshLinks, 'peerId' | 'roomHash' | 'on' | 'sendRaw' | 'refuse'> & { isOpen(peerId: string): boolean; memberList(): string[] };

/** Sends this tab's card to its linked peers every `everyMs` and keeps the cards it receives. */
export class PresenceBoard {
  private readonly cards = new Map<string, PresenceCard>();
  private readonly stop: (() => void)[];
  private toldDuplicate = false;

  constructor(
    private readonly mesh: PresenceMesh,
    private readonly mine: () => PresenceCard,
    private readonly log: (level: 'warn', message: string) => void,
    intervalMs = 2000,
  ) {
    this.stop = [
      mesh.on({
        frame: (peerId: string, frame: Frame) => {
          if (frame.type !== 'control' || frame.collective !== PRESENCE_COLLECTIVE) return;
          const card = decodePresence(frame.payload);
          if (isDecodeError(card)) return mesh.refuse(peerId, card.error);
          this.cards.set(peerId, card);
          this.checkDuplicate();
        },
        peerOpen: (peerId: string) => this.sendTo(peerId),
        peerLost: (peerId: string) => this.cards.delete(peerId),
      }),
      everyMs(intervalMs, () => this.broadcast()),
    ];
  }

  /** A peer's card with the name it is shown with, or undefined before its first card. */
  cardOf(peerId: string): PresenceCard | undefined {
    const card = this.cards.get(peerId);
    return card && { ...card, name: this.shown().get(peerId) ?? card.name };
  }

  /** This tab's own name as the room shows it. */
  ownName(): string {
    return this.shown().get(this.mesh.peerId) ?? this.mine().name;
  }

  close(): void {
    for (const off of this.stop) off();
  }

  private shown(): Map<string, string> {
    const names = new Map<string, string>([[this.mesh.peerId, this.mine().name]]);
    for (const [id, card] of this.cards) names.set(id, card.name);
    return shownNames(names);
  }

  private checkDuplicate(): void {
    const own = this.mine().name;
    const shown = this.ownName();
    if (this.toldDuplicate || own === '' || shown === own) return;
    this.toldDuplicate = true;
    this.log('warn', `the name "${own}" is already taken in this room by a tab that joined earlier: you are shown as "${shown}" (choose another name with name= in the link)`);
  }

  private broadcast(): void {
    for (const id of this.mesh.memberList()) if (id !== this.mesh.peerId) this.sendTo(id);
  }

  private sendTo(peerId: string): void {
    if (!this.mesh.isOpen(peerId)) return;
    const header = { type: 'control' as const, roomHash: this.mesh.roomHash, round: 0, collective: PRESENCE_COLLECTIVE, chunk: 0, sender: NO_RANK, part: 0, parts: 1 };
    try {
      void Promise.resolve(this.mesh.sendRaw(peerId, encodeFrame(header, encodeJsonMessage(this.mine())))).catch(() => undefined);
    } catch {
      // a link closing meanwhile: the next card goes out in a few seconds
    }
  }
}

/**
 * Starts a presence board on a mesh and merges what it knows into the mesh's peers report (names,
 * backends, steps, step times; this tab's own under its own id). Returns the board (close() it on leaving).
 */
export function attachPresence(
  mesh: PresenceMesh & { presenceOf: ((peerId: string) => Pick<PeerInfo, 'name' | 'step' | 'msPerStep' | 'backend'> | undefined) | null },
  mine: () => PresenceCard,
  log: (level: 'warn', message: string) => void,
): PresenceBoard {
  const board = new PresenceBoard(mesh, mine, log);
  mesh.presenceOf = (peerId) => {
    const card = peerId === mesh.peerId ? { ...mine(), name: board.ownName() } : board.cardOf(peerId);
    if (!card) return undefined;
    return { name: card.name, step: card.step, msPerStep: card.msPerStep, backend: card.backend ? { kind: card.backend, adapter: card.adapter } : undefined };
  };
  return board;
}
