import { afterEach, describe, expect, it } from 'vitest';
import { integer, option } from './cli-options';

const originalArgv = process.argv;
const withArgs = (...args: string[]): void => {
  process.argv = ['node', 'script.ts', ...args];
};

describe('cli-options', () => {
  afterEach(() => {
    process.argv = originalArgv;
  });

  it('reads the value after --name, and the fallback when absent or given last without a value', () => {
    withArgs('--model', 'gpt', '--only');
    expect(option('model', 'mlp')).toBe('gpt');
    expect(option('seed', '1')).toBe('1');
    expect(option('only', 'dense')).toBe('dense');
  });

  it('parses integers at or above the minimum and names the option when one is not', () => {
    withArgs('--steps', '300', '--world', '1', '--seed', '2.5');
    expect(integer('steps', 50, 50)).toBe(300);
    expect(integer('micro', 8, 1)).toBe(8);
    expect(() => integer('world', 4, 2)).toThrow('--world must be an integer >= 2, got 1');
    expect(() => integer('seed', 0, 0)).toThrow('--seed must be an integer >= 0, got 2.5');
  });
});
