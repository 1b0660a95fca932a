// TESTS ONLY: seeded random token batches for the GPT tests (inputs and targets drawn uniformly from
// the vocabulary).
import { Rng } from '../data/random';

export function randomTokens(B: number, T: number, V: number, seed: number) {
  const rng = new Rng(seed);
  return {
    inputs: Uint32Array.from({ length: B * T }, () => rng.int(V)),
    targets: Uint32Array.from({ length: B * T }, () => rng.int(V)),
    rows: B,
  };
}
