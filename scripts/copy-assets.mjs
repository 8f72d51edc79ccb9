// After `tsc`, copy the files the compiled code reads at run time next to it in dist/ (or the folder given as the
// first argument, tsc's --outDir then): the Lua scripts (the server's, and the SDK's that FencedStore loads
// relative to its module), and the FileDescriptorSet that gRPC reflection serves (loaded relative to the module,
// see server/grpc).
import { cpSync } from 'node:fs';

const out = process.argv[2] ?? 'dist';
cpSync('server/redlock/scripts', `${out}/server/redlock/scripts`, { recursive: true });
cpSync('client/src/lua', `${out}/client/src/lua`, { recursive: true });
cpSync('server/grpc/descriptors.binpb', `${out}/server/grpc/descriptors.binpb`);
