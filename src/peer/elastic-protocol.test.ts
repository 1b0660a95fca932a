import { describe, expect, it } from 'vitest';
import { decodeElasticMessage, encodeElasticMessage, isElasticError, type ElasticMessage } from './elastic-protocol';

const bytes = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
const hash = '0123456789abcdef';
const fresh = { step: -1, hash: '' };

describe('elastic messages', () => {
  it('round-trips every kind', () => {
    const messages: ElasticMessage[] = [
      { kind: 'ready', left: 3, card: { step: 41, hash } },
      { kind: 'ready', left: 0, card: { step: -1, hash: '' } },
      { kind: 'roster', epoch: 4, members: ['0a-x', '0b-y'], cards: [{ step: 41, hash }, { step: -1, hash: '' }], source: 0 },
      // Ids as the signalling server assigns them (server/peer-ids.ts): base36 time, '-', base64url.
      { kind: 'roster', epoch: 1, members: ['0mxc31aok-hS9A2O2JyQK0', '0mxc31axs-Ol_GohQ-vbXS'], cards: [fresh, fresh], source: -1 },
      { kind: 'abort', epoch: 4, reason: 'rank 1 is gone' },
      { kind: 'closed', reason: 'mode=ps is not elastic' },
    ];
    for (const m of messages) expect(decodeElasticMessage(encodeElasticMessage(m))).toEqual(m);
  });

  it('refuses what a peer must not be obeyed on, with a reason', () => {
    const cases: [unknown, RegExp][] = [
      ['not an object', /not an object/],
      [{ kind: 'elect-me' }, /unknown kind/],
      [{ kind: 'ready', left: -1, card: { step: 1, hash } }, /epoch left/],
      [{ kind: 'ready', left: 1, card: { step: 1, hash: 'zz' } }, /hash/],
      [{ kind: 'ready', left: 1, card: { step: 5, hash: '' } }, /exactly when/],
      [{ kind: 'roster', epoch: 0, members: ['tab-a'], cards: [{ step: -1, hash: '' }], source: -1 }, /bad epoch/],
      [{ kind: 'roster', epoch: 2, members: ['tab-b', 'tab-a'], cards: [{ step: -1, hash: '' }, { step: -1, hash: '' }], source: -1 }, /rank order/],
      [{ kind: 'roster', epoch: 2, members: ['tab-a', 'tab-a'], cards: [{ step: -1, hash: '' }, { step: -1, hash: '' }], source: -1 }, /rank order/],
      [{ kind: 'roster', epoch: 2, members: Array.from({ length: 33 }, (_, i) => `tab-${String(i).padStart(2, '0')}`), cards: [], source: -1 }, /member list/],
      [{ kind: 'roster', epoch: 2, members: ['tab-a'], cards: [], source: -1 }, /one state card per member/],
      [{ kind: 'roster', epoch: 2, members: ['tab-a'], cards: [{ step: -1, hash: '' }], source: 1 }, /source rank/],
      [{ kind: 'roster', epoch: 2, members: ['A B'], cards: [{ step: -1, hash: '' }], source: -1 }, /member id/],
      [{ kind: 'roster', epoch: 2, members: ['tab'], cards: [{ step: -1, hash: '' }], source: -1 }, /member id/],
      [{ kind: 'roster', epoch: 2, members: ['x'.repeat(65)], cards: [{ step: -1, hash: '' }], source: -1 }, /member id/],
      [{ kind: 'abort', epoch: 2, reason: 'x'.repeat(301) }, /reason/],
    ];
    for (const [value, reason] of cases) {
      const decoded = decodeElasticMessage(bytes(value));
      expect(isElasticError(decoded), JSON.stringify(value).slice(0, 60)).toBe(true);
      expect((decoded as { error: string }).error).toMatch(reason);
    }
    expect(decodeElasticMessage(new Uint8Array([0xff, 0x00]))).toEqual({ error: 'elastic message: not UTF-8 JSON' });
  });
});
