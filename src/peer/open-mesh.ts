// Opens a room's mesh: the one way the lab's training room, the classroom's standby room and the
// automation API (window.lab.mesh) join a room. Signalling (BroadcastChannel with a fresh peer id, or
// the WebSocket server when `signal` is set, which assigns the id), the room secret's keys when there is
// one, then the WebRTC mesh, started. What the caller then does with the members (a ring, elastic re-forms) is its own.
import { createRoomAuth } from './auth';
import { Mesh, type MeshOptions } from './mesh';
import { normalizeRoomName } from './room-code';
import { openSignalling } from './signalling';

export interface OpenMeshOptions extends Omit<MeshOptions, 'signalling' | 'auth'> {
  /** Room name or code (normalized here; an invalid name throws before anything is opened). */
  room: string;
  /** ws:// or wss:// signalling server; empty or absent: BroadcastChannel (tabs of one browser). */
  signal?: string;
  /** Room secret: only tabs that hold it become members, and every signal and frame is authenticated. */
  secret?: string;
  /** Called with the mesh before it starts, so that listeners hear everything from the first frame. */
  onMesh?: (mesh: Mesh) => void;
}

export async function openMesh(options: OpenMeshOptions): Promise<Mesh> {
  const { room, signal, secret, onMesh, ...meshOptions } = options;
  const name = normalizeRoomName(room);
  const auth = secret ? await createRoomAuth(secret, name) : undefined;
  const mesh = new Mesh({ ...meshOptions, signalling: await openSignalling(name, signal || undefined), auth });
  onMesh?.(mesh);
  await mesh.start();
  return mesh;
}
