// @vitest-environment jsdom
// The Links panel and its selector: the store keeps the newest fit and the newest refit of the same
// room, the selector joins each pick with the refit's measurement of that size, and the panel prints
// the fit and the rows.
import { cleanup, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import type { LinkFitEvent } from '../shared/events';
import { NO_LINKS, reduceLinkFit, selectLinks } from '../store/links-slice';
import { fitText, LinksPanel, measuredText } from './LinksPanel';

afterEach(cleanup);

const formed: LinkFitEvent = {
  type: 'link-fit',
  kind: 'formed',
  step: 0,
  world: 4,
  link: { alpha: 0.005, beta: 1 / 20e6, gamma: 1 / 40e6 },
  rmsRelativeError: 0.034,
  samples: 16,
  buckets: [],
  picks: [
    { bytes: 256, algorithm: 'naive', predictedMs: { ring: 30.1, naive: 5.03 }, latencyBoundMs: 5 },
    { bytes: 262144, algorithm: 'naive', predictedMs: { ring: 68, naive: 37.8 }, latencyBoundMs: 5 },
  ],
  t: 1,
};

const refit: LinkFitEvent = {
  ...formed,
  kind: 'refit',
  step: 9,
  link: { alpha: 0.006, beta: 1 / 18e6, gamma: 0 },
  samples: 24,
  buckets: [{ bytes: 4096, algorithm: 'naive', predictedMs: 5.6, measuredMs: 7.25 }],
  picks: [{ bytes: 4096, algorithm: 'naive', predictedMs: { ring: 36.5, naive: 6.2 }, latencyBoundMs: 6 }],
  t: 2,
};

describe('the links slice and selector', () => {
  it('shows nothing before a fit', () => {
    expect(selectLinks(NO_LINKS)).toBeNull();
  });

  it('a formed fit: alpha in ms, beta and gamma as MB/s, each probe size with its pick, prediction and latency bound, nothing measured yet', () => {
    const view = selectLinks(reduceLinkFit(NO_LINKS, formed))!;
    expect(view).toMatchObject({ kind: 'formed', step: 1, world: 4, alphaMs: 5, samples: 16 });
    expect(view.linkMBps).toBeCloseTo(20, 9);
    expect(view.rankMBps).toBeCloseTo(40, 9);
    expect(view.rows.map((r) => [r.bytes, r.algorithm, r.predictedMs, r.latencyBoundMs, r.measured])).toEqual([
      [256, 'naive', 5.03, 5, null],
      [262144, 'naive', 37.8, 5, null],
    ]);
    expect(fitText(view)).toBe('alpha 5.00 ms, link 20.0 MB/s, rank 40.0 MB/s (rms error 3%, 16 samples)');
  });

  it('a refit: its buckets measured beside what the older fit predicted; a gamma of 0 reads as free', () => {
    const slice = reduceLinkFit(reduceLinkFit(NO_LINKS, formed), refit);
    expect(slice.fits).toBe(2);
    const view = selectLinks(slice)!;
    expect(view.rows).toHaveLength(1);
    expect(measuredText(view.rows[0])).toBe('7.25 ms by naive (predicted 5.60 ms)');
    expect(fitText(view)).toMatch(/rank free/);
  });

  it('a fit of another room size (a re-formed ring) drops the old room\'s refit', () => {
    const slice = reduceLinkFit(reduceLinkFit(reduceLinkFit(NO_LINKS, formed), refit), { ...formed, world: 3 });
    expect(slice.lastRefit).toBeNull();
    const same = reduceLinkFit(reduceLinkFit(reduceLinkFit(NO_LINKS, formed), refit), { ...formed, step: 20 });
    expect(same.lastRefit).toMatchObject({ kind: 'refit', step: 9 });
  });
});

describe('LinksPanel', () => {
  it('draws the fit and one row per bucket size', () => {
    const view = selectLinks(reduceLinkFit(reduceLinkFit(NO_LINKS, formed), refit));
    render(<LinksPanel view={view} />);
    expect(screen.getByRole('heading').textContent).toBe('Links');
    expect(screen.getByTestId('links-fit').textContent).toMatch(/^alpha 6\.00 ms, link 18\.0 MB\/s/);
    expect(screen.getByText(/Refit after step 10 \(4 tabs\)/)).toBeTruthy();
    const cells = Array.from(screen.getAllByTestId('links-row')[0].children).map((c) => c.textContent);
    expect(cells).toEqual(['4.0 KiB', 'naive', '6.20 ms', '6.00 ms', '7.25 ms by naive (predicted 5.60 ms)']);
  });

  it('draws nothing without a fit', () => {
    const { container } = render(<LinksPanel view={null} />);
    expect(container.innerHTML).toBe('');
  });
});
