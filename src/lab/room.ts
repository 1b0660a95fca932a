// Joins the config's room: signalling (BroadcastChannel, or the WebSocket server when `signal` is set),
// the WebRTC mesh, and a data-channel transport over the members in rank order.
import { createRoomAuth } from '../peer/auth';
import { DataChannelTransport } from '../peer/datachannel-transport';
import { newPeerId } from '../peer/membership';
import { Mesh } from '../peer/mesh';
import { normalizeRoomName } from '../peer/room-code';
import { createSignalling } from '../peer/signalling';
import type { LabConfig } from './config';
import type { EventBus } from './events';

export interface JoinedRoom {
  mesh: Mesh;
  transport: DataChannelTransport;
  members: string[];
  leave(): void;
}

/** How long a tab waits for the room to fill and its links to open. */
const ROOM_TIMEOUT_MS = 120_000;

/** `onMesh` hears of the mesh as soon as it exists, before the room is full (refusal counts). */
export async function joinRoom(config: LabConfig, bus: EventBus, onMesh?: (mesh: Mesh) => void): Promise<JoinedRoom> {
  const room = normalizeRoomName(config.room);
  const peerId = newPeerId();
  // With a secret, only tabs that hold it become members; every signal and frame is authenticated.
  const auth = config.secret ? await createRoomAuth(config.secret, room) : undefined;
  const mesh = new Mesh({ signalling: createSignalling(room, peerId, config.signal || undefined), bus, auth, maxRefusedPerPeer: config.maxrefused });
  onMesh?.(mesh);
  await mesh.start();
  try {
    const members = await mesh.waitForRoom(Math.max(config.world, 1), ROOM_TIMEOUT_MS);
    const transport = new DataChannelTransport(mesh, { members });
    return {
      mesh,
      transport,
      members,
      leave() {
        transport.close('left the room');
        mesh.close();
      },
    };
  } catch (error) {
    mesh.close();
    throw error;
  }
}
