// Character-level text: a vocabulary from the characters seen, a train/validation split, and the
// encode/decode pair. The SOTU corpus (prepared at build time) and a user's own text both come through
// `textDataFromSplits`, so they behave identically.
import type { TextData } from './types';

export const SOTU_TRAIN_FILE = 'sotu-train.txt';
export const SOTU_VAL_FILE = 'sotu-val.txt';

export function buildVocab(...texts: string[]): string[] {
  const chars = new Set<string>();
  for (const text of texts) for (const ch of text) chars.add(ch);
  return [...chars].sort();
}

export function encodeText(text: string, vocab: readonly string[]): Uint32Array {
  const index = new Map(vocab.map((ch, i) => [ch, i]));
  const chars = [...text];
  const out = new Uint32Array(chars.length);
  chars.forEach((ch, i) => {
    const id = index.get(ch);
    if (id === undefined) throw new Error(`character ${JSON.stringify(ch)} is not in the vocabulary`);
    out[i] = id;
  });
  return out;
}

export function decodeTokens(tokens: ArrayLike<number>, vocab: readonly string[]): string {
  let out = '';
  for (let i = 0; i < tokens.length; i++) {
    const ch = vocab[tokens[i]];
    if (ch === undefined) throw new RangeError(`token ${tokens[i]} outside a vocabulary of ${vocab.length}`);
    out += ch;
  }
  return out;
}

export function textDataFromSplits(name: string, train: string, val: string): TextData {
  if (train.length < 2) throw new Error(`${name}: the training text needs at least 2 characters`);
  const vocab = buildVocab(train, val);
  return { name, vocab, train: encodeText(train, vocab), val: encodeText(val, vocab) };
}

/** A user's own text: the last `valFraction` of it is held out for validation. */
export function textDataFromString(text: string, valFraction = 0.1, name = 'your text'): TextData {
  if (!(valFraction >= 0 && valFraction < 1)) throw new RangeError(`valFraction must be in [0, 1), got ${valFraction}`);
  const chars = [...text];
  if (chars.length < 16) throw new Error(`${name}: need at least 16 characters of text, got ${chars.length}`);
  const cut = Math.max(2, Math.floor(chars.length * (1 - valFraction)));
  return textDataFromSplits(name, chars.slice(0, cut).join(''), chars.slice(cut).join(''));
}

/** Browser loader for the prepared State of the Union corpus. */
export async function fetchSotu(base = '/data/'): Promise<TextData> {
  const get = async (file: string) => {
    const response = await fetch(base + file);
    if (!response.ok) throw new Error(`fetching ${base}${file}: HTTP ${response.status} (run npm run prepare-data)`);
    return response.text();
  };
  const [train, val] = await Promise.all([get(SOTU_TRAIN_FILE), get(SOTU_VAL_FILE)]);
  return textDataFromSplits('sotu', train, val);
}

/**
 * Makes raw text fit a small vocabulary: typographic quotes and dashes become ASCII, CRs go, other
 * non-ASCII characters are dropped. Used when preparing the corpus.
 */
export function normaliseText(raw: string): string {
  return raw
    .replace(/\r\n?/g, '\n')
    .replace(/[\u2018\u2019\u02bc]/g, "'")
    .replace(/[\u201c\u201d]/g, '"')
    .replace(/[\u2013\u2014]/g, '-')
    .replace(/\u2026/g, '...')
    .replace(/\u00a0/g, ' ')
    .normalize('NFKD')
    .replace(/[^\n\x20-\x7e]/g, '')
    .replace(/[ \t]+\n/g, '\n')
    .replace(/\n{3,}/g, '\n\n');
}
