// gRPC server reflection (doc/server-reflection.md in grpc/grpc), v1 and the older v1alpha that some clients
// still ask for first: lets grpcurl and ghz call the server without a copy of the .proto files. Answers come
// from the FileDescriptorSet `npm run gen` builds from proto/ (with comments, for grpcurl describe).
//
// nice-grpc-server-reflection answers; it implements grpc.reflection.v1 only. v1alpha's messages are v1's,
// field for field, under another package name, so the same implementation is served on a copy of the library's
// service definition whose method path names v1alpha.
import { readFileSync } from 'node:fs';
import { createFileRegistry, fromBinary } from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import type { ServiceImplementation } from 'nice-grpc';
import { ServerReflection, ServerReflectionService } from 'nice-grpc-server-reflection';

/** grpc.reflection.v1.ServerReflection, the library's definition. */
export const ReflectionV1 = ServerReflectionService;

/** grpc.reflection.v1alpha.ServerReflection: v1's method under v1alpha's path (same wire format). */
export const ReflectionV1alpha = {
  serverReflectionInfo: {
    ...ServerReflectionService.serverReflectionInfo,
    path: '/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo' as const,
  },
};

/** One implementation, served under both definitions. */
export type ReflectionService = ServiceImplementation<typeof ReflectionV1>;

/**
 * Reads the FileDescriptorSet of all our protos (gen/descriptors.binpb, written by `npm run gen`,
 * copied to dist/gen by scripts/copy-assets.mjs). Resolved against this module's own URL, so it works
 * from the sources under tsx and from the compiled dist/ alike, whatever the working directory.
 */
export function loadDescriptorSet(): Uint8Array {
  return readFileSync(new URL('../../gen/descriptors.binpb', import.meta.url));
}

/**
 * The reflection service over `descriptorSet` (a serialized google.protobuf.FileDescriptorSet), listing
 * `serviceNames` (full names, e.g. "redlease.v1.LockService"): the services the server actually serves,
 * which the descriptor set alone cannot tell. The library takes both as given, so this throws first when a
 * name is not a service in the set, or the set lacks a file that one of its files imports: a broken set fails
 * at startup rather than in a client's describe.
 */
export function reflectionService(
  descriptorSet: Uint8Array,
  serviceNames: readonly string[],
): ReflectionService {
  // createFileRegistry resolves every import, and throws naming the one it cannot find.
  const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, descriptorSet));
  for (const name of serviceNames) {
    if (registry.getService(name) === undefined) {
      throw new Error(`service ${name} is not in the descriptor set`);
    }
  }
  return ServerReflection(descriptorSet, serviceNames);
}
