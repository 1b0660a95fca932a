// MNIST in the lab's compact binary (written by scripts/prepare-data.ts, read by the browser and by
// Node tests through the same `parseMnist`):
//   bytes 0..7   "LABMNIST"
//   u32 LE       version (1), trainCount, testCount, rows, cols
//   u8[]         train labels, test labels, train pixels (row-major), test pixels
import type { ClassificationData, ClassificationSet } from './types';

export const MNIST_MAGIC = 'LABMNIST';
export const MNIST_VERSION = 1;
export const MNIST_HEADER_BYTES = 8 + 5 * 4;
export const MNIST_FILE = 'mnist.bin';

export interface MnistSplit {
  labels: Uint8Array;
  pixels: Uint8Array;
}

export function encodeMnist(train: MnistSplit, test: MnistSplit, rows = 28, cols = 28): Uint8Array {
  const pixelsPer = rows * cols;
  for (const [name, split] of [['train', train], ['test', test]] as const) {
    if (split.pixels.length !== split.labels.length * pixelsPer) {
      throw new RangeError(`${name}: ${split.pixels.length} pixels for ${split.labels.length} labels of ${pixelsPer}`);
    }
  }
  const total = MNIST_HEADER_BYTES + train.labels.length + test.labels.length + train.pixels.length + test.pixels.length;
  const out = new Uint8Array(total);
  out.set(new TextEncoder().encode(MNIST_MAGIC), 0);
  const header = new DataView(out.buffer, 8, 20);
  [MNIST_VERSION, train.labels.length, test.labels.length, rows, cols].forEach((v, i) => header.setUint32(i * 4, v, true));
  let at = MNIST_HEADER_BYTES;
  for (const part of [train.labels, test.labels, train.pixels, test.pixels]) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

export function parseMnist(bytes: Uint8Array): ClassificationData {
  if (bytes.length < MNIST_HEADER_BYTES) throw new Error(`MNIST file too short (${bytes.length} bytes)`);
  const magic = new TextDecoder().decode(bytes.subarray(0, 8));
  if (magic !== MNIST_MAGIC) throw new Error(`not a lab MNIST file (magic "${magic}"); run npm run prepare-data`);
  const header = new DataView(bytes.buffer, bytes.byteOffset + 8, 20);
  const [version, trainCount, testCount, rows, cols] = [0, 1, 2, 3, 4].map((i) => header.getUint32(i * 4, true));
  if (version !== MNIST_VERSION) throw new Error(`MNIST file version ${version}, expected ${MNIST_VERSION}`);
  const pixelsPer = rows * cols;
  const expected = MNIST_HEADER_BYTES + (trainCount + testCount) * (1 + pixelsPer);
  if (bytes.length !== expected) throw new Error(`MNIST file is ${bytes.length} bytes, header says ${expected}`);
  let at = MNIST_HEADER_BYTES;
  const take = (n: number) => {
    const part = bytes.subarray(at, at + n);
    at += n;
    return part;
  };
  const trainLabels = take(trainCount);
  const testLabels = take(testCount);
  const trainPixels = take(trainCount * pixelsPer);
  const testPixels = take(testCount * pixelsPer);
  for (const l of [trainLabels, testLabels]) {
    if (l.some((v) => v > 9)) throw new Error('MNIST labels must be digits 0..9');
  }
  const set = (name: string, labels: Uint8Array, pixels: Uint8Array): ClassificationSet => ({
    name,
    count: labels.length,
    features: pixelsPer,
    numClasses: 10,
    inputs: pixels,
    labels,
    image: { height: rows, width: cols },
  });
  return { train: set('mnist-train', trainLabels, trainPixels), test: set('mnist-test', testLabels, testPixels) };
}

/** Browser loader: Vite serves public/ at the site root. */
export async function fetchMnist(base = '/data/'): Promise<ClassificationData> {
  const response = await fetch(base + MNIST_FILE);
  if (!response.ok) throw new Error(`fetching ${base}${MNIST_FILE}: HTTP ${response.status} (run npm run prepare-data)`);
  return parseMnist(new Uint8Array(await response.arrayBuffer()));
}
