// The layer order of src/ (docs/architecture.md "Layers"), checked by `npm run check:layers` in
// `npm test`. A folder may import its own layer and the layers below it, never one above; no cycles.
// Tests (*.test.ts, test-support.ts) are exempt from the order, not from cycles: a parity test may
// assemble its subject with the lab's own config and recipe (or a client test with the real server);
// product code may not.
const layers = [
  ['engine'],
  ['gpu', 'model', 'data'],
  ['shared', 'train', 'collective'],
  ['peer', 'parallel'],
  ['lab'],
  ['store'],
  ['ui'],
];
const folder = (names) => `^src/(${names.join('|')})/`;
const tests = '\\.test\\.tsx?$|/test-support\\.ts$';

module.exports = {
  forbidden: [
    ...layers.slice(0, -1).map((layer, i) => ({
      name: `layer-${layer.join('-')}`,
      comment: `${layer.join(', ')} may import only ${layers.slice(0, i + 1).flat().join(', ')}`,
      severity: 'error',
      from: { path: folder(layer), pathNot: tests },
      to: { path: folder(layers.slice(i + 1).flat()) },
    })),
    {
      name: 'src-below-tools',
      comment: 'server, scripts, bench and e2e stand beside or above src/: src never imports them',
      severity: 'error',
      from: { path: '^src/', pathNot: tests },
      to: { path: '^(server|scripts|bench|e2e)/' },
    },
    {
      name: 'no-cycles',
      comment: 'modules (type-only imports included) must not import each other in a circle',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
  ],
  options: {
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    doNotFollow: { path: 'node_modules' },
  },
};
