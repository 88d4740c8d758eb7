/**
 * The control plane's layers, bottom to top: a folder imports only from folders of
 * lower layers (and the top-level floor files), never from its own layer's others
 * or from above. `npm run lint:deps` checks this and that nothing imports in a cycle.
 */
const LAYERS = [
  ['net'],
  ['dataplane'],
  ['maglev', 'forwarding', 'checks'],
  ['state'],
  ['health', 'reconciler', 'bgp', 'capture'],
  ['controller'],
  ['trace'],
  ['api'],
  ['daemon'],
  ['deploy'],
  ['cli'],
];
const FOLDERS = LAYERS.flat();

const layerRules = LAYERS.flatMap((layer, index) =>
  layer.map((folder) => {
    const above = [...LAYERS.slice(index + 1).flat(), ...layer.filter((other) => other !== folder)];
    return {
      name: `layer-${folder}`,
      comment: `control/${folder}/ imports only from lower layers: not from ${above.join(', ')}`,
      severity: 'error',
      from: { path: `^control/${folder}/` },
      to: { path: `^control/(${above.join('|')})/` },
    };
  }),
);

module.exports = {
  forbidden: [
    { name: 'no-circular', comment: 'no import cycles', severity: 'error', from: {}, to: { circular: true } },
    {
      name: 'floor-files',
      comment: 'the top-level files of control/ are the floor: they import no folder but net/',
      severity: 'error',
      from: { path: '^control/[^/]+\\.ts$' },
      to: { path: '^control/[^/]+/', pathNot: '^control/net/' },
    },
    {
      name: 'known-layers',
      comment: 'every folder of control/ has its place in LAYERS (.dependency-cruiser.cjs)',
      severity: 'error',
      from: { path: '^control/' },
      to: { path: '^control/[^/]+/', pathNot: `^control/(${FOLDERS.join('|')})/` },
    },
    {
      name: 'unknown-layer',
      comment: 'a folder of control/ missing from LAYERS (.dependency-cruiser.cjs) has no rules: place it there',
      severity: 'error',
      from: { path: '^control/[^/]+/', pathNot: `^control/(${FOLDERS.join('|')})/` },
      to: {},
    },
    {
      name: 'test-dataplane-not-in-production',
      comment: 'control/dataplane/test-dataplane.ts is inspection support for tests and the bench only',
      severity: 'error',
      from: { path: '^control/', pathNot: '^control/dataplane/test-dataplane\\.ts$' },
      to: { path: '^control/dataplane/test-dataplane\\.ts$' },
    },
    {
      name: 'consumers-use-the-cli-library-only',
      comment:
        'the bench and scripts drive xlb as consumers: of control/cli/ they use the API client and the text formatting, not the commands',
      severity: 'error',
      from: { path: '^(bench|scripts)/' },
      to: { path: '^control/cli/', pathNot: '^control/cli/(client|format)\\.ts$' },
    },
    {
      name: 'control-stands-alone',
      comment: 'the control plane imports nothing from tests, the bench, scripts or the build output',
      severity: 'error',
      from: { path: '^control/' },
      to: { path: '^(test|bench|scripts|dist)/' },
    },
    ...layerRules,
  ],
  options: {
    // dist/ is seen (an import of the build output is refused) but not followed.
    doNotFollow: { path: '^(node_modules|dist)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.test.json' },
    exclude: { path: '^node_modules/' },
  },
};
