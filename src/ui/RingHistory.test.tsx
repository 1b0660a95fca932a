// @vitest-environment jsdom
import { cleanup, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import type { MembershipChange } from '../shared/events';
import { RingHistory } from './RingHistory';

afterEach(cleanup);

const change = (over: Partial<MembershipChange>): MembershipChange => ({
  type: 'membership',
  epoch: 2,
  members: ['0a-aaaaaaaa', '0b-bbbbbbbb', '0c-cccccccc'],
  rank: 0,
  world: 3,
  step: 6,
  joined: [],
  left: ['0d-dddddddd'],
  reason: 'rank 2 (0d-dddddddd) is gone: left the room',
  receivedState: false,
  ...over,
});

describe('RingHistory', () => {
  it('lists re-forms newest first with the step, the tabs that came and went, and why', () => {
    render(<RingHistory changes={[change({}), change({ epoch: 3, world: 4, step: 10, left: [], joined: ['0e-eeeeeeee'], reason: 'tab 0e-eeeeeeee asks to join' })]} />);
    expect(screen.getByRole('heading').textContent).toBe('Ring membership (epoch 3)');
    const items = [...document.querySelectorAll('li')];
    expect(items.map((li) => li.getAttribute('data-epoch'))).toEqual(['3', '2']);
    expect(items[0].textContent).toContain('from step 10');
    expect(items[0].textContent).toContain('4 tabs · joined: eeeeeeee');
    expect(items[1].textContent).toContain('3 tabs · left: dddddddd');
    expect(items[1].textContent).toContain('is gone: left the room');
  });

  it('shows nothing before the ring re-formed', () => {
    const { container } = render(<RingHistory changes={[]} />);
    expect(container.innerHTML).toBe('');
  });
});
