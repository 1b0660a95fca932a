// What ZeRO should cost, by the paper's formulas for fp32 AdamW (4 bytes of parameters, 4 of
// gradients and 8 of moments per parameter): plain data parallelism 16P per rank, stage 1 8P + 8P/N,
// stage 2 4P + 12P/N, stage 3 16P/N; ZeRO-Offload moves the 8P/N of moments off the device. Wire
// bytes per rank per step: stages 0-2 move a 2P-sized all-reduce's worth (reduce-scatter + all-gather),
// stage 3 gathers the parameters twice (forward and backward) and reduce-scatters the gradients: 1.5x.
// P here is the flat buffer's padded length: the partition shards exactly that.
export type ZeroKindBytes = { params: number; grads: number; optimizer: number };

export function zeroBytesTheory(stage: number, P: number, N: number, optimizerFloatsPerParam = 2, offload = false): ZeroKindBytes & { total: number } {
  if (!(N >= 1)) throw new RangeError(`world must be >= 1, got ${N}`);
  const params = 4 * (stage >= 3 ? P / N : P);
  const grads = 4 * (stage >= 2 ? P / N : P);
  const optimizer = offload ? 0 : 4 * optimizerFloatsPerParam * (stage >= 1 ? P / N : P);
  return { params, grads, optimizer, total: params + grads + optimizer };
}

/** Bytes one rank sends per optimizer step (one micro-batch) by the ring formulas. */
export function zeroWireTheory(stage: number, P: number, N: number): number {
  const ring = (4 * P * (N - 1)) / N; // one reduce-scatter or one all-gather of the whole vector
  return (stage >= 3 ? 3 : 2) * ring;
}

/** measured / theory - 1, as a signed fraction. */
export function relativeError(measured: number, theory: number): number {
  return theory === 0 ? (measured === 0 ? 0 : Infinity) : measured / theory - 1;
}
