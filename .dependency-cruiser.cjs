// The layers of the codebase, enforced by `npm run lint` (depcruise). docs/architecture.md draws them:
//   gen/ (wire types) ← server/grpc, server/edge, client/src
//   server/grpc, server/http → server/edge → server/coordinator → server/redlock
// Each rule says why it exists; a violation names the import to remove.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      comment: 'An import cycle hides which part owns what; split the shared piece into its own module.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'http-not-to-grpc',
      comment: 'Two edges, no cross-talk: what both need lives in server/edge/.',
      severity: 'error',
      from: { path: '^server/http/' },
      to: { path: '^server/grpc/' },
    },
    {
      name: 'grpc-not-to-http',
      comment: 'Two edges, no cross-talk: what both need lives in server/edge/.',
      severity: 'error',
      from: { path: '^server/grpc/' },
      to: { path: '^server/http/' },
    },
    {
      name: 'edges-not-to-engine',
      comment: 'The edges reach the engine only through the Coordinator (server/coordinator/index.ts).',
      severity: 'error',
      from: { path: '^server/(grpc|http|edge)/' },
      to: { path: '^server/redlock/' },
    },
    {
      name: 'edges-through-coordinator-index',
      comment: "The edges use the Coordinator's public surface (index.ts), not its parts.",
      severity: 'error',
      from: { path: '^server/(grpc|http|edge)/' },
      to: { path: '^server/coordinator/', pathNot: '^server/coordinator/index[.]ts$' },
    },
    {
      name: 'coordinator-not-to-edges',
      comment: 'Layers point down: the domain knows no transport.',
      severity: 'error',
      from: { path: '^server/coordinator/' },
      to: { path: '^(server/(grpc|http|edge|app|main|config|metrics)|gen/|telemetry/)' },
    },
    {
      name: 'engine-not-up',
      comment:
        'The Redlock engine knows nothing above it: no coordinator, no transport, no wire types. Its spans use the OpenTelemetry API package alone.',
      severity: 'error',
      from: { path: '^server/redlock/' },
      to: { path: '^(server/(coordinator|grpc|http|edge|app|main|config|metrics)|gen/|client/|telemetry/)' },
    },
    {
      name: 'server-not-in-sdk',
      comment: "The server does not live in the SDK's tree, and the SDK talks gRPC only.",
      severity: 'error',
      from: { path: '^server/' },
      to: { path: '^client/' },
    },
    {
      name: 'sdk-not-to-server',
      comment: 'The SDK is a separate package: it may use gen/ and npm packages, never the server.',
      severity: 'error',
      from: { path: '^client/src/', pathNot: '[.]test[.]ts$' },
      to: { path: '^(server|scripts|test|workers|telemetry)/' },
    },
    {
      name: 'workers-use-the-sdk',
      comment: 'Workers are clients: they use the SDK, never the server code.',
      severity: 'error',
      from: { path: '^workers/' },
      to: { path: '^server/' },
    },
    {
      name: 'telemetry-stands-alone',
      comment:
        'telemetry/ sets up OpenTelemetry for every program (server, workers, demo, bench): it uses npm packages only.',
      severity: 'error',
      from: { path: '^telemetry/' },
      to: { path: '^(server|client|workers|scripts|bench|ghz|chaos|gen|test)/' },
    },
    {
      name: 'product-not-to-tests',
      comment: 'Product code and tooling never import test code; shared helpers live outside test/.',
      severity: 'error',
      from: {
        path: '^(server|client/src|telemetry|workers|scripts|bench|ghz|k6|chaos|testkit)/',
        pathNot: '[.]test[.]ts$',
      },
      to: { path: '^test/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(dist|node_modules)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
