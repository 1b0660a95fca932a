// TEST-ONLY. jsdom has no Canvas 2D, Path2D or matchMedia; uPlot needs all three (matchMedia as soon
// as its module loads, so import this file before anything that imports uPlot). A do-nothing context
// lets uPlot run its real code path in component tests; what ends up on a canvas is checked in the
// browser by the e2e tests, the data handed to uPlot is checked here.
const noop = () => undefined;

if (typeof window.matchMedia !== 'function') {
  window.matchMedia = ((query: string) => ({
    matches: false,
    media: query,
    onchange: null,
    addEventListener: noop,
    removeEventListener: noop,
    addListener: noop,
    removeListener: noop,
    dispatchEvent: () => false,
  })) as unknown as typeof window.matchMedia;
}

const context = new Proxy(
  { measureText: () => ({ width: 10 }) } as Record<string | symbol, unknown>,
  { get: (target, key) => (key in target ? target[key] : noop), set: () => true },
);
HTMLCanvasElement.prototype.getContext = (() => context) as unknown as HTMLCanvasElement['getContext'];

if (typeof (globalThis as Record<string, unknown>).Path2D !== 'function') {
  (globalThis as Record<string, unknown>).Path2D = class {
    moveTo = noop;
    lineTo = noop;
    rect = noop;
    arc = noop;
    closePath = noop;
    bezierCurveTo = noop;
    quadraticCurveTo = noop;
    addPath = noop;
  };
}
