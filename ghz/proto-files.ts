// ghz's --proto mode: compile .proto files from disk instead of asking the server. Files are found as ghz's
// protoparse finds them: the proto file's path and every import are looked up in the import paths (the proto
// file's directory, ".", then --import-paths), and an absolute proto path is read by its base name. protobufjs
// (the parser @grpc/proto-loader uses too) parses them; its reflection objects are turned into
// FileDescriptorProtos with fully-qualified type names, so that the run encodes and decodes with the same
// @bufbuild/protobuf registry, and the same JSON mapping, as with server reflection.
//
// @grpc/proto-loader's loadSync also returns FileDescriptorProtos (`fileDescriptorProtos`, from protobufjs's
// ext/descriptor), but they do not build a registry: field type names are left as written ("Lease", not
// ".redlease.v1.Lease"), files are one per package named after it ("redlease_v1.proto") with no imports, and
// every file is marked proto3 (a proto2 file would lose `required` and its unpacked repeated fields).
// test/ghz.test.ts's two --proto tests fail on them, so the conversion below stays.
import { existsSync } from 'node:fs';
import { basename, isAbsolute, join } from 'node:path';
import { create, type FileRegistry } from '@bufbuild/protobuf';
import {
  type DescriptorProto,
  DescriptorProtoSchema,
  type EnumDescriptorProto,
  EnumDescriptorProtoSchema,
  EnumValueDescriptorProtoSchema,
  type FieldDescriptorProto,
  FieldDescriptorProtoSchema,
  FieldOptionsSchema,
  type FileDescriptorProto,
  FileDescriptorProtoSchema,
  MessageOptionsSchema,
  MethodDescriptorProtoSchema,
  OneofDescriptorProtoSchema,
  type ServiceDescriptorProto,
  ServiceDescriptorProtoSchema,
} from '@bufbuild/protobuf/wkt';
import type * as ProtobufJs from 'protobufjs';
import protobuf from 'protobufjs';
import { ConfigError } from './config.js';
import { registryOf } from './file-registry.js';

/** FieldDescriptorProto.Type by protobufjs scalar type name. */
const SCALARS: Record<string, number> = {
  double: 1,
  float: 2,
  int64: 3,
  uint64: 4,
  int32: 5,
  fixed64: 6,
  fixed32: 7,
  bool: 8,
  string: 9,
  bytes: 12,
  uint32: 13,
  sfixed32: 15,
  sfixed64: 16,
  sint32: 17,
  sint64: 18,
};
const TYPE_MESSAGE = 11;
const TYPE_GROUP = 10;
const TYPE_ENUM = 14;
const LABEL_OPTIONAL = 1;
const LABEL_REQUIRED = 2;
const LABEL_REPEATED = 3;

/** Compiles `proto` and its imports, found in `importPaths` (in order), into a registry. */
export function loadProtoFiles(proto: string, importPaths: readonly string[]): FileRegistry {
  const root = new protobuf.Root();
  /** Path on disk → the name the file was imported by (its FileDescriptorProto name). */
  const importNames = new Map<string, string>();
  root.resolvePath = (_origin, target) => {
    for (const dir of importPaths) {
      const path = join(dir, target);
      if (existsSync(path)) {
        importNames.set(path, target);
        return path;
      }
    }
    return target; // protobufjs then reports the file as missing
  };
  try {
    root.loadSync(isAbsolute(proto) ? basename(proto) : proto, { keepCase: true });
    root.resolveAll();
  } catch (error) {
    throw new ConfigError(`${proto}: ${(error as Error).message}`);
  }
  const files = new Files((object) => {
    const path = object.filename ?? 'unknown.proto';
    return importNames.get(path) ?? path;
  });
  files.addNamespace(root, '');
  return registryOf(files.all());
}

/** FileDescriptorProtos built from protobufjs reflection objects, one per source file. */
class Files {
  readonly #files = new Map<string, FileDescriptorProto>();
  readonly #dependencies = new Map<string, Set<string>>();

  constructor(private readonly nameOf: (object: ProtobufJs.ReflectionObject) => string) {}

  all(): FileDescriptorProto[] {
    for (const [name, file] of this.#files) {
      file.dependency = [...(this.#dependencies.get(name) ?? [])].filter((d) => d !== name);
    }
    return [...this.#files.values()];
  }

  addNamespace(namespace: ProtobufJs.Namespace, packageName: string): void {
    for (const nested of namespace.nestedArray) {
      if (nested instanceof protobuf.Type) {
        this.#file(nested, packageName).messageType.push(this.#message(nested));
      } else if (nested instanceof protobuf.Enum) {
        this.#file(nested, packageName).enumType.push(enumProto(nested));
      } else if (nested instanceof protobuf.Service) {
        this.#file(nested, packageName).service.push(this.#service(nested));
      } else if (nested instanceof protobuf.Namespace) {
        this.addNamespace(nested, packageName ? `${packageName}.${nested.name}` : nested.name);
      }
      // Extension fields declared at file level (custom options) are not needed to make calls.
    }
  }

  #file(object: ProtobufJs.ReflectionObject, packageName: string): FileDescriptorProto {
    const name = this.nameOf(object);
    let file = this.#files.get(name);
    if (file === undefined) {
      const edition = (object as unknown as { _edition?: string })._edition ?? 'proto2';
      file = create(FileDescriptorProtoSchema, {
        name,
        package: packageName,
        ...(edition === 'proto3' || edition === 'proto2'
          ? { syntax: edition }
          : { syntax: 'editions', edition: edition === '2024' ? 1001 : 1000 }),
      });
      this.#files.set(name, file);
    }
    return file;
  }

  /** Records that the file of `from` imports the file of `to`. */
  #uses(from: ProtobufJs.ReflectionObject, to: ProtobufJs.ReflectionObject): void {
    const name = this.nameOf(from);
    const set = this.#dependencies.get(name) ?? new Set();
    this.#dependencies.set(name, set);
    set.add(this.nameOf(to));
  }

  #message(type: ProtobufJs.Type): DescriptorProto {
    const message = create(DescriptorProtoSchema, { name: type.name });
    for (const field of type.fieldsArray) {
      if (field instanceof protobuf.MapField) {
        // A map is a repeated field of a nested "<Name>Entry" message with key = 1 and value = 2.
        const entryName = `${field.name.replace(/(?:^|_)([a-z])/g, (_m, c: string) => c.toUpperCase())}Entry`;
        const value = this.#field(type, field, 'value', 2, LABEL_OPTIONAL);
        message.nestedType.push(
          create(DescriptorProtoSchema, {
            name: entryName,
            field: [
              create(FieldDescriptorProtoSchema, {
                name: 'key',
                number: 1,
                label: LABEL_OPTIONAL,
                type: SCALARS[field.keyType],
              }),
              value,
            ],
            options: create(MessageOptionsSchema, { mapEntry: true }),
          }),
        );
        message.field.push(
          create(FieldDescriptorProtoSchema, {
            name: field.name,
            number: field.id,
            label: LABEL_REPEATED,
            type: TYPE_MESSAGE,
            typeName: `${type.fullName}.${entryName}`,
          }),
        );
        continue;
      }
      const label = field.repeated ? LABEL_REPEATED : field.required ? LABEL_REQUIRED : LABEL_OPTIONAL;
      const proto = this.#field(type, field, field.name, field.id, label);
      if (field.partOf) proto.oneofIndex = type.oneofsArray.indexOf(field.partOf);
      if (field.options?.proto3_optional) proto.proto3Optional = true;
      if (typeof field.options?.json_name === 'string') proto.jsonName = field.options.json_name;
      if (typeof field.options?.packed === 'boolean') {
        proto.options = create(FieldOptionsSchema, { packed: field.options.packed });
      }
      message.field.push(proto);
    }
    for (const oneof of type.oneofsArray) {
      message.oneofDecl.push(create(OneofDescriptorProtoSchema, { name: oneof.name }));
    }
    for (const nested of type.nestedArray) {
      if (nested instanceof protobuf.Type) message.nestedType.push(this.#message(nested));
      else if (nested instanceof protobuf.Enum) message.enumType.push(enumProto(nested));
    }
    return message;
  }

  #field(
    owner: ProtobufJs.Type,
    field: ProtobufJs.FieldBase,
    name: string,
    number: number,
    label: number,
  ): FieldDescriptorProto {
    const resolved = field.resolvedType;
    if (resolved) this.#uses(owner, resolved);
    // proto2 groups are messages that protobufjs marks as `group`; they are encoded delimited.
    const isGroup = (resolved as unknown as { group?: boolean } | null)?.group === true;
    const type =
      resolved instanceof protobuf.Enum
        ? TYPE_ENUM
        : resolved
          ? isGroup
            ? TYPE_GROUP
            : TYPE_MESSAGE
          : SCALARS[field.type];
    if (type === undefined)
      throw new ConfigError(`${owner.fullName}.${field.name}: unknown type ${field.type}`);
    return create(FieldDescriptorProtoSchema, {
      name,
      number,
      label,
      type,
      ...(resolved && { typeName: resolved.fullName }),
    });
  }

  #service(service: ProtobufJs.Service): ServiceDescriptorProto {
    return create(ServiceDescriptorProtoSchema, {
      name: service.name,
      method: service.methodsArray.map((method) => {
        this.#uses(service, method.resolvedRequestType!);
        this.#uses(service, method.resolvedResponseType!);
        return create(MethodDescriptorProtoSchema, {
          name: method.name,
          inputType: method.resolvedRequestType!.fullName,
          outputType: method.resolvedResponseType!.fullName,
          clientStreaming: method.requestStream === true,
          serverStreaming: method.responseStream === true,
        });
      }),
    });
  }
}

function enumProto(enumType: ProtobufJs.Enum): EnumDescriptorProto {
  return create(EnumDescriptorProtoSchema, {
    name: enumType.name,
    value: Object.entries(enumType.values).map(([name, number]) =>
      create(EnumValueDescriptorProtoSchema, { name, number }),
    ),
  });
}
