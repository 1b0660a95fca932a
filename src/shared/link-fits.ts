// collective=auto's fits as a tab keeps them (the dashboard's store and `window.lab.metrics().links`
// alike): the newest fit, formed or refit, and the newest refit of the same room, whose buckets carry
// the predicted and measured times. A fit of another room size (a re-formed ring) drops the old refit.
import type { LinkFit } from './events';

export interface LinkFits {
  /** The newest fit; null before collective=auto probed a ring. */
  latest: LinkFit | null;
  /** The newest refit of the same room. */
  lastRefit: LinkFit | null;
  /** Fits seen this run. */
  fits: number;
}

export const NO_LINK_FITS: LinkFits = { latest: null, lastRefit: null, fits: 0 };

export function nextLinkFits(before: LinkFits, fit: LinkFit): LinkFits {
  const sameRoom = before.latest !== null && before.latest.world === fit.world;
  return { latest: fit, lastRefit: fit.kind === 'refit' ? fit : sameRoom ? before.lastRefit : null, fits: before.fits + 1 };
}
