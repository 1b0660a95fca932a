// Backups of state that lives on some tabs only, in an elastic room: ZeRO's optimizer-state shards and
// the synchronous parameter server's state (parallel-types.ts StatePlacement). After every completed,
// hash-checked step each `backupevery`-th step each tab keeps its slice and swaps copies with its ring
// neighbour (zero-state-transfer.ts), so that a re-formed ring can rebuild the whole state without any
// one tab. A ring that loses a tab goes back to the newest step backed up everywhere and trains the
// steps since again: every draw derives from seed and step, so they come out the same.
import type { Backend } from '../../engine/backend';
import type { Gpt } from '../../model/gpt';
import type { Mlp } from '../../model/mlp';
import { PARAMETER_SERVER_RANK } from '../../parallel/parameter-server';
import type { StatePlacement } from '../../parallel/parallel-types';
import { ZeroBackups } from '../../parallel/zero/zero-backup';
import type { Run } from '../../train/recipes';
import type { LabMetrics } from '../api';
import type { JoinedRoom } from '../room';
import { backUpServerState, backUpSlice, captureSlice, sliceShapeOf } from './zero-state-transfer';

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

  /** Backup and rebuild traffic is model data on the wire: it counts in bytesSent and on its own. */
  countBytes(bytes: number): void {
    const m = this.deps.metrics;
    const held = (m.zeroBackups ??= { bytesSent: 0, floatsHeld: 0, steps: 0 });
    held.bytesSent += bytes;
    m.bytesSent += bytes;
  }
}
