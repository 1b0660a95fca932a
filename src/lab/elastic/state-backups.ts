// Backups of state that lives on some tabs only, in an elastic room: ZeRO's optimizer-state shards and
// the synchronous parameter server's state (parallel-types.ts StatePlacement). After every completed,
// hash-checked `backupevery`-th step each tab keeps its slice and swaps copies with its ring neighbour
// (zero-state-transfer.ts), so that a re-formed ring can rebuild the whole state without any one tab.
// A ring that loses a tab goes back to the newest step backed up everywhere and trains the steps since
// again: every draw derives from seed and step, so they come out the same. At the re-form each rank
// fetches only the ranges of its new partition (never the whole state), checks what it wrote against
// what was sent, and backs the new partition up at once; the old partition's slices are dropped once
// that backup is complete.
import type { Backend } from '../../engine/backend';
import type { Gpt } from '../../model/gpt';
import type { Mlp } from '../../model/mlp';
import { PARAMETER_SERVER_RANK } from '../../parallel/parameter-server';
import type { StatePlacement } from '../../parallel/parallel-types';
import { ZeroBackups, type ZeroSlice } from '../../parallel/zero/zero-backup';
import type { Run } from '../../train/recipes';
import type { LabMetrics } from '../api';
import type { JoinedRoom } from '../room';
import { backUpServerState, backUpSlice, captureSlice, redistributeZeroState, sliceShapeOf, verifyWrittenPieces, wantsOf, writePiece } from './zero-state-transfer';

export interface StateBackupsDeps {
  metrics: LabMetrics;
  room: () => JoinedRoom | null;
  placement: () => StatePlacement;
  run: () => Run<Mlp> | Run<Gpt>;
  backend: () => Backend;
  /** Back up every this many steps (config backupevery). */
  every: () => number;
}

export class StateBackups {
  /** Backed-up slices this tab holds: its own and its ring predecessor's (zero-backup.ts). */
  readonly backups = new ZeroBackups();
  /** This run started from the seeded initialisation (no checkpoint, not joined): step 0 can be rebuilt from the seed. */
  seededStart = false;

  constructor(private readonly deps: StateBackupsDeps) {}

  /** Whether no single tab is sure to hold the whole optimizer state, in an elastic room. */
  active(): boolean {
    return this.deps.placement() !== 'replicated' && !!this.deps.room()?.elastic;
  }

  /** After a completed (and hash-checked) step: backs up when the step is a multiple of `every`. */
  async afterStep(step: number): Promise<void> {
    if (step % this.deps.every() === 0) await this.backUp();
  }

  /** Now (the starting state, a rebuilt one, a backup due): keep this rank's slice and swap copies with the ring. */
  async backUp(): Promise<void> {
    if (!this.active()) return;
    const run = this.deps.run();
    const transport = this.deps.room()!.transport;
    const shape = sliceShapeOf(run);
    // The parameter server's state is on rank 0 alone (workers hold a placeholder): rank 1 keeps its copy.
    const serverOnly = this.deps.placement() === 'server';
    const slice = !serverOnly || transport.rank === PARAMETER_SERVER_RANK ? await captureSlice(this.deps.backend(), run) : null;
    this.countBytes(serverOnly ? await backUpServerState(transport, this.backups, slice, shape, run.trainer.step) : await backUpSlice(transport, this.backups, slice!, shape));
    const held = (this.deps.metrics.zeroBackups ??= { bytesSent: 0, floatsHeld: 0, steps: 0 });
    held.floatsHeld = this.backups.floats();
    held.steps++;
  }

  /**
   * After the ring re-formed (every member calls it on the new ring, with its run built for its new rank
   * and world): fetches the ranges this rank's run holds from whoever holds them, at the newest step the
   * members' slices cover, checks them on the device against the pieces sent, and backs the new
   * partition up. Resolves with the step the ring starts from (null: the seeded start, which the run
   * already holds) and whether any piece came over the wire.
   */
  async adoptNewPartition(): Promise<{ step: number | null; received: boolean }> {
    const run = this.deps.run();
    const backend = this.deps.backend();
    const transport = this.deps.room()!.transport;
    const write = (piece: ZeroSlice, paramsOnly: boolean) => writePiece(backend, run, piece, paramsOnly);
    const moved = await redistributeZeroState(transport, this.backups, sliceShapeOf(run), wantsOf(run), write, this.seededStart);
    this.countBytes(moved.bytesSent);
    const held = (this.deps.metrics.zeroBackups ??= { bytesSent: 0, floatsHeld: 0, steps: 0 });
    const reform = (held.reform ??= { count: 0, bytesSent: 0, bytesReceived: 0, largestPiece: 0 });
    reform.count++;
    reform.bytesSent += moved.bytesSent;
    reform.bytesReceived += moved.bytesReceived;
    reform.largestPiece = Math.max(reform.largestPiece, moved.largestPiece);
    if (moved.step === null) {
      this.backups.clear();
      await this.backUp();
      return { step: null, received: false };
    }
    run.trainer.step = moved.step;
    await verifyWrittenPieces(backend, run, moved.pieces, moved.step);
    // Slices past the step the ring went back to belong to an abandoned timeline. The old partition's
    // slices stay until every slice of the new one is on two tabs: a tab lost during this backup leaves
    // the ring what it had.
    this.backups.rewind(moved.step);
    const previous = this.backups.detach();
    try {
      await this.backUp();
    } catch (error) {
      this.backups.reattach(previous);
      throw error;
    }
    return { step: moved.step, received: moved.pieces.some((p) => p.from !== transport.rank) };
  }

  /** Backup and rebuild traffic is model data on the wire: it counts in bytesSent and on its own. */
  countBytes(bytes: number): void {
    const m = this.deps.metrics;
    const held = (m.zeroBackups ??= { bytesSent: 0, floatsHeld: 0, steps: 0 });
    held.bytesSent += bytes;
    m.bytesSent += bytes;
  }
}
