// The method a run calls, looked up by ghz's rules (protodesc.getMethodDesc): the call is
// "package.Service.Method" or "package.Service/Method" (a leading "." allowed), and the messages ghz prints
// when the service or method is missing.
import type { DescMethod, FileRegistry } from '@bufbuild/protobuf';
import { ConfigError } from './config.js';

/** Splits `call` into the service's full name and the method name. */
export function parseCall(call: string): { service: string; method: string } {
  const name = call.startsWith('.') ? call.slice(1) : call;
  if (name === '') throw new ConfigError('no method name specified');
  const slashes = name.split('/').length - 1;
  if (slashes === 1) {
    const [service, method] = name.split('/') as [string, string];
    return { service, method };
  }
  const dot = name.lastIndexOf('.');
  if (slashes > 1 || dot < 0) {
    throw new ConfigError(`method name must be package.Service.Method or package.Service/Method: "${name}"`);
  }
  return { service: name.slice(0, dot), method: name.slice(dot + 1) };
}

/** The method `call` names in `registry`; throws ConfigError with ghz's messages. */
export function findMethod(call: string, registry: FileRegistry): DescMethod {
  const { service, method } = parseCall(call);
  const descriptor = registry.getService(service);
  if (descriptor === undefined) throw new ConfigError(`cannot find service "${service}"`);
  const found = descriptor.methods.find((m) => m.name === method);
  if (found === undefined) {
    throw new ConfigError(`service "${service}" does not include a method named "${method}"`);
  }
  return found;
}
