// Request messages and metadata for each call, as ghz's data and metadata providers (runner/data.go) make them:
// the call data JSON (one object, or an array sent round-robin by request number) and the metadata JSON go
// through the call template, then the data becomes the method's input message by the protobuf JSON mapping
// (field names or their lowerCamelCase JSON names; unknown fields are an error). Without template actions the
// messages are built once, up front, so a bad payload fails before the first request, as in ghz.

import type { Registry } from '@bufbuild/protobuf';
import {
  create,
  type DescMessage,
  type DescMethod,
  fromJson,
  type JsonValue,
  type Message,
} from '@bufbuild/protobuf';
import { Metadata } from '@grpc/grpc-js';
import { sortedJson } from './options.js';
import { type CallData, type CallTemplate, compileTemplate } from './template.js';

/** Call data or metadata that cannot make a request: ghz stops with the message and exits 1. */
export class DataError extends Error {}

/** Makes the input message and the metadata of each call. */
export class DataProvider {
  readonly #input: DescMessage;
  readonly #registry: Registry;
  /** One template per round-robin element (one for a single object). */
  readonly #data: CallTemplate[];
  readonly #cached: (Message | undefined)[];
  readonly #metadata: CallTemplate | undefined;
  #cachedMetadata: Metadata | undefined;

  /** `dataText` and `metadataText` as RunOptions holds them; `sample` is CallData for the up-front checks. */
  constructor(
    method: DescMethod,
    registry: Registry,
    dataText: string,
    metadataText: string,
    sample: CallData,
  ) {
    this.#input = method.input;
    this.#registry = registry;
    const text = dataText.trimStart();
    let elements = [dataText];
    if (text.startsWith('[')) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (error) {
        throw new DataError(
          `Error unmarshalling payload. Data: '${dataText}' Error: ${(error as Error).message}`,
        );
      }
      if (!Array.isArray(parsed) || parsed.length === 0) {
        throw new DataError('call data must be a JSON object or a non-empty array of objects');
      }
      elements = parsed.map((element) => sortedJson(element));
    }
    this.#data = elements.map((element) => compileTemplate(element));
    this.#cached = this.#data.map((template) =>
      template.hasActions ? undefined : this.#toMessage(template.execute(sample)),
    );
    this.#metadata = metadataText.trim() === '' ? undefined : compileTemplate(metadataText);
    if (this.#metadata && !this.#metadata.hasActions) this.#cachedMetadata = this.#toMetadata(sample);
  }

  /** The input message of the call described by `data` (round-robin over an array by request number). */
  message(data: CallData): Message {
    const index = data.RequestNumber % this.#data.length;
    return this.#cached[index] ?? this.#toMessage(this.#data[index]!.execute(data));
  }

  /** The call's metadata (ghz lowercases keys; keys ending in -bin hold base64 that is sent decoded). */
  metadata(data: CallData): Metadata {
    if (this.#cachedMetadata) return this.#cachedMetadata.clone();
    return this.#metadata ? this.#toMetadata(data) : new Metadata();
  }

  #toMessage(json: string): Message {
    try {
      const value = JSON.parse(json) as JsonValue;
      // ghz sends an empty message when no data is given (JSON null).
      if (value === null) return create(this.#input);
      return fromJson(this.#input, value, { registry: this.#registry });
    } catch (error) {
      throw new DataError(
        `Error creating message from data. Data: '${json}' Error: ${(error as Error).message}`,
      );
    }
  }

  #toMetadata(data: CallData): Metadata {
    const text = this.#metadata!.execute(data);
    let map: unknown;
    try {
      map = JSON.parse(text);
    } catch (error) {
      throw new DataError(`metadata '${text}': ${(error as Error).message}`);
    }
    if (map === null) return new Metadata();
    if (
      typeof map !== 'object' ||
      Array.isArray(map) ||
      !Object.values(map).every((v) => typeof v === 'string')
    ) {
      throw new DataError(`metadata '${text}': must be a JSON object of strings`);
    }
    const metadata = new Metadata();
    try {
      for (const [key, value] of Object.entries(map as Record<string, string>)) {
        const name = key.toLowerCase();
        if (name.endsWith('-bin')) metadata.add(name, Buffer.from(value, 'base64'));
        else metadata.add(name, value);
      }
    } catch (error) {
      throw new DataError(`metadata '${text}': ${(error as Error).message}`);
    }
    return metadata;
  }
}
