// A registry of descriptors from FileDescriptorProtos in any order: @bufbuild/protobuf adds the files of a
// FileDescriptorSet one by one and wants each file's imports added before it, while a reflection answer lists
// the requested file first and its imports after it (and our .proto loader has no particular order).
import { create, createFileRegistry, type FileRegistry } from '@bufbuild/protobuf';
import { type FileDescriptorProto, FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';

/** The registry of `files`, each added after the files it imports (which must all be among `files`). */
export function registryOf(files: readonly FileDescriptorProto[]): FileRegistry {
  const byName = new Map(files.map((file) => [file.name, file]));
  const ordered: FileDescriptorProto[] = [];
  const placed = new Set<string>();
  /** Depth-first: a file's imports, then the file (each file once, so this ends on import cycles too). */
  const place = (file: FileDescriptorProto) => {
    if (placed.has(file.name)) return;
    placed.add(file.name);
    for (const name of file.dependency) {
      const dependency = byName.get(name);
      if (dependency) place(dependency);
    }
    ordered.push(file);
  };
  for (const file of files) place(file);
  return createFileRegistry(create(FileDescriptorSetSchema, { file: ordered }));
}
