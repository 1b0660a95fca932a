// ZeRO in an elastic room: backing up each rank's slice on its ring successor every `backupevery` steps,
// and moving the state into the new partition when the ring re-forms (see
// parallel/zero/zero-backup.ts for why two generations of slices on two tabs each lose nothing). The
// synchronous parameter server uses the same path: its state is one slice (all of it) held by rank 0,
// copied to rank 1.
// Each backup is compared by hash with its owner: the successor hashes the copy it decoded and sends
// the hash back; the owner compares it with the hash of the slice it captured, and a difference stops
// the run naming the step and both ranks (a CRC only proves the bytes were not damaged on the wire).
//
// The re-form (`redistributeZeroState`) runs on the new ring and never assembles the whole state:
//   1. every member sends rank 0 the list of slices it holds (step and range of each) and the ranges
//      its run for the new ring holds (its parameters and its optimizer state range);
//   2. rank 0 picks the newest step the pooled slices cover and plans, for every member, which holder
//      sends it which part of its ranges (its own store first, then the owner, then the copy) and
//      sends every member the plan (or, when no step is covered, why the state is lost: every member
//      then stops with that reason; or, when nothing past the seeded start was ever backed up, that the
//      ring starts again from the seed);
//   3. members send the pieces they hold to the ranks that need them, point to point, and write the
//      pieces they receive straight into their run: each rank holds its own ranges and, a piece at a
//      time, what it sends; at stage 3 no piece is larger than a shard.
import { viewOf, type Backend } from '../../engine/backend';
import type { Transport } from '../../collective/types';
import type { FlatRange } from '../../model/layout';
import { heldRange, type CheckpointableRun } from '../../train/checkpoint';
import { decodeJsonMessage, encodeJsonMessage, isDecodeError, isInt, isObject } from '../../peer/json-message';
import { readWindowed } from '../../parallel/zero/windowed-io';
import { PARAMETER_SERVER_RANK } from '../../parallel/parameter-server';
import {
  decodeSlice,
  encodeSlice,
  planTransfers,
  SliceError,
  subSlice,
  type SliceInfo,
  type StateWants,
  type Transfer,
  type TransferPlan,
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

/** The ranges this rank's run for the new ring holds: its parameters and its optimizer state range. */
export function wantsOf(run: CheckpointableRun): StateWants {
  return { params: heldRange(run), state: { ...run.optimizer.stateRange } };
}

/** Writes one piece of the state into this rank's run, where its flat range falls in what the run holds. */
export function writePiece(backend: Backend, run: CheckpointableRun, piece: ZeroSlice, paramsOnly: boolean): void {
  const held = heldRange(run);
  const { offset, length } = piece.range;
  backend.write(viewOf(run.model.params, offset - held.offset, length), piece.params);
  if (paramsOnly) return;
  const range = run.optimizer.stateRange;
  for (const { name, buf } of run.optimizer.stateBuffers()) run.optimizer.backend.write(viewOf(buf, offset - range.offset, length), piece.state.get(name)!);
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
const MAX_TRANSFERS = 4096;

/** A decoded control message of the re-form, or a SliceError saying why the peer's bytes are unusable. */
function decodeOrThrow<T>(bytes: Uint8Array, what: string, check: (raw: unknown) => string | null): T {
  const decoded = decodeJsonMessage<T>(bytes, what, check);
  if (isDecodeError(decoded)) throw new SliceError(decoded.error);
  return decoded;
}

const isSliceInfo = (e: unknown): boolean =>
  isObject(e) && isInt(e.step, 0, MAX) && isInt(e.offset, 0, MAX) && isInt(e.length, 1, MAX) && (e.own === undefined || typeof e.own === 'boolean');
const isRange = (r: unknown, total: number): r is FlatRange => isObject(r) && isInt(r.offset, 0, total - 1) && isInt(r.length, 1, total - (r.offset as number));

interface Inventory {
  slices: SliceInfo[];
  wants: StateWants;
}

function parseInventory(bytes: Uint8Array, from: number, total: number): Inventory {
  const check = (raw: unknown) => {
    if (!isObject(raw) || !Array.isArray(raw.slices) || raw.slices.length > 64) return 'not a list of at most 64 slices';
    if (!raw.slices.every(isSliceInfo)) return 'a malformed slice';
    const wants = raw.wants;
    return isObject(wants) && isRange(wants.params, total) && isRange(wants.state, total) ? null : `its ranges are not inside the model's ${total} floats`;
  };
  const { slices, wants } = decodeOrThrow<Inventory>(bytes, `rank ${from}'s slice list`, check);
  const range = ({ offset, length }: FlatRange) => ({ offset, length });
  return { slices: slices.map(({ step, offset, length, own }) => ({ step, offset, length, own: !!own })), wants: { params: range(wants.params), state: range(wants.state) } };
}

type PlanMessage = { plan: TransferPlan } | { lost: string } | { seed: true };

function checkPlan(raw: unknown): string | null {
  if (!isObject(raw)) return 'not an object';
  if ((typeof raw.lost === 'string' && raw.lost.length <= 1000) || raw.seed === true) return null;
  const plan = raw.plan;
  if (!isObject(plan) || !isInt(plan.step, 0, MAX) || !Array.isArray(plan.transfers) || plan.transfers.length > MAX_TRANSFERS) return 'malformed';
  const transfer = (t: unknown) =>
    isObject(t) && isInt(t.from, 0, MAX) && isInt(t.to, 0, MAX) && isInt(t.index, 0, MAX) && isInt(t.offset, 0, MAX) && isInt(t.length, 1, MAX) && typeof t.paramsOnly === 'boolean';
  return plan.transfers.every(transfer) ? null : 'a malformed piece';
}

/** Why the pieces do not tile `want` exactly (a gap or an overlap), or null when they do. */
function tilingError(pieces: readonly FlatRange[], want: FlatRange): string | null {
  let at = want.offset;
  for (const p of [...pieces].sort((a, b) => a.offset - b.offset)) {
    if (p.offset !== at) return p.offset > at ? `[${at}, ${p.offset}) is not covered` : `[${p.offset}, ${at}) is covered twice`;
    at += p.length;
  }
  return at === want.offset + want.length ? null : `[${at}, ${want.offset + want.length}) is not covered`;
}

/** One piece a rank wrote into its run: where, whether it came over the wire, and its hash (sliceHash). */
export interface WrittenPiece {
  range: FlatRange;
  paramsOnly: boolean;
  from: number;
  hash: string;
}

export interface Redistributed {
  /** The step the ring starts again from; null: from the seeded initialisation (nothing was written). */
  step: number | null;
  pieces: WrittenPiece[];
  bytesSent: number;
  bytesReceived: number;
  /** The longest piece this rank sent or received, in floats per buffer (its parameters and each optimizer buffer are arrays of this length). */
  largestPiece: number;
}

/**
 * Moves the backed-up ZeRO state into the new ring's partition. Every member calls it with the ranges
 * its new run holds (`wantsOf`); each receives exactly those ranges, at the newest step the pooled
 * slices cover, from whoever holds them, and hands every piece to `write` as it arrives (all reject with
 * the same reason when the state cannot be rebuilt). `seededStart` (rank 0's say): the room started from
 * the seeded initialisation, so a room lost before its starting state was backed up everywhere can
 * start over from the seed: all then resolve with step null.
 */
export async function redistributeZeroState(
  transport: Transport,
  backups: ZeroBackups,
  shape: SliceShape,
  wants: StateWants,
  write: (piece: ZeroSlice, paramsOnly: boolean) => void,
  seededStart = false,
): Promise<Redistributed> {
  const { rank, world } = transport;
  const tag = (collective: number, chunk = 0) => ({ round: 0, collective, chunk });
  const result: Redistributed = { step: null, pieces: [], bytesSent: 0, bytesReceived: 0, largestPiece: 0 };
  const send = async (to: number, collective: number, payload: Uint8Array, chunk = 0) => {
    result.bytesSent += payload.length;
    await transport.send(to, tag(collective, chunk), payload);
  };
  const others = Array.from({ length: world - 1 }, (_, i) => i + 1);

  // 1-2: the plan.
  let message: PlanMessage;
  if (rank === 0) {
    const received = await Promise.all(others.map(async (r) => parseInventory(await transport.recv(r, tag(ZERO_INVENTORY_COLLECTIVE)), r, shape.total)));
    const inventories = [{ slices: backups.inventory(), wants }, ...received];
    const plan = planTransfers(
      inventories.map((i) => i.slices),
      inventories.map((i) => i.wants),
    );
    const held = inventories.reduce((n, i) => n + i.slices.length, 0);
    const pastStart = inventories.some((i) => i.slices.some((s) => s.step > 0));
    message = plan
      ? { plan }
      : seededStart && !pastStart
        ? { seed: true }
        : { lost: `the ZeRO state cannot be rebuilt: the ${world} remaining tab(s) hold ${held} slice(s) and no step is covered by them all (two ring neighbours lost at once?)` };
    await Promise.all(others.map((r) => send(r, ZERO_PLAN_COLLECTIVE, json(message))));
  } else {
    await send(0, ZERO_INVENTORY_COLLECTIVE, json({ slices: backups.inventory(), wants }));
    message = decodeOrThrow<PlanMessage>(await transport.recv(0, tag(ZERO_PLAN_COLLECTIVE)), 'the re-form plan', checkPlan);
  }
  if ('lost' in message) throw new Error(message.lost);
  if ('seed' in message) return result;
  const { plan } = message;
  result.step = plan.step;

  // The plan must give this rank exactly its ranges, from ranks of this ring, before anything moves.
  const incoming = plan.transfers.filter((t) => t.to === rank);
  const bad = plan.transfers.find((t) => t.from >= world || t.to >= world);
  if (bad) throw new SliceError(`the re-form plan names rank ${Math.max(bad.from, bad.to)} of ${world}`);
  const gap = tilingError(incoming.filter((t) => !t.paramsOnly), wants.state) ?? tilingError(incoming, wants.params);
  if (gap) throw new SliceError(`the re-form plan does not give rank ${rank} its ranges: ${gap}`);

  // 3: the pieces, point to point; each written as it arrives.
  const pieceOf = (t: Transfer): ZeroSlice => {
    const slice = backups.at(t.index);
    if (slice.step !== plan.step) throw new SliceError(`the re-form plan asks for step ${plan.step} from a slice of step ${slice.step}`);
    const piece = subSlice(slice, t.offset, t.length);
    return t.paramsOnly ? { ...piece, state: new Map() } : piece;
  };
  const noState = { total: shape.total, buffers: [] };
  await Promise.all(
    plan.transfers.map(async (t, i) => {
      if (t.from === rank && t.to !== rank) {
        const piece = pieceOf(t);
        result.largestPiece = Math.max(result.largestPiece, piece.range.length);
        await send(t.to, ZERO_PIECE_COLLECTIVE, encodeSlice(piece), i);
      }
      if (t.to !== rank) return;
      let piece: ZeroSlice;
      if (t.from === rank) piece = pieceOf(t);
      else {
        const bytes = await transport.recv(t.from, tag(ZERO_PIECE_COLLECTIVE, i));
        result.bytesReceived += bytes.length;
        piece = decodeSlice(bytes, t.paramsOnly ? noState : shape);
        if (piece.step !== plan.step || piece.range.offset !== t.offset || piece.range.length !== t.length) throw new SliceError(`rank ${t.from} sent another piece than the one asked for`);
        result.largestPiece = Math.max(result.largestPiece, piece.range.length);
      }
      write(piece, t.paramsOnly);
      result.pieces.push({ range: { ...piece.range }, paramsOnly: t.paramsOnly, from: t.from, hash: sliceHash(piece) });
    }),
  );
  return result;
}

/**
 * Reads back, from the device, every piece a re-form wrote and compares it by hash with the piece as
 * its holder sent it: a piece written to the wrong place, or not at all, stops the run naming it.
 */
export async function verifyWrittenPieces(backend: Backend, run: CheckpointableRun, pieces: readonly WrittenPiece[], step: number): Promise<void> {
  const held = heldRange(run);
  const range = run.optimizer.stateRange;
  for (const p of pieces) {
    const { offset, length } = p.range;
    const params = await readWindowed(backend, viewOf(run.model.params, offset - held.offset, length));
    const state = new Map<string, Float32Array>();
    if (!p.paramsOnly) for (const { name, buf } of run.optimizer.stateBuffers()) state.set(name, await readWindowed(run.optimizer.backend, viewOf(buf, offset - range.offset, length)));
    const hash = sliceHash({ step, range: p.range, total: run.model.layout.totalLength, params, state });
    if (hash !== p.hash) {
      throw new ReplicasDisagree(`after the re-form to step ${step}: [${offset}, ${offset + length}) as written here hashes ${hash.slice(0, 16)}, rank ${p.from} sent ${p.hash.slice(0, 16)}`);
    }
  }
}
