// The messages an elastic room uses to re-form its ring (src/lab/elastic/elastic-room.ts decides what to do
// with them). They travel as the mesh's control frames (frame.ts type 'control') with a JSON payload,
// and everything in them is checked before use: a peer that sends nonsense is refused, never obeyed.
//
//   ready   "I am out of the ring (or new) and can join the next one; here is the state I hold."
//   roster  "Epoch E is these members in rank order; rank `source` holds the state to start from."
//   abort   "Epoch E is over: stop using its ring and send `ready`."
//   closed  "This room does not take new tabs now", with the reason (a run that is not elastic).
import { encodeFrame, NO_RANK, type Frame } from './frame';
import type { MeshLinks } from './datachannel-transport';
import { ELASTIC_MAX_MEMBERS } from './membership';
import { decodeJsonMessage, encodeJsonMessage, isDecodeError, isInt, isObject, type Decoded } from './json-message';
import { PEER_ID_PATTERN } from './signal-protocol';
import { COLLECTIVE_IDS } from '../collective/collective-ids';

/** Collective id of elastic control frames (src/collective/collective-ids.ts). */
export const ELASTIC_COLLECTIVE = COLLECTIVE_IDS.elasticControl.first;

/** What a tab holds: its completed optimizer steps (-1: nothing yet, a new tab) and its parameters' hash. */
export interface StateCard {
  step: number;
  hash: string;
}

export type ElasticMessage =
  | { kind: 'ready'; left: number; card: StateCard }
  | { kind: 'roster'; epoch: number; members: string[]; cards: StateCard[]; source: number }
  | { kind: 'abort'; epoch: number; reason: string }
  | { kind: 'closed'; reason: string };

const MAX_EPOCH = 0xffff;
const MAX_REASON = 300;
const HASH = /^([0-9a-f]{16})?$/;

export function encodeElasticMessage(message: ElasticMessage): Uint8Array {
  return encodeJsonMessage(message);
}

/** Parses and validates a payload; returns the message or the reason it cannot be used. */
export function decodeElasticMessage(bytes: Uint8Array): Decoded<ElasticMessage> {
  return decodeJsonMessage(bytes, 'elastic message', checkMessage);
}

export const isElasticError = isDecodeError<ElasticMessage>;

function checkMessage(m: unknown): string | null {
  if (!isObject(m)) return 'not an object';
  switch (m.kind) {
    case 'ready':
      if (!isInt(m.left, 0, MAX_EPOCH)) return 'bad epoch left';
      return checkCard(m.card);
    case 'roster': {
      if (!isInt(m.epoch, 1, MAX_EPOCH)) return 'bad epoch';
      const members = m.members;
      if (!Array.isArray(members) || members.length < 1 || members.length > ELASTIC_MAX_MEMBERS) return 'bad member list';
      // Any id signalling can hand out (signal-protocol.ts): the server's ids are base64url, upper case and '_' included.
      if (!members.every((id) => typeof id === 'string' && PEER_ID_PATTERN.test(id))) return 'bad member id';
      if (new Set(members).size !== members.length || members.some((id, i) => i > 0 && members[i - 1] >= id)) return 'members not in rank order';
      if (!Array.isArray(m.cards) || m.cards.length !== members.length) return 'one state card per member expected';
      for (const card of m.cards) {
        const bad = checkCard(card);
        if (bad) return bad;
      }
      if (!isInt(m.source, -1, members.length - 1)) return 'bad source rank';
      return null;
    }
    case 'abort':
      if (!isInt(m.epoch, 1, MAX_EPOCH)) return 'bad epoch';
      return isReason(m.reason) ? null : 'bad reason';
    case 'closed':
      return isReason(m.reason) ? null : 'bad reason';
    default:
      return `unknown kind ${JSON.stringify(m.kind)?.slice(0, 40)}`;
  }
}

function checkCard(card: unknown): string | null {
  if (!isObject(card)) return 'bad state card';
  if (!isInt(card.step, -1, 0xffffffff)) return 'bad step in state card';
  if (typeof card.hash !== 'string' || !HASH.test(card.hash)) return 'bad hash in state card';
  if ((card.step < 0) !== (card.hash === '')) return 'a state card has a hash exactly when it has a step';
  return null;
}


function isReason(x: unknown): x is string {
  return typeof x === 'string' && x.length <= MAX_REASON;
}

/** How an elastic room talks to the other tabs: by peer id, one message at a time. */
export interface ElasticChannel {
  readonly selfId: string;
  /** Sends to one peer; false when there is no open link to it (the message is not sent). */
  send(to: string, message: ElasticMessage): boolean;
  /** Hears every valid elastic message; returns the unsubscribe function. */
  listen(handler: (from: string, message: ElasticMessage) => void): () => void;
}

/** The elastic channel over a room's mesh: control frames with ELASTIC_COLLECTIVE. */
export function meshElasticChannel(mesh: Pick<MeshLinks, 'peerId' | 'roomHash' | 'on' | 'sendRaw' | 'refuse'> & { isOpen(peerId: string): boolean }): ElasticChannel {
  return {
    selfId: mesh.peerId,
    send(to, message) {
      if (!mesh.isOpen(to)) return false;
      const header = { type: 'control' as const, roomHash: mesh.roomHash, round: 0, collective: ELASTIC_COLLECTIVE, chunk: 0, sender: NO_RANK, part: 0, parts: 1 };
      try {
        // With a room secret sendRaw seals asynchronously; a link that closes meanwhile is the heartbeat's to find.
        void Promise.resolve(mesh.sendRaw(to, encodeFrame(header, encodeElasticMessage(message)))).catch(() => undefined);
        return true;
      } catch {
        return false;
      }
    },
    listen(handler) {
      return mesh.on({
        frame: (peerId: string, frame: Frame) => {
          if (frame.type !== 'control' || frame.collective !== ELASTIC_COLLECTIVE) return;
          const message = decodeElasticMessage(frame.payload);
          if (isElasticError(message)) return mesh.refuse(peerId, message.error);
          handler(peerId, message);
        },
      });
    },
  };
}
