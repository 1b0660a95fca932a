// @vitest-environment jsdom
import { cleanup, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { EventLog } from './EventLog';

afterEach(cleanup);

describe('EventLog', () => {
  it('counts refused frames by reason, most frequent first, and lists logs newest first', () => {
    render(
      <EventLog
        refused={{ recent: [], total: 3, byReason: { 'bad checksum': 1, 'wrong room': 2 } }}
        logs={[
          { type: 'log', level: 'info', message: 'joined', t: 1000 },
          { type: 'log', level: 'warn', message: 'peer 2 slow', t: 2000 },
        ]}
      />,
    );
    expect(screen.getByTestId('refused-total').textContent).toBe('3 frames refused:');
    expect([...document.querySelectorAll('.refused-reasons li')].map((li) => li.textContent)).toEqual([
      'wrong room: 2',
      'bad checksum: 1',
    ]);
    const lines = [...document.querySelectorAll('.log-lines li')];
    expect(lines[0].textContent).toContain('peer 2 slow');
    expect(lines[0].className).toBe('log-warn');
  });
});
