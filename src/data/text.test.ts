import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bigramNll, fitBigram, unigramEntropy } from './bigram';
import { decodeTokens, encodeText, normaliseText, SOTU_TRAIN_FILE, SOTU_VAL_FILE, textDataFromSplits, textDataFromString } from './text';

describe('character text', () => {
  it('encodes and decodes with one vocabulary over both splits', () => {
    const data = textDataFromString('hello world, hello lab! zz', 0.2);
    expect(decodeTokens(data.train, data.vocab) + decodeTokens(data.val, data.vocab)).toBe('hello world, hello lab! zz');
    expect(data.vocab).toContain('z'); // only in the validation part
    expect(data.val.length).toBe(6);
  });

  it('refuses unknown characters, tiny texts and bad fractions', () => {
    expect(() => encodeText('abc', ['a', 'b'])).toThrow(/not in the vocabulary/);
    expect(() => textDataFromString('short')).toThrow(/at least 16/);
    expect(() => textDataFromString('long enough text here', 1)).toThrow(/valFraction/);
    expect(() => decodeTokens([5], ['a'])).toThrow(/outside/);
  });

  it('normalises typography to ASCII', () => {
    expect(normaliseText('It\u2019s \u201cfine\u201d\u2014caf\u00e9\r\n')).toBe('It\'s "fine"-cafe\n');
  });
});

describe('bigram baseline', () => {
  it('learns a deterministic cycle almost perfectly and beats the unigram entropy', () => {
    const text = 'abcd'.repeat(200);
    const data = textDataFromSplits('cycle', text, 'abcdabcd');
    const model = fitBigram(data.train, data.vocab.length);
    const nll = bigramNll(model, data.val);
    expect(nll).toBeLessThan(0.02);
    expect(unigramEntropy(data.train, 4)).toBeCloseTo(Math.log(4), 6);
  });

  it('gives log(V) per character on an empty fit (pure smoothing)', () => {
    const model = fitBigram([0], 5);
    expect(bigramNll(model, [1, 2, 3])).toBeCloseTo(Math.log(5), 9);
  });

  const dir = join(process.cwd(), 'public', 'data');
  it('prepared SOTU corpus: ~1 MB, small vocabulary, bigram in a sane range', () => {
    // Missing data is a failure, not a skip: the lab and the e2e tests train on these files.
    for (const file of [SOTU_TRAIN_FILE, SOTU_VAL_FILE]) {
      if (!existsSync(join(dir, file))) throw new Error(`${join(dir, file)} is missing: run \`npm run prepare-data\` first`);
    }
    const data = textDataFromSplits('sotu', readFileSync(join(dir, SOTU_TRAIN_FILE), 'utf8'), readFileSync(join(dir, SOTU_VAL_FILE), 'utf8'));
    expect(data.train.length).toBeGreaterThan(500_000);
    expect(data.val.length).toBeGreaterThan(50_000);
    expect(data.vocab.length).toBeLessThan(100);
    const nll = bigramNll(fitBigram(data.train, data.vocab.length), data.val);
    expect(nll).toBeGreaterThan(1.8);
    expect(nll).toBeLessThan(unigramEntropy(data.val, data.vocab.length));
  });
});
