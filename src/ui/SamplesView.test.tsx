// @vitest-environment jsdom
import { cleanup, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { SamplesView } from './SamplesView';

afterEach(cleanup);

describe('SamplesView', () => {
  it('shows samples newest first, whitespace kept', () => {
    render(
      <SamplesView
        samples={[
          { type: 'sample', step: 10, text: 'teh  cat' },
          { type: 'sample', step: 20, text: 'the cat\nsat' },
        ]}
      />,
    );
    const items = [...document.querySelectorAll('li[data-step]')];
    expect(items.map((li) => li.getAttribute('data-step'))).toEqual(['20', '10']);
    expect(items[0].querySelector('pre')!.textContent).toBe('the cat\nsat');
  });

  it('explains itself when empty', () => {
    render(<SamplesView samples={[]} />);
    expect(screen.getByText(/writes a sample/)).toBeTruthy();
  });
});
