// ZeRO stages 1-3: the trainer hooks that shard optimizer state, gradients and parameters across the
// ring (the ZeRO issue). Entry point called by ../strategy.ts when config.zero > 0.
import type { ParallelContext, ParallelHooks } from '../strategy';

export function createZeroHooks(ctx: ParallelContext): ParallelHooks {
  throw new Error(`ZeRO stage ${ctx.config.zero} is not built yet`);
}
