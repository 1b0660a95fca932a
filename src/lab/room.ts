// Joins the config's room: signalling (BroadcastChannel, or the WebSocket server when `signal` is set),
// the WebRTC mesh, and the ring's transport over the members in rank order.
//
// Rooms of up to ELASTIC_MAX_MEMBERS (32) tabs are elastic (elastic/elastic-room.ts): the first ring forms by
// roster, and later rings re-form around tabs that join or leave. Larger rooms link ring neighbours only:
// they form once, when `world` tabs are present, and a lost tab ends the run.
import { DataChannelTransport, newWireCounter, type MessageCheck, type WireCounter } from '../peer/datachannel-transport';
import { ELASTIC_MAX_MEMBERS } from '../peer/membership';
import type { Mesh } from '../peer/mesh';
import { openMesh } from '../peer/open-mesh';
import type { LabConfig } from './config';
import { ElasticRoom, type Formation } from './elastic/elastic-room';
import type { EventBus } from '../shared/events';

export interface JoinedRoom {
  mesh: Mesh;
  /** The current ring's transport (a new one after every re-form in an elastic room). */
  readonly transport: DataChannelTransport;
  /** The current ring's members in rank order. */
  readonly members: string[];
  /** Set in rooms of up to ELASTIC_MAX_MEMBERS tabs. */
  elastic: ElasticRoom | null;
  /** The first ring this tab joined (elastic rooms): which rank holds the state to start from. */
  formation: Formation | null;
  /** What every transport of this room sent (all ring epochs): payloads, frames, wire bytes. */
  wire: WireCounter;
  leave(): void;
}

export interface JoinOptions {
  /** Hears of the mesh as soon as it exists, before the room is full (refusal counts). */
  onMesh?: (mesh: Mesh) => void;
  /** Every complete message is checked before delivery (e.g. finite gradients). */
  messageCheck?: MessageCheck;
  /** Whether the room takes new tabs mid-run: true, or the reason it does not (told to the newcomer). */
  admits?: () => true | string;
}

/**
 * How long a tab waits for the room to fill and its links to open with nothing new happening. In an
 * elastic room (up to ELASTIC_MAX_MEMBERS tabs) every tab that joins (and every link that opens)
 * restarts the wait, so the room forms however slowly its tabs are opened, as long as the next one
 * comes within this; a larger room waits this long from its start (mesh.waitForRoom).
 */
export const ROOM_TIMEOUT_MS = 120_000;

/** What a tab says while it waits for its room (the dashboard's log), or null when it waits for nobody. */
export function roomWaitNote(config: Pick<LabConfig, 'world' | 'room'>): string | null {
  if (config.world <= 1) return null;
  return `waiting for ${config.world} tabs in room ${config.room}: each tab that joins restarts the wait, which gives up once none has joined for ${ROOM_TIMEOUT_MS / 1000} s`;
}

export async function joinRoom(config: LabConfig, bus: EventBus, options: JoinOptions = {}): Promise<JoinedRoom> {
  // With a secret, only tabs that hold it become members; every signal and frame is authenticated.
  const mesh = await openMesh({
    room: config.room,
    signal: config.signal,
    secret: config.secret,
    bus,
    maxRefusedPerPeer: config.maxrefused,
    deadAfterMs: config.peertimeout,
    onMesh: options.onMesh,
  });
  const world = Math.max(config.world, 1);
  try {
    const wire = newWireCounter();
    if (world > ELASTIC_MAX_MEMBERS) return await fixedRoom(mesh, world, options.messageCheck, wire);
    const elastic = new ElasticRoom(mesh, {
      formTimeoutMs: ROOM_TIMEOUT_MS,
      transport: { checkMessage: options.messageCheck, wire },
      admits: options.admits,
    });
    mesh.ringMembers = () => elastic.members;
    const formation = await elastic.form({ step: -1, hash: '' }, world);
    return {
      mesh,
      get transport() {
        return elastic.transport;
      },
      get members() {
        return elastic.members;
      },
      elastic,
      formation,
      wire,
      leave() {
        elastic.close();
        mesh.close();
      },
    };
  } catch (error) {
    mesh.close();
    throw error;
  }
}

/** A room past the full-mesh size: one ring, formed once every expected tab is linked. */
async function fixedRoom(mesh: Mesh, world: number, messageCheck: MessageCheck | undefined, wire: WireCounter): Promise<JoinedRoom> {
  const members = await mesh.waitForRoom(world, ROOM_TIMEOUT_MS);
  const transport = new DataChannelTransport(mesh, { members, checkMessage: messageCheck, wire });
  mesh.ringMembers = () => members;
  return {
    mesh,
    transport,
    members,
    elastic: null,
    formation: null,
    wire,
    leave() {
      transport.close('left the room');
      mesh.close();
    },
  };
}
