// The run a tab trains from its URL settings: the MLP's hidden widths (input and output widths stay the
// data set's) and the gradient bucket's per-model default.
import { describe, expect, it } from 'vitest';
import { configToQuery, DEFAULT_CONFIG, parseConfig } from './config';
import { bucketFor, recipeFor } from './recipe';

const parse = (query: string) => parseConfig(new URLSearchParams(query));

describe('hidden widths setting', () => {
  it('replaces the hidden layers of the default MLP and round-trips through the URL', () => {
    const config = parse('hidden=1024, 512 ,1024&zero=3');
    expect(config.hidden).toBe('1024,512,1024');
    const recipe = recipeFor(config, 2);
    expect(recipe.kind === 'classifier' && recipe.recipe.model.sizes).toEqual([784, 1024, 512, 1024, 10]);
    expect(configToQuery(config)).toBe('zero=3&hidden=1024%2C512%2C1024');
    expect(parse(configToQuery(config))).toEqual(config);
    const spirals = recipeFor(parse('dataset=spirals&hidden=8'), 1);
    expect(spirals.kind === 'classifier' && spirals.recipe.model.sizes).toEqual([2, 8, 3]);
    // Absent: the measured default widths.
    const plain = recipeFor(parse(''), 1);
    expect(plain.kind === 'classifier' && plain.recipe.model.sizes).toEqual([784, 256, 10]);
  });

  it('refuses widths that are not 1-16 integers from 1 to 8192, and the GPT', () => {
    for (const bad of ['0', '1024,,8', 'a', '1.5', '9000', Array(17).fill(4).join(',')]) {
      expect(() => parse(`hidden=${bad}`)).toThrow(/hidden must be 1-16 comma-separated widths/);
    }
    expect(() => parse('model=gpt&hidden=64')).toThrow(/use model=mlp/);
  });
});

describe('GPT blocks setting', () => {
  it('sets the GPT\'s blocks (layers=4) and leaves the recipe\'s otherwise', () => {
    const four = recipeFor(parse('model=gpt&layers=4'), 1);
    expect(four.kind === 'charlm' && four.recipe.model.nLayer).toBe(4);
    const plain = recipeFor(parse('model=gpt'), 1);
    expect(plain.kind === 'charlm' && plain.recipe.model.nLayer).toBe(2);
  });
});

describe('bucket: the model default', () => {
  it("0 picks the measured default per model; any other value is the URL's", () => {
    expect(bucketFor({ ...DEFAULT_CONFIG, model: 'gpt', dataset: 'sotu' })).toBe(8192);
    expect(bucketFor({ ...DEFAULT_CONFIG, model: 'mlp' })).toBe(65536);
    expect(bucketFor(parseConfig([['bucket', '1024']]))).toBe(1024);
    expect(() => parseConfig([['bucket', '10']])).toThrow(/bucket must be 0/);
  });
});

describe('optimizer setting', () => {
  it('sgd: SGD with momentum 0.9 at the recipe\'s learning rate (or lr), same weight decay; adamw by default; anything else refused', () => {
    const adamw = recipeFor(parse('dataset=mnist'), 1).recipe.optimizer;
    expect(adamw.kind).toBe('adamw');
    expect(recipeFor(parse('optimizer=sgd'), 1).recipe.optimizer).toEqual({ kind: 'sgd', lr: adamw.lr, momentum: 0, weightDecay: adamw.weightDecay });
    expect(recipeFor(parse('optimizer=momentum'), 1).recipe.optimizer).toEqual({ kind: 'sgd', lr: adamw.lr, momentum: 0.9, weightDecay: adamw.weightDecay });
    expect(recipeFor(parse('optimizer=sgd&lr=0.05&model=gpt'), 1).recipe.optimizer).toMatchObject({ kind: 'sgd', lr: 0.05 });
    expect(configToQuery(parse('optimizer=sgd'))).toBe('optimizer=sgd');
    expect(() => parse('optimizer=lion')).toThrow(/optimizer must be one of adamw, sgd, momentum/);
  });
});
