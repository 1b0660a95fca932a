import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULT_CONFIG, configToQuery, parseConfig, pipelineNeedsRoom } from './config';

const fromQuery = (query: string) => parseConfig(new URLSearchParams(query).entries());

describe('lab config from the URL', () => {
  it('reads every documented key', () => {
    const config = fromQuery(
      'room=abc&model=mlp&dataset=spirals&mode=ps&compression=topk&ratio=0.05&accum=2&batch=32&steps=10&seed=7&world=4&autostart=1&backend=cpu&staleness=2&dashboard=0',
    );
    expect(config).toMatchObject({
      room: 'abc',
      dataset: 'spirals',
      mode: 'ps',
      compression: 'topk',
      ratio: 0.05,
      accum: 2,
      batch: 32,
      steps: 10,
      seed: 7,
      world: 4,
      autostart: true,
      backend: 'cpu',
      staleness: 2,
      dashboard: false,
    });
    expect(fromQuery('').dashboard).toBe(true);
    expect(() => fromQuery('dashboard=off')).toThrow(/dashboard must be 1 or 0/);
  });

  it('reads the name a student types, tidied, and refuses one that could not be shown as typed', () => {
    expect(fromQuery('name=%20Ada%20%20Lovelace%20').name).toBe('Ada Lovelace');
    expect(fromQuery('').name).toBe('');
    expect(() => fromQuery(`name=${'x'.repeat(33)}`)).toThrow(/name: a name has at most 32 characters/);
    expect(() => fromQuery('name=%3Cscript%3E')).toThrow(/name: a name starts with a letter or digit/);
  });

  it('follows the model with its default data set', () => {
    expect(fromQuery('model=gpt').dataset).toBe('sotu');
    expect(fromQuery('model=gpt&dataset=text').dataset).toBe('text');
  });

  it('refuses bad values with the key named', () => {
    expect(() => fromQuery('zero=4')).toThrow(/zero must be an integer from 0 to 3/);
    expect(() => fromQuery('model=resnet')).toThrow(/model must be one of mlp, gpt/);
    expect(() => fromQuery('stepz=3')).toThrow(ConfigError);
    expect(() => fromQuery('room=../../etc')).toThrow(/room/);
    expect(() => fromQuery('signal=http://x')).toThrow(/ws:\/\//);
  });

  it('refuses combinations that cannot run', () => {
    expect(() => fromQuery('model=gpt&dataset=mnist')).toThrow(/text/);
    expect(() => fromQuery('mode=ps&zero=2')).toThrow(/ring/);
    expect(() => fromQuery('world=3&batch=64&accum=2')).toThrow(/tab 0 would get 21 sample/);
    expect(fromQuery('world=3&batch=64').batch).toBe(64); // shares 21, 21, 22
  });

  it('refuses, before anything trains, the pipeline settings a user gets wrong, each naming its fix', () => {
    // More stages than tabs can hold: a 4-tab room does not split into stages of 3.
    expect(() => fromQuery('room=r&world=4&pipeline=3&hidden=8,8,8')).toThrow(/pipeline=3 needs a room whose size it divides \(tabs = pipelines x 3 stages\), got world=4/);
    expect(() => fromQuery('room=r&world=4&pipeline=4&schedule=foo')).toThrow(/schedule must be one of gpipe, 1f1b/);
    // micro=0 is the default (2 x stages), not an error; a negative count is.
    expect(fromQuery('room=r&world=4&pipeline=2&micro=0').micro).toBe(0);
    expect(() => fromQuery('room=r&world=4&pipeline=2&micro=-1')).toThrow(/micro/);
    // batch=0 is the recipe's global batch, which must split too: MNIST's 128 samples do not into 7 micro-batches.
    expect(() => fromQuery('room=r&world=2&pipeline=2&micro=7')).toThrow(/the global batch \(128, the recipe's\) does not split into 1 pipeline\(s\) x 7 equal micro-batches/);
    // More stages than the model has layers or blocks.
    expect(() => fromQuery('room=r&world=4&pipeline=4&model=gpt&dataset=sotu')).toThrow(
      /pipeline=4 gives each stage at least one of the GPT's blocks, and it has 2 \(the recipe's; layers= sets them\): set layers=4 or more/,
    );
    expect(() => fromQuery('room=r&world=4&pipeline=4&model=gpt&dataset=sotu&layers=3')).toThrow(/it has 3 \(layers=3\): set layers=4 or more/);
    expect(fromQuery('room=r&world=4&pipeline=4&model=gpt&dataset=sotu&layers=4').layers).toBe(4);
    expect(() => fromQuery('room=r&world=4&pipeline=4')).toThrow(/the MLP's layers, and it has 2 \(the recipe's hidden=256 and the output layer\): give hidden= at least 3 widths/);
    expect(() => fromQuery('room=r&world=4&pipeline=4&dataset=spirals')).toThrow(/it has 3 \(the recipe's hidden=32,32 and the output layer\)/);
    expect(() => fromQuery('room=r&world=4&pipeline=4&hidden=8')).toThrow(/it has 2 \(hidden=8 and the output layer\)/);
    expect(fromQuery('room=r&world=4&pipeline=4&hidden=8,8,8').pipeline).toBe(4);
  });

  it('reads the pipeline keys and refuses a pipeline that cannot be laid out on the room', () => {
    expect(fromQuery('room=r&world=4&pipeline=2&schedule=gpipe&micro=8')).toMatchObject({ pipeline: 2, schedule: 'gpipe', micro: 8 });
    expect(fromQuery('').schedule).toBe('1f1b');
    expect(pipelineNeedsRoom(fromQuery('pipeline=2'))).toMatch(/pipeline=2 splits the model across 2 tabs: it needs a room/);
    expect(pipelineNeedsRoom(fromQuery('room=r&pipeline=2'))).toBeNull();
    expect(() => fromQuery('room=r&world=3&pipeline=2')).toThrow(/needs a room whose size it divides .* got world=3/);
    expect(() => fromQuery('room=r&pipeline=2&schedule=interleaved')).toThrow(/schedule must be one of gpipe, 1f1b/);
    expect(() => fromQuery('room=r&micro=4')).toThrow(/micro sets the micro-batches of a pipeline/);
    expect(() => fromQuery('room=r&pipeline=2&zero=1')).toThrow(/ZeRO/);
    expect(() => fromQuery('room=r&pipeline=2&accum=2')).toThrow(/set micro, not accum/);
    expect(() => fromQuery('room=r&world=4&pipeline=2&micro=4&batch=12')).toThrow(/\(12\) does not split into 2 pipeline\(s\) x 4 equal micro-batches/);
    expect(fromQuery('room=r&world=4&pipeline=2&micro=4&batch=16').batch).toBe(16);
    expect(fromQuery('room=r&pipeline=4&hidden=8,8,8&ahead=1').ahead).toBe(1);
    expect(fromQuery('').ahead).toBe(0);
    expect(() => fromQuery('ahead=1')).toThrow(/ahead lets a pipeline stage run forwards early: set pipeline=2 or more/);
    expect(() => fromQuery('room=r&pipeline=2&schedule=gpipe&ahead=1')).toThrow(/use schedule=1f1b/);
    expect(() => fromQuery('room=r&pipeline=2&ahead=-1')).toThrow(/ahead/);
    expect(fromQuery('model=gpt&layers=4').layers).toBe(4);
    expect(() => fromQuery('layers=4')).toThrow(/layers sets the GPT's blocks/);
  });

  it('round-trips through the query string, writing only what differs from the defaults', () => {
    expect(configToQuery(DEFAULT_CONFIG)).toBe('');
    const config = fromQuery('room=r1&zero=2&world=4&batch=128&accum=2&autostart=1&dashboard=0');
    expect(configToQuery(config)).toContain('dashboard=0');
    expect(fromQuery(configToQuery(config))).toEqual(config);
  });
});
