// ZeRO in an elastic room: backing up each rank's slice on its ring successor after every step, and
// rebuilding the full state from the survivors' slices when the ring re-forms (see
// parallel/zero/zero-backup.ts for why two generations of slices on two tabs each lose nothing). The
// synchronous parameter server uses the same rebuild: its state is one slice (all of it) held by rank 0,
// copied to rank 1 after every step.
// Each backup is compared by hash with its owner: the successor hashes the copy it decoded and sends
// the hash back; the owner compares it with the hash of the slice it captured, and a difference stops
// the run naming the step and both ranks (a CRC only proves the bytes were not damaged on the wire).
//
// The rebuild runs on the new ring, coordinated by its rank 0:
//   1. every member sends rank 0 the list of slices it holds (step and range of each);
//   2. rank 0 picks the newest step the pooled slices cover and tells each member which parts to send
//      (or, when none is covered, why the state is lost: every member then stops with that reason; or,
//      when nothing past the seeded start was ever backed up, that the ring starts again from the seed);
//   3. members send those parts; rank 0 joins them into the full state and sends it to every member,
//      which restores its own shard of the NEW partition from it.
import { viewOf, type Backend } from '../../engine/backend';
import type { Transport } from '../../collective/types';
import { writeHeldParams, type CheckpointableRun } from '../../train/checkpoint';
import { decodeJsonMessage, encodeJsonMessage, isDecodeError, isInt, isObject } from '../../peer/json-message';
import { readWindowed } from '../../parallel/zero/windowed-io';
import { PARAMETER_SERVER_RANK } from '../../parallel/parameter-server';
import {
  decodeSlice,
  encodeSlice,
  joinSlices,
  planAssembly,
  SliceError,
  subSlice,
  type AssemblyPlan,
  type SliceInfo,
  type ZeroBackups,
  type ZeroSlice,
} from '../../parallel/zero/zero-backup';
import { COLLECTIVE_IDS } from '../../collective/collective-ids';
import { paramsHash } from '../../model/layout';
import { ReplicasDisagree } from '../overlapped-exchange';

const ZERO_BACKUP_COLLECTIVE = COLLECTIVE_IDS.zeroBackup.first;
const ZERO_INVENTORY_COLLECTIVE = COLLECTIVE_IDS.zeroInventory.first;
const ZERO_PLAN_COLLECTIVE = COLLECTIVE_IDS.zeroPlan.first;
const ZERO_PIECE_COLLECTIVE = COLLECTIVE_IDS.zeroPiece.first;
const ZERO_STATE_COLLECTIVE = COLLECTIVE_IDS.zeroState.first;

/** The shape every slice of this run must have (slices of another model or optimizer are refused). */
export interface SliceShape {
  total: number;
  buffers: readonly string[];
}

export function sliceShapeOf(run: CheckpointableRun): SliceShape {
  return { total: run.model.layout.totalLength, buffers: run.optimizer.stateBuffers().map((s) => s.name) };
}

/** This rank's parameters and optimizer state over its shard (the optimizer's state range). */
export async function captureSlice(backend: Backend, run: CheckpointableRun): Promise<ZeroSlice> {
  const range = run.optimizer.stateRange;
  const total = run.model.layout.totalLength;
  // Stages 1-2 hold the full parameter vector; stage 3 holds exactly the shard.
  const params = run.model.params.length === total ? viewOf(run.model.params, range.offset, range.length) : viewOf(run.model.params, 0, range.length);
  const state = new Map<string, Float32Array>();
  // With ZeRO-Offload the state lives in host memory, on the optimizer's own backend.
  for (const { name, buf } of run.optimizer.stateBuffers()) state.set(name, await readWindowed(run.optimizer.backend, viewOf(buf)));
  return { step: run.trainer.step, range: { ...range }, total, params: await readWindowed(backend, params), state };
}

/** Writes this rank's part of a full state into a run built for the new ring. */
export function restoreSlice(backend: Backend, run: CheckpointableRun, full: ZeroSlice): void {
  const total = run.model.layout.totalLength;
  if (full.range.offset !== 0 || full.range.length !== total) throw new SliceError('restoring needs the full state');
  const range = run.optimizer.stateRange;
  const part = (a: Float32Array) => a.subarray(range.offset, range.offset + range.length);
  writeHeldParams(backend, run, full.params);
  for (const { name, buf } of run.optimizer.stateBuffers()) run.optimizer.backend.write(viewOf(buf), part(full.state.get(name)!));
  run.trainer.step = full.step;
}

/**
 * Keeps this rank's slice of the step just completed and swaps copies with the ring: sends it to the
 * successor and keeps the predecessor's. Resolves with the bytes sent.
 */
export async function backUpSlice(transport: Transport, backups: ZeroBackups, mine: ZeroSlice, shape: SliceShape): Promise<number> {
  backups.add(mine, true);
  const { rank, world } = transport;
  if (world < 2) return 0;
  const bytes = encodeSlice(mine);
  const [successor, predecessor] = [(rank + 1) % world, (rank + world - 1) % world];
  const tag = { round: mine.step, collective: ZERO_BACKUP_COLLECTIVE, chunk: 0 };
  const [, received] = await Promise.all([transport.send(successor, tag, bytes), transport.recv(predecessor, tag)]);
  const theirs = decodeSlice(received, shape);
  if (theirs.step !== mine.step) throw new SliceError(`ZeRO slice refused: rank ${predecessor} backed up step ${theirs.step} during step ${mine.step}`);
  backups.add(theirs, false);
  // The copy kept, hashed here, against the slice its owner captured, hashed there.
  const echo = { ...tag, chunk: 1 };
  const [, copyHash] = await Promise.all([transport.send(predecessor, echo, new TextEncoder().encode(sliceHash(theirs))), transport.recv(successor, echo)]);
  const own = sliceHash(mine);
  const theirsSaid = new TextDecoder().decode(copyHash);
  if (theirsSaid !== own) throw new ReplicasDisagree(`backup differs from its owner after step ${mine.step}: rank ${successor}'s copy of rank ${rank}'s shard hashes ${theirsSaid.slice(0, 16)}, rank ${rank} holds ${own}`);
  return bytes.length;
}

/** FNV-1a over a slice's floats (parameters, then each state buffer in order). */
export function sliceHash(slice: ZeroSlice): string {
  return [slice.params, ...slice.state.values()].map((a) => paramsHash(a)).join('');
}

/**
 * The synchronous parameter server's optimizer state lives on rank 0 alone (workers hold a placeholder):
 * after each step rank 0 keeps its own snapshot (the whole range) and sends a copy to rank 1, which
 * keeps it; the other ranks hold none. Resolves with the bytes sent.
 */
export async function backUpServerState(transport: Transport, backups: ZeroBackups, mine: ZeroSlice | null, shape: SliceShape, step: number): Promise<number> {
  const { rank, world } = transport;
  const tag = { round: step, collective: ZERO_BACKUP_COLLECTIVE, chunk: 0 };
  if (rank === PARAMETER_SERVER_RANK) {
    if (!mine || mine.range.offset !== 0 || mine.range.length !== shape.total) throw new SliceError('the parameter server backs up its whole state');
    backups.add(mine, true);
    if (world < 2) return 0;
    const bytes = encodeSlice(mine);
    await transport.send(1, tag, bytes);
    return bytes.length;
  }
  if (rank === 1) {
    const copy = decodeSlice(await transport.recv(PARAMETER_SERVER_RANK, tag), shape);
    if (copy.step !== step || copy.range.length !== shape.total) throw new SliceError(`the parameter server's backup of step ${copy.step} is not its whole state of step ${step}`);
    backups.add(copy, false);
  }
  return 0;
}

const json = encodeJsonMessage;
const MAX = Number.MAX_SAFE_INTEGER;

/** A decoded control message of the rebuild, or a SliceError saying why the peer's bytes are unusable. */
function decodeOrThrow<T>(bytes: Uint8Array, what: string, check: (raw: unknown) => string | null): T {
  const decoded = decodeJsonMessage<T>(bytes, what, check);
  if (isDecodeError(decoded)) throw new SliceError(decoded.error);
  return decoded;
}

const isSliceInfo = (e: unknown): boolean => isObject(e) && isInt(e.step, 0, MAX) && isInt(e.offset, 0, MAX) && isInt(e.length, 1, MAX);

function parseInventory(bytes: Uint8Array, from: number): SliceInfo[] {
  const check = (raw: unknown) => (!Array.isArray(raw) || raw.length > 64 ? 'not a list of at most 64 slices' : raw.every(isSliceInfo) ? null : 'a malformed entry');
  return decodeOrThrow<SliceInfo[]>(bytes, `rank ${from}'s slice list`, check).map(({ step, offset, length }) => ({ step, offset, length }));
}

type PlanMessage = { plan: AssemblyPlan } | { lost: string } | { seed: true };

function checkPlan(raw: unknown): string | null {
  if (!isObject(raw)) return 'not an object';
  if ((typeof raw.lost === 'string' && raw.lost.length <= 1000) || raw.seed === true) return null;
  const plan = raw.plan;
  if (!isObject(plan) || !isInt(plan.step, 0, MAX) || !Array.isArray(plan.picks) || plan.picks.length > 1024) return 'malformed';
  const pick = (p: unknown) => isObject(p) && isInt(p.member, 0, MAX) && isInt(p.index, 0, MAX) && isInt(p.offset, 0, MAX) && isInt(p.length, 1, MAX);
  return plan.picks.every(pick) ? null : 'a malformed piece';
}

/**
 * Rebuilds the full ZeRO state from the slices the members of a new ring hold. Every member calls it;
 * all resolve with the same full state (or all reject with the same reason when it cannot be rebuilt).
 * `seededStart` (rank 0's say): the room started from the seeded initialisation, so a room lost before
 * its starting state was backed up everywhere can start over from the seed: all then resolve with null.
 */
export async function rebuildZeroState(transport: Transport, backups: ZeroBackups, shape: SliceShape, seededStart = false): Promise<{ full: ZeroSlice | null; bytesSent: number }> {
  const { rank, world } = transport;
  const tag = (collective: number, chunk = 0) => ({ round: 0, collective, chunk });
  let bytesSent = 0;
  const send = async (to: number, collective: number, payload: Uint8Array, chunk = 0) => {
    bytesSent += payload.length;
    await transport.send(to, tag(collective, chunk), payload);
  };
  const others = Array.from({ length: world - 1 }, (_, i) => i + 1);

  // 1-2: the plan.
  let message: PlanMessage;
  if (rank === 0) {
    const inventories = [backups.inventory(), ...(await Promise.all(others.map(async (r) => parseInventory(await transport.recv(r, tag(ZERO_INVENTORY_COLLECTIVE)), r))))];
    const plan = planAssembly(inventories, shape.total);
    const held = inventories.reduce((n, list) => n + list.length, 0);
    const pastStart = inventories.some((list) => list.some((s) => s.step > 0));
    message = plan
      ? { plan }
      : seededStart && !pastStart
        ? { seed: true }
        : { lost: `the ZeRO state cannot be rebuilt: the ${world} remaining tab(s) hold ${held} slice(s) and no step is covered by them all (two ring neighbours lost at once?)` };
    await Promise.all(others.map((r) => send(r, ZERO_PLAN_COLLECTIVE, json(message))));
  } else {
    await send(0, ZERO_INVENTORY_COLLECTIVE, json(backups.inventory()));
    message = decodeOrThrow<PlanMessage>(await transport.recv(0, tag(ZERO_PLAN_COLLECTIVE)), 'the rebuild plan', checkPlan);
  }
  if ('lost' in message) throw new Error(message.lost);
  if ('seed' in message) return { full: null, bytesSent };
  const { plan } = message;

  // 3: the pieces to rank 0, the full state back to everyone.
  const pieceOf = (index: number) => {
    const pick = plan.picks[index];
    const slice = backups.at(pick.index);
    if (slice.step !== plan.step) throw new SliceError(`the rebuild plan asks for step ${plan.step} from a slice of step ${slice.step}`);
    return subSlice(slice, pick.offset, pick.length);
  };
  if (rank !== 0) {
    await Promise.all(plan.picks.map((p, i) => (p.member === rank ? send(0, ZERO_PIECE_COLLECTIVE, encodeSlice(pieceOf(i)), i) : undefined)));
    const full = decodeSlice(await transport.recv(0, tag(ZERO_STATE_COLLECTIVE)), shape);
    if (full.step !== plan.step || full.range.offset !== 0 || full.range.length !== shape.total) throw new SliceError('rank 0 sent a state that is not the planned one');
    return { full, bytesSent };
  }
  const pieces = await Promise.all(
    plan.picks.map(async (p, i) => {
      if (p.member === 0) return pieceOf(i);
      if (p.member >= world) throw new SliceError(`the plan names rank ${p.member} of ${world}`);
      const piece = decodeSlice(await transport.recv(p.member, tag(ZERO_PIECE_COLLECTIVE, i)), shape);
      if (piece.step !== plan.step || piece.range.offset !== p.offset || piece.range.length !== p.length) throw new SliceError(`rank ${p.member} sent another piece than the one asked for`);
      return piece;
    }),
  );
  const full = joinSlices(pieces, shape.total, shape.buffers);
  const bytes = encodeSlice(full);
  await Promise.all(others.map((r) => send(r, ZERO_STATE_COLLECTIVE, bytes)));
  return { full, bytesSent };
}
