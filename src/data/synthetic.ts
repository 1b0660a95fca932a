// Small 2-D classification sets generated in code from a seed (no files): quick to train, easy to draw.
import { Rng } from './random';
import type { ClassificationData, ClassificationSet } from './types';

export type SyntheticKind = 'spirals' | 'circles' | 'xor' | 'gaussians';
export const SYNTHETIC_KINDS: readonly SyntheticKind[] = ['spirals', 'circles', 'xor', 'gaussians'];

export interface SyntheticOptions {
  kind: SyntheticKind;
  /** Points per split. */
  trainCount?: number;
  testCount?: number;
  /** Classes (spirals and gaussians; circles and xor are binary). */
  classes?: number;
  noise?: number;
  seed?: number;
}

type PointMaker = (rng: Rng, label: number, classes: number, noise: number) => [number, number];

const makers: Record<SyntheticKind, PointMaker> = {
  // Interleaved arms (CS231n's spiral data): arm `label` turns through 4 radians, radius growing with
  // the angle.
  spirals: (rng, label, classes, noise) => {
    const t = rng.uniform();
    const angle = t * 4 + (2 * Math.PI * label) / classes;
    return [t * Math.cos(angle) + noise * rng.normal(), t * Math.sin(angle) + noise * rng.normal()];
  },
  // Class 0 inside radius 0.5, class 1 on a ring of radius ~1.
  circles: (rng, label, _classes, noise) => {
    const angle = rng.uniform() * 2 * Math.PI;
    const r = label === 0 ? 0.5 * Math.sqrt(rng.uniform()) : 0.8 + 0.2 * rng.uniform();
    return [r * Math.cos(angle) + noise * rng.normal(), r * Math.sin(angle) + noise * rng.normal()];
  },
  // Label = sign(x) xor sign(y), points kept away from the axes by a small margin.
  xor: (rng, label, _classes, noise) => {
    const sx = rng.uniform() < 0.5 ? -1 : 1;
    const sy = label === 1 ? -sx : sx;
    const x = sx * (0.1 + 0.9 * rng.uniform());
    const y = sy * (0.1 + 0.9 * rng.uniform());
    return [x + noise * rng.normal(), y + noise * rng.normal()];
  },
  // One blob per class, centres evenly on a circle.
  gaussians: (rng, label, classes, noise) => {
    const angle = (2 * Math.PI * label) / classes;
    const spread = Math.max(noise, 0.05) * 2;
    return [0.7 * Math.cos(angle) + spread * rng.normal(), 0.7 * Math.sin(angle) + spread * rng.normal()];
  },
};

function generate(name: string, kind: SyntheticKind, count: number, classes: number, noise: number, rng: Rng): ClassificationSet {
  const inputs = new Float32Array(count * 2);
  const labels = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    const label = i % classes; // balanced classes
    const [x, y] = makers[kind](rng, label, classes, noise);
    inputs[2 * i] = x;
    inputs[2 * i + 1] = y;
    labels[i] = label;
  }
  return { name, count, features: 2, numClasses: classes, inputs, labels };
}

export function syntheticData(options: SyntheticOptions): ClassificationData {
  const { kind, trainCount = 1024, testCount = 256, noise = 0.05, seed = 1 } = options;
  if (!SYNTHETIC_KINDS.includes(kind)) throw new Error(`unknown synthetic set "${kind}" (one of ${SYNTHETIC_KINDS.join(', ')})`);
  const binary = kind === 'circles' || kind === 'xor';
  const classes = binary ? 2 : (options.classes ?? 3);
  if (!Number.isInteger(classes) || classes < 2) throw new RangeError(`classes must be an integer >= 2, got ${classes}`);
  if (trainCount < classes || testCount < 1) throw new RangeError('need at least one point per class in train and one in test');
  // Train and test come from separate streams so changing one size never changes the other split.
  return {
    train: generate(`${kind}-train`, kind, trainCount, classes, noise, new Rng(seed * 2 + 1)),
    test: generate(`${kind}-test`, kind, testCount, classes, noise, new Rng(seed * 2 + 2)),
  };
}
