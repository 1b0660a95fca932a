// What each rank holds under ZeRO stage 0-3 (Rajbhandari et al.): stage 1 shards optimizer state,
// stage 2 also gradients, stage 3 also the parameters themselves. Everything not sharded is replicated.
import type { MemoryKind } from '../engine/backend';
import type { ZeroStage } from '../lab/config';

export type { ZeroStage };
export type ShardedKind = 'params' | 'grads' | 'optimizer';
export const SHARDED_KINDS: readonly ShardedKind[] = ['params', 'grads', 'optimizer'];

const FIRST_SHARDED_AT: Record<ShardedKind, ZeroStage> = { optimizer: 1, grads: 2, params: 3 };

export function isSharded(kind: ShardedKind, stage: ZeroStage): boolean {
  return stage >= FIRST_SHARDED_AT[kind];
}

export interface HeldRange {
  kind: ShardedKind;
  sharded: boolean;
  start: number;
  end: number;
  /** Bytes the layout implies (f32), before any allocator rounding. */
  expectedBytes: number;
}

export function heldRanges(
  owned: { start: number; end: number },
  total: number,
  stage: ZeroStage,
  optimizerFloatsPerParam: number,
): HeldRange[] {
  return SHARDED_KINDS.map((kind) => {
    const sharded = isSharded(kind, stage);
    const start = sharded ? owned.start : 0;
    const end = sharded ? owned.end : total;
    const floats = kind === 'optimizer' ? optimizerFloatsPerParam : 1;
    return { kind, sharded, start, end, expectedBytes: (end - start) * 4 * floats };
  });
}

export function measuredBytes(memory: Record<MemoryKind, number> | undefined, kind: ShardedKind): number | null {
  return memory ? memory[kind] : null;
}

export function formatBytes(bytes: number): string {
  if (bytes >= 1 << 20) return `${(bytes / (1 << 20)).toFixed(2)} MiB`;
  if (bytes >= 1 << 10) return `${(bytes / (1 << 10)).toFixed(1)} KiB`;
  return `${bytes} B`;
}
