// MaasClient: one @grpc/grpc-js channel to a maas endpoint (the gateway, or one service directly) with a wrapper
// per service. Every RPC of maas.generative.v1, maas.discriminative.v1 and maas.gateway.v1 has a method of the
// same (camelCase) name. Requests are the generated types, given as DeepPartial objects (what
// `Message.fromPartial` takes: 64-bit fields as number, string or bigint), so a field that a server version adds
// is usable as soon as the code is regenerated, without a change here.
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import {
  CallOptions as GrpcCallOptions,
  ChannelCredentials,
  ChannelOptions,
  Client,
  ClientDuplexStream,
  ClientReadableStream,
  ClientWritableStream,
  credentials,
  Metadata,
  ServiceError,
  status,
} from "@grpc/grpc-js";

import {
  DeleteModelRequest,
  DeleteModelResponse,
  DeepPartial,
  ListModelsRequest,
  ListModelsResponse,
} from "./gen/maas/common/v1/common";
import * as disc from "./gen/maas/discriminative/v1/discriminative";
import * as gw from "./gen/maas/gateway/v1/gateway";
import * as gen from "./gen/maas/generative/v1/generative";
import * as health from "./gen/grpc/health/v1/health";
import { MaasError, toMaasError } from "./errors";
import {
  ClassifyRequestInput,
  classifyRequest,
  DiscriminativeTextService,
  evaluateRequest,
  EvaluateRequestInput,
  LabeledTextInput,
  TextBatchInput,
  trainRequest,
  TrainRequestInput,
  VectorizeRequestInput,
  vectorizeRequest,
} from "./texts";

/** Deadline of unary and client-streaming calls that set none, in milliseconds. */
export const DEFAULT_TIMEOUT_MS = 30_000;
/**
 * The latest deadline a call gets (2262-01-01 UTC, in ms since 1970); a timeoutMs that ends later (Infinity included)
 * is no deadline. gRPC C++ servers that read a deadline as std::chrono::system_clock nanoseconds (context->deadline(),
 * as maas' servers did before 2026-12-05) end at 2262-04-11: a later one wraps around and fails the call at once with
 * DEADLINE_EXCEEDED (the margin covers grpc-timeout's rounding up to the hour and clock skew). grpc-js cannot send a
 * timeout beyond 99 999 999 hours at all (it throws on an async path, out of reach of the caller).
 */
const LATEST_DEADLINE_MS = Date.UTC(2262, 0, 1);
/** Largest message sent or received, as the servers' default --max_message_bytes. */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 << 20;
/**
 * Longest wait between two attempts to connect to a server that is down, in milliseconds. grpc-js's own is 120 s (first
 * wait 1 s, then x1.6 each time): after an outage of a minute calls kept failing at once with UNAVAILABLE for 6-13 s
 * after the server was back, and for minutes after a longer outage. 5 s bounds that to about 6 s (the cap plus
 * grpc-js's 20% jitter) whatever the outage, while a fleet of clients retries a recovering server at a fifth of the rate
 * of the gateway's 1 s cap (one process's few channels to its local backends).
 */
export const DEFAULT_RECONNECT_BACKOFF_MAX_MS = 5_000;
/** grpc-js's first wait between connection attempts, kept unless reconnectBackoffMaxMs is shorter. */
const INITIAL_RECONNECT_BACKOFF_MS = 1_000;

/** TLS settings: PEM contents or file paths (contents win). */
export interface TlsOptions {
  /**
   * CA certificates that sign the server's certificate (PEM; the constructor refuses ones holding no PEM certificate,
   * naming the file). Unset: the system's roots.
   */
  ca?: Buffer | string;
  caFile?: string;
  /** Client certificate chain and key (PEM) for mutual TLS. */
  cert?: Buffer | string;
  certFile?: string;
  key?: Buffer | string;
  keyFile?: string;
}

export interface ClientOptions {
  /** Connect over TLS (mutual TLS with cert + key). Unset: plaintext. */
  tls?: TlsOptions;
  /** Full control over the channel credentials (replaces `tls`). */
  credentials?: ChannelCredentials;
  /**
   * Bearer token sent as "authorization: Bearer <token>" with every call (servers started with --auth_token_file
   * require it for CreateModel, FitModel, Train and DeleteModel). Sent over plaintext too: use TLS beyond loopback.
   * Printable ASCII (space to "~"), all the header carries: the constructor throws a TypeError for another token (a
   * non-ASCII or control character), naming the character's position, never the token.
   */
  token?: string;
  /** Read the token from this file (surrounding whitespace ignored, as the servers do); not with `token`. */
  tokenFile?: string;
  /**
   * Deadline of unary and client-streaming calls without their own `timeoutMs`, in milliseconds: > 0, or 0 for none
   * (as is Infinity, or any value ending after 2262-01-01 UTC, which servers cannot hold). Default 30 s. A negative or
   * NaN value is an error.
   */
  timeoutMs?: number;
  /** Largest message sent or received. Default 64 MiB. */
  maxMessageBytes?: number;
  /**
   * Longest wait between two attempts to connect to a server that is down, in milliseconds: an integer from 1 to
   * 2^31 - 1 (the constructor throws naming it otherwise). Default 5 s (DEFAULT_RECONNECT_BACKOFF_MAX_MS; grpc-js's own
   * is 120 s), so that calls succeed again within about that long (plus 20% jitter) after the server is back; until
   * then they fail at once with UNAVAILABLE. The first wait is grpc-js's 1 s, or this when shorter. `channelOptions`
   * may still set 'grpc.max_reconnect_backoff_ms' itself.
   */
  reconnectBackoffMaxMs?: number;
  /** Further @grpc/grpc-js channel options. */
  channelOptions?: ChannelOptions;
}

/** Options of one call. */
export interface CallOptions {
  /**
   * Deadline in milliseconds from the start of the call (> 0, or 0 for none, as is Infinity or any value ending after
   * 2262-01-01 UTC, which servers cannot hold; negative or NaN: the call fails with INVALID_ARGUMENT). Unary and
   * client-streaming calls default to the client's timeoutMs; server- and bidi-streaming calls have no deadline unless
   * given one here (a stream may run long).
   */
  timeoutMs?: number;
  /** Cancels the call when aborted (the call then fails with CANCELLED). */
  signal?: AbortSignal;
  /** Extra request metadata. */
  metadata?: Metadata;
}

/** Something to stream from: an array, a generator, or an async generator (read lazily, with backpressure). */
export type Source<T> = Iterable<T> | AsyncIterable<T>;

interface MethodDefinition<Req, Resp> {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
  requestSerialize: (value: Req) => Buffer;
  responseDeserialize: (value: Buffer) => Resp;
}

function pem(value: Buffer | string | undefined, file: string | undefined, what: string): Buffer | null {
  if (value !== undefined) {
    return Buffer.isBuffer(value) ? value : Buffer.from(value);
  }
  if (file !== undefined) {
    try {
      return readFileSync(file);
    } catch (e) {
      throw new Error(`maas: reading the ${what} file ${file}: ${(e as Error).message}`);
    }
  }
  return null;
}

function channelCredentials(options: ClientOptions): ChannelCredentials {
  if (options.credentials !== undefined) {
    return options.credentials;
  }
  const tls = options.tls;
  if (tls === undefined) {
    return credentials.createInsecure();
  }
  const cert = pem(tls.cert, tls.certFile, "client certificate");
  const key = pem(tls.key, tls.keyFile, "client key");
  if ((cert === null) !== (key === null)) {
    throw new Error("maas: tls needs both a client certificate and its key (cert/certFile and key/keyFile), or neither");
  }
  return credentials.createSsl(caCertificates(tls), key, cert);
}

/**
 * The CA certificates of tls (null: the system's roots), refused at construction, naming where they came from, when
 * they hold no PEM certificate (grpc-js would take them and every call would fail the handshake with "self-signed
 * certificate in certificate chain"); Go's WithTLS refuses them too.
 */
function caCertificates(tls: TlsOptions): Buffer | null {
  const ca = pem(tls.ca, tls.caFile, "CA");
  if (ca === null) {
    return null;
  }
  const blocks = ca.toString("latin1").match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
  const parses = (block: string) => {
    try {
      new X509Certificate(block);
      return true;
    } catch {
      return false;
    }
  };
  if (!blocks.some(parses)) {
    const where = tls.ca !== undefined ? "tls.ca" : `the CA file ${tls.caFile}`;
    throw new Error(`maas: no PEM certificate in ${where} (a CA is given as PEM: -----BEGIN CERTIFICATE----- ...)`);
  }
  return ca;
}

/**
 * The @grpc/grpc-js channel options of a client: the message size limits and the reconnect backoff, then
 * options.channelOptions (which win). Throws, naming the option, for a reconnectBackoffMaxMs that is not an integer
 * from 1 to 2^31 - 1.
 */
export function clientChannelOptions(options: ClientOptions): ChannelOptions {
  const maxBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const backoffMax = options.reconnectBackoffMaxMs ?? DEFAULT_RECONNECT_BACKOFF_MAX_MS;
  if (!(Number.isInteger(backoffMax) && backoffMax >= 1 && backoffMax <= 0x7fffffff)) {
    throw new Error(
      `maas: reconnectBackoffMaxMs must be an integer number of milliseconds from 1 to 2147483647, got ${backoffMax}`);
  }
  return {
    "grpc.max_receive_message_length": maxBytes,
    "grpc.max_send_message_length": maxBytes,
    "grpc.initial_reconnect_backoff_ms": Math.min(INITIAL_RECONNECT_BACKOFF_MS, backoffMax),
    "grpc.max_reconnect_backoff_ms": backoffMax,
    ...options.channelOptions,
  };
}

function bearerToken(options: ClientOptions): string | undefined {
  if (options.token !== undefined && options.tokenFile !== undefined) {
    throw new Error("maas: give token or tokenFile, not both");
  }
  let token = options.token;
  if (options.tokenFile !== undefined) {
    try {
      token = readFileSync(options.tokenFile, "utf8");
    } catch (e) {
      throw new Error(`maas: reading the token file ${options.tokenFile}: ${(e as Error).message}`);
    }
  }
  if (token === undefined) {
    return undefined;
  }
  token = token.trim();
  if (token === "") {
    throw new Error("maas: the bearer token is empty");
  }
  const problem = headerValueProblem(token);
  if (problem !== undefined) {
    // The message never quotes the token (it would end up in logs).
    const which = options.tokenFile !== undefined ? `the bearer token in ${options.tokenFile}` : "the bearer token";
    throw new TypeError(
      `maas: ${which} cannot be sent in the authorization header: ${problem}; a token is printable ASCII (space to ~)`);
  }
  return token;
}

/**
 * Why value cannot be a gRPC (HTTP/2) header value, which carries printable ASCII only (space to "~"), or undefined
 * when it can. Names the character's position and kind, never the value.
 */
function headerValueProblem(value: string): string | undefined {
  const chars = [...value];
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i].codePointAt(0) ?? 0;
    if (c < 0x20 || c === 0x7f) {
      const code = c.toString(16).toUpperCase().padStart(4, "0");
      return `its character ${i + 1} of ${chars.length} is a control character (U+${code})`;
    }
    if (c > 0x7e) {
      return `its character ${i + 1} of ${chars.length} is not ASCII`;
    }
  }
  return undefined;
}

/** The request of a unary or server-streaming call and its serializer (to name a field it cannot send). */
interface SentRequest {
  value: unknown;
  serialize: (value: unknown) => Buffer;
}

function sent<Req, Resp>(method: MethodDefinition<Req, Resp>, request: Req): SentRequest {
  return { value: request, serialize: (v) => method.requestSerialize(v as Req) };
}

/**
 * The request serializer of one streaming call, keeping the first message it refuses: grpc-js then ends the call with
 * INTERNAL "serialization failure" without saying which message, and the error names that message's field.
 */
class Recorder<Req, Resp> {
  refused: SentRequest | undefined;

  constructor(private readonly method: MethodDefinition<Req, Resp>) {}

  readonly serialize = (value: Req): Buffer => {
    try {
      return this.method.requestSerialize(value);
    } catch (e) {
      this.refused ??= sent(this.method, value);
      throw e;
    }
  };
}

/**
 * Makes the message sent from what a wrapper was given (convert: a generated fromPartial, which turns 64-bit fields
 * into bigints). A value it cannot take (seed: 1.5 or "7x" in a 64-bit field), or a string field holding a lone
 * surrogate (loneSurrogate; not a text), is the caller's mistake: a MaasError INVALID_ARGUMENT naming the field,
 * thrown for the call to fail with.
 */
function converted<In, Req>(rpc: string, input: In, convert: (input: In) => Req): Req {
  let request: Req;
  try {
    request = convert(input);
  } catch (e) {
    const field = badField(input, (v) => convert(v as In));
    const what = describeField(field);
    const why = e instanceof Error ? e.message : String(e);
    throw new MaasError(rpc, status.INVALID_ARGUMENT, `${what} cannot be sent (${why})`);
  }
  const bad = loneSurrogate(request, "");
  if (bad !== undefined) {
    const code = bad.value.charCodeAt(bad.index).toString(16).toUpperCase();
    const shown = JSON.stringify(bad.value.length <= 60 ? bad.value : `${bad.value.slice(0, 57)}...`);
    const what = bad.key ? `field ${bad.path} has the key ${shown}` : `field ${bad.path} = ${shown}`;
    throw new MaasError(rpc, status.INVALID_ARGUMENT, `${what} cannot be sent: lone surrogate U+${code} at character ` +
      `${bad.index} is not text (a string field is sent as UTF-8, which cannot hold it)`);
  }
  return request;
}

/** A UTF-16 surrogate without its other half: UTF-8 cannot hold it (TextEncoder writes U+FFFD instead). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * The fields that hold texts to classify (ClassifyRequest / VectorizeRequest texts, LabeledText text): not checked by
 * loneSurrogate, a string text is sent as UTF-8 with a lone surrogate as U+FFFD, as texts.ts says (a Uint8Array text
 * is sent as its bytes).
 */
const TEXT_FIELDS = new Set(["texts", "text"]);

/**
 * The first string of a request message (a field, a list element, a map key or value) holding a lone surrogate, as
 * its dotted path (batch.examples[0].label, config.labels.team), the string and the surrogate's index; undefined when
 * there is none. The encoder would send U+FFFD in its place: a label would be stored as another class name.
 */
function loneSurrogate(value: unknown, path: string):
  { path: string; value: string; index: number; key: boolean } | undefined {
  if (typeof value === "string") {
    const found = LONE_SURROGATE.exec(value);
    return found === null ? undefined : { path, value, index: found.index, key: false };
  }
  if (typeof value !== "object" || value === null || value instanceof Uint8Array || value instanceof Date) {
    return undefined;
  }
  if (Array.isArray(value)) {
    // A repeated field holds one type: numbers (a matrix's values) need no look.
    if (value.length === 0 || (typeof value[0] !== "string" && typeof value[0] !== "object")) {
      return undefined;
    }
    for (let i = 0; i < value.length; i++) {
      const found = loneSurrogate(value[i], `${path}[${i}]`);
      if (found !== undefined) {
        return found;
      }
    }
    return undefined;
  }
  for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
    const at = path === "" ? key : `${path}.${key}`;
    if (LONE_SURROGATE.test(key)) { // a map's key (field names are ASCII)
      return { path, value: key, index: key.search(LONE_SURROGATE), key: true };
    }
    const isText = TEXT_FIELDS.has(key) &&
      (typeof item === "string" || item instanceof Uint8Array || Array.isArray(item));
    const found = isText ? undefined : loneSurrogate(item, at);
    if (found !== undefined) {
      return found;
    }
  }
  return undefined;
}

/** "field seed = -1" (a string value quoted: field seed = "7x"), or "a request message" when none was found. */
function describeField(field: { path: string; value: unknown } | undefined): string {
  if (field === undefined) {
    return "a request message";
  }
  const value = typeof field.value === "string" ? JSON.stringify(field.value) : String(field.value);
  return `field ${field.path} = ${value}`;
}

/** Something a call can be cancelled through (every grpc-js call object). */
interface Cancellable {
  cancel(): void;
}

/** The calls in flight of one MaasClient, so that close() can cancel them. */
class Calls {
  closed = false;
  private readonly active = new Set<Cancellable>();

  /** Tracks call until the returned function is called. */
  add(call: Cancellable): () => void {
    this.active.add(call);
    return () => {
      this.active.delete(call);
    };
  }

  /** Marks the client closed and cancels every call in flight. */
  close(): void {
    this.closed = true;
    const calls = [...this.active];
    this.active.clear();
    calls.forEach((c) => c.cancel());
  }
}

/** Request messages written between two turns of the event loop (see write()). */
const WRITES_PER_TURN = 32;

/** The calls every service wrapper makes: deadlines, metadata, cancellation, errors. */
class Caller {
  constructor(
    private readonly client: Client,
    private readonly service: string,
    private readonly token: string | undefined,
    private readonly timeoutMs: number,
    private readonly calls: Calls,
    /** The largest message the channel receives (<= 0: no limit): listings ask for pages no larger. */
    readonly maxReceiveBytes = 0,
  ) {}

  /**
   * Why a call cannot start (the client is closed, a bad timeoutMs), as the MaasError it fails with; undefined when
   * it can.
   */
  private refusal(rpc: string, opts: CallOptions): MaasError | undefined {
    if (this.calls.closed) {
      return new MaasError(rpc, status.CANCELLED, "the client is closed (MaasClient.close() was called); make a new one");
    }
    const ms = opts.timeoutMs;
    if (ms !== undefined && !(typeof ms === "number" && ms >= 0)) {
      return new MaasError(rpc, status.INVALID_ARGUMENT,
        `timeoutMs must be a number of milliseconds > 0 (0 or Infinity: no deadline), got ${String(ms)}`);
    }
    return undefined;
  }

  private error(rpc: string, err: unknown, callOptions: GrpcCallOptions, opts: CallOptions,
    request?: SentRequest): MaasError {
    const e = callError(rpc, err, callOptions, opts, this.calls.closed);
    if (e.code !== status.INTERNAL || !e.details.includes("serialization failure")) {
      return e;
    }
    // A value the wire format cannot hold (seed: -1 in a uint64 field, ...): the caller's mistake, named.
    const field = request === undefined ? undefined : badField(request.value, request.serialize);
    const what = describeField(field);
    return new MaasError(rpc, status.INVALID_ARGUMENT, `${what} cannot be sent (${e.details})`, e.metadata);
  }

  private metadata(opts: CallOptions): Metadata {
    const md = opts.metadata?.clone() ?? new Metadata();
    if (this.token !== undefined) {
      md.set("authorization", `Bearer ${this.token}`);
    }
    return md;
  }

  private options(opts: CallOptions, defaultDeadline: boolean): GrpcCallOptions {
    const ms = opts.timeoutMs ?? (defaultDeadline ? this.timeoutMs : 0);
    if (!(ms > 0)) {
      return {};
    }
    const deadline = Date.now() + ms;
    return deadline <= LATEST_DEADLINE_MS ? { deadline: new Date(deadline) } : {}; // see LATEST_DEADLINE_MS
  }

  private rpc(method: MethodDefinition<unknown, unknown>): string {
    return `${this.service}.${method.path.slice(method.path.lastIndexOf("/") + 1)}`;
  }

  /** Sends convert(input) (see converted()) and resolves with the response. */
  unary<In, Req, Resp>(method: MethodDefinition<Req, Resp>, input: In, convert: (input: In) => Req,
    opts: CallOptions = {}): Promise<Resp> {
    const rpc = this.rpc(method as MethodDefinition<unknown, unknown>);
    const refused = this.refusal(rpc, opts);
    if (refused !== undefined) {
      return Promise.reject(refused);
    }
    let request: Req;
    try {
      request = converted(rpc, input, convert);
    } catch (e) {
      return Promise.reject(e);
    }
    const callOptions = this.options(opts, true);
    return new Promise<Resp>((resolve, reject) => {
      let untrack = () => {};
      const call = this.client.makeUnaryRequest(
        method.path, method.requestSerialize, method.responseDeserialize, request, this.metadata(opts),
        callOptions, (err: ServiceError | null, response?: Resp) => {
          untrack();
          opts.signal?.removeEventListener("abort", abort);
          if (err !== null || response === undefined) {
            reject(this.error(rpc, err, callOptions, opts, sent(method, request)));
          } else {
            resolve(response);
          }
        });
      untrack = this.calls.add(call);
      const abort = () => call.cancel();
      if (opts.signal?.aborted) {
        call.cancel();
      }
      opts.signal?.addEventListener("abort", abort, { once: true });
    });
  }

  /**
   * Sends first, then every message of rest (lazily, waiting when the transport is full), each through convert (see
   * converted()), and resolves with the single response. When the server ends the call early, rest is no longer
   * read. When reading rest throws, the call is cancelled (nothing is stored) and the promise rejects with that error
   * (with a MaasError INVALID_ARGUMENT when convert refuses a message).
   */
  clientStream<In, Req, Resp>(method: MethodDefinition<Req, Resp>, first: In, rest: Source<In> | undefined,
    convert: (input: In) => Req, opts: CallOptions = {}): Promise<Resp> {
    const rpc = this.rpc(method as MethodDefinition<unknown, unknown>);
    const refused = this.refusal(rpc, opts);
    if (refused !== undefined) {
      return Promise.reject(refused);
    }
    let firstRequest: Req;
    try {
      firstRequest = converted(rpc, first, convert);
    } catch (e) {
      return Promise.reject(e);
    }
    const recorder = new Recorder(method);
    const callOptions = this.options(opts, true);
    return new Promise<Resp>((resolve, reject) => {
      let settled = false;
      let finish: () => void = () => {};
      let untrack = () => {};
      const finished = new Promise<void>((r) => (finish = r));
      const settle = (f: () => void) => {
        if (!settled) {
          settled = true;
          untrack();
          opts.signal?.removeEventListener("abort", abort);
          f();
        }
        finish();
      };
      const call: ClientWritableStream<Req> = this.client.makeClientStreamRequest(
        method.path, recorder.serialize, method.responseDeserialize, this.metadata(opts), callOptions,
        (err: ServiceError | null, response?: Resp) => {
          settle(() => (err !== null || response === undefined
            ? reject(this.error(rpc, err, callOptions, opts, recorder.refused)) : resolve(response)));
        });
      untrack = this.calls.add(call);
      call.on("error", () => {}); // the callback reports every failure
      const abort = () => call.cancel();
      if (opts.signal?.aborted) {
        call.cancel();
      }
      opts.signal?.addEventListener("abort", abort, { once: true });
      (async () => {
        const pace = new Pacer();
        await write(call, firstRequest, finished, pace);
        if (rest !== undefined) {
          for await (const msg of rest) {
            if (settled) {
              return;
            }
            await write(call, converted(rpc, msg, convert), finished, pace);
          }
        }
        if (!settled) {
          call.end();
        }
      })().catch((e: unknown) => {
        settle(() => reject(e));
        call.cancel();
      });
    });
  }

  /**
   * Sends convert(input) (see converted()) and yields the messages of the server stream; leaving the loop early
   * (break, throw) cancels the call.
   */
  async *serverStream<In, Req, Resp>(method: MethodDefinition<Req, Resp>, input: In, convert: (input: In) => Req,
    opts: CallOptions = {}): AsyncGenerator<Resp, void, undefined> {
    const rpc = this.rpc(method as MethodDefinition<unknown, unknown>);
    const refused = this.refusal(rpc, opts);
    if (refused !== undefined) {
      throw refused;
    }
    const request = converted(rpc, input, convert);
    const callOptions = this.options(opts, false);
    const call: ClientReadableStream<Resp> = this.client.makeServerStreamRequest(
      method.path, method.requestSerialize, method.responseDeserialize, request, this.metadata(opts), callOptions);
    const what = sent(method, request);
    yield* this.receive(rpc, call, callOptions, opts, () => undefined, () => what);
  }

  /**
   * Sends every request of requests through convert (see converted(); lazily, with backpressure) while yielding the
   * responses; leaving the loop early cancels the call. When reading requests throws, the call is cancelled and that
   * error is thrown (a MaasError INVALID_ARGUMENT when convert refuses a request).
   */
  async *bidiStream<In, Req, Resp>(method: MethodDefinition<Req, Resp>, requests: Source<In>,
    convert: (input: In) => Req, opts: CallOptions = {}): AsyncGenerator<Resp, void, undefined> {
    const rpc = this.rpc(method as MethodDefinition<unknown, unknown>);
    const refused = this.refusal(rpc, opts);
    if (refused !== undefined) {
      throw refused;
    }
    const recorder = new Recorder(method);
    const callOptions = this.options(opts, false);
    const call: ClientDuplexStream<Req, Resp> = this.client.makeBidiStreamRequest(
      method.path, recorder.serialize, method.responseDeserialize, this.metadata(opts), callOptions);
    let stopped = false;
    let sendError: { error: unknown } | undefined;
    let finish: () => void = () => {};
    const finished = new Promise<void>((r) => (finish = r));
    call.on("close", () => finish());
    call.on("status", () => finish());
    (async () => {
      const pace = new Pacer();
      for await (const msg of requests) {
        if (stopped) {
          return;
        }
        await write(call, converted(rpc, msg, convert), finished, pace);
      }
      if (!stopped) {
        call.end();
      }
    })().catch((e: unknown) => {
      sendError = { error: e };
      call.cancel();
    });
    try {
      yield* this.receive(rpc, call, callOptions, opts, () => sendError, () => recorder.refused);
    } finally {
      stopped = true;
      finish();
    }
  }

  private async *receive<Resp>(rpc: string, call: ClientReadableStream<Resp>, callOptions: GrpcCallOptions,
    opts: CallOptions, cause: () => { error: unknown } | undefined,
    request: () => SentRequest | undefined): AsyncGenerator<Resp, void, undefined> {
    // Errors are read from the iterator; this listener only keeps a late one (after cancel) from being unhandled.
    call.on("error", () => {});
    const untrack = this.calls.add(call);
    const abort = () => call.cancel();
    if (opts.signal?.aborted) {
      call.cancel();
    }
    opts.signal?.addEventListener("abort", abort, { once: true });
    try {
      for await (const msg of call) {
        yield msg as Resp;
      }
    } catch (e) {
      const c = cause();
      throw c !== undefined ? c.error : this.error(rpc, e, callOptions, opts, request());
    } finally {
      untrack();
      opts.signal?.removeEventListener("abort", abort);
      call.cancel(); // no-op when the call has ended; ends it when the consumer left the loop early
    }
  }
}

/**
 * The error of a call: when the call's deadline has passed, or its signal aborted, and the transport reports a broken
 * call (INTERNAL, UNAVAILABLE, UNKNOWN), it failed because of the deadline / cancellation, so that is the code (the
 * transport's report stays in the message). Statuses that a server sent are kept as they are. A call that close()
 * cancelled says so.
 */
function callError(rpc: string, err: unknown, callOptions: GrpcCallOptions, opts: CallOptions,
  closed: boolean): MaasError {
  const e = toMaasError(rpc, err);
  if (closed && e.code === status.CANCELLED) {
    return new MaasError(rpc, status.CANCELLED, `cancelled: the client was closed (${e.details})`, e.metadata);
  }
  if (e.code !== status.INTERNAL && e.code !== status.UNAVAILABLE && e.code !== status.UNKNOWN) {
    return e;
  }
  const deadline = callOptions.deadline;
  const expired = deadline instanceof Date && Date.now() >= deadline.getTime();
  if (!expired && opts.signal?.aborted !== true) {
    return e;
  }
  const [code, what] = expired ? [status.DEADLINE_EXCEEDED, "deadline exceeded"] : [status.CANCELLED, "cancelled"];
  return new MaasError(rpc, code, `${what} (the transport reported ${e.codeName}: ${e.details})`, e.metadata);
}

/** The zero value of a field of the same kind (undefined for a message field), for badField. */
function zeroLike(value: unknown): unknown {
  switch (typeof value) {
    case "bigint":
      return 0n;
    case "number":
      return 0;
    case "string":
      return "";
    case "boolean":
      return false;
    default:
      return Array.isArray(value) ? [] : value instanceof Uint8Array ? new Uint8Array() : undefined;
  }
}

function serializes(serialize: (value: unknown) => unknown, value: unknown): boolean {
  try {
    serialize(value);
    return true;
  } catch {
    return false;
  }
}

/**
 * The field of a request that serialize refuses (e.g. seed -1 in a uint64 field; or a fromPartial, seed 1.5) as a
 * dotted path and its value: each field is replaced in turn by its zero value until serialization succeeds, then
 * the search goes on inside it.
 */
function badField(request: unknown, serialize: (value: unknown) => unknown,
  prefix = ""): { path: string; value: unknown } | undefined {
  if (typeof request !== "object" || request === null || request instanceof Uint8Array || request instanceof Date) {
    return undefined;
  }
  const fields = request as Record<string, unknown>;
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined || !serializes(serialize, { ...fields, [key]: zeroLike(value) })) {
      continue;
    }
    const path = prefix + key;
    const withValue = (v: unknown) => serialize({ ...fields, [key]: v });
    if (Array.isArray(value)) {
      const withItem = (i: number, v: unknown) => {
        const items = [...value];
        items[i] = v;
        return withValue(items);
      };
      for (let i = 0; i < value.length; i++) {
        if (serializes((v) => withItem(i, v), zeroLike(value[i]))) {
          const inner = badField(value[i], (v) => withItem(i, v), `${path}[${i}].`);
          return inner ?? { path: `${path}[${i}]`, value: value[i] };
        }
      }
    }
    return badField(value, withValue, `${path}.`) ?? { path, value };
  }
  return undefined;
}

/**
 * Counts the messages a request pump writes. A source that never waits (an array, a generator) and a transport that
 * takes every message would otherwise run the pump on microtasks only, starving timers and socket reads (the
 * responses of a bidi stream) until flow control pushes back; every WRITES_PER_TURN writes the pump lets one turn of
 * the event loop run.
 */
class Pacer {
  private writes = 0;

  /** True when this write should be followed by a turn of the event loop. */
  due(): boolean {
    this.writes = (this.writes + 1) % WRITES_PER_TURN;
    return this.writes === 0;
  }
}

/**
 * Writes one message, waiting for 'drain' when the stream's buffer is full (or until the call is over), and for a turn
 * of the event loop when the pacer says so.
 */
function write<Req>(call: ClientWritableStream<Req>, msg: Req, finished: Promise<void>, pace: Pacer): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    try {
      if (call.write(msg)) {
        if (pace.due()) {
          setImmediate(resolve);
        } else {
          resolve();
        }
        return;
      }
    } catch (e) {
      reject(e);
      return;
    }
    call.once("drain", resolve);
    void finished.then(() => {
      call.removeListener("drain", resolve);
      resolve();
    });
  });
}

/** The largest ListModels pageSize the servers take (a larger one is taken as this); the pages of listModelsPages. */
export const MAX_PAGE_SIZE = 1000;

type ListModels = (request: DeepPartial<ListModelsRequest>, opts: CallOptions) => Promise<ListModelsResponse>;

/**
 * request for one ListModels call: a page (pageSize > 0) without maxPageBytes asks for pages no larger than the
 * client receives (maxReceiveBytes), as listModelsPages does.
 */
function withPageBytes(request: DeepPartial<ListModelsRequest>,
  maxReceiveBytes: number): DeepPartial<ListModelsRequest> {
  const paged = request.pageSize !== undefined && request.pageSize > 0;
  const unset = !request.maxPageBytes; // also a plain 0 from an untyped caller
  if (!paged || !unset || !Number.isSafeInteger(maxReceiveBytes) || maxReceiveBytes <= 0) return request;
  return { ...request, maxPageBytes: BigInt(maxReceiveBytes) };
}

/**
 * The pages of the listing of request, following each nextPageToken (see listModelsPages): request with pageSize
 * MAX_PAGE_SIZE when it has none (0) and maxPageBytes maxReceiveBytes (the client's receive limit) when it has none
 * (0), starting at its pageToken. opts.timeoutMs bounds the whole listing (each page gets what remains of it);
 * without one each page gets the client's default deadline.
 */
async function* listPages(rpc: string, list: ListModels, request: DeepPartial<ListModelsRequest>,
  opts: CallOptions, maxReceiveBytes: number): AsyncGenerator<ListModelsResponse, void, undefined> {
  const ms = opts.timeoutMs;
  const deadline = typeof ms === "number" && ms > 0 && Number.isFinite(ms) ? Date.now() + ms : undefined;
  const pageSize = request.pageSize === undefined || request.pageSize === 0 ? MAX_PAGE_SIZE : request.pageSize;
  const ownLimit = Number.isSafeInteger(maxReceiveBytes) && maxReceiveBytes > 0 ? BigInt(maxReceiveBytes) : 0n;
  // !: also a plain 0 from an untyped caller.
  const maxPageBytes = !request.maxPageBytes ? ownLimit : request.maxPageBytes;
  let pageToken = request.pageToken ?? "";
  const sent = new Set([pageToken]); // every token sent: one answered again would start a loop
  for (;;) {
    // At least 1 ms: 0 would mean no deadline; a page started past the deadline fails with DEADLINE_EXCEEDED.
    const pageOpts = deadline === undefined ? opts : { ...opts, timeoutMs: Math.max(1, deadline - Date.now()) };
    const page = await list({ ...request, pageSize, pageToken, maxPageBytes }, pageOpts);
    const next = page.nextPageToken;
    if (next !== "" && sent.has(next)) {
      // The same pages would come back forever: a server bug, reported rather than looped on.
      throw new MaasError(rpc, status.INTERNAL,
        "the server answered a page_token it was sent before as next_page_token: the listing does not advance");
    }
    sent.add(next);
    yield page;
    if (next === "") {
      return;
    }
    pageToken = next;
  }
}

/**
 * The pages of a listing as one response: models and unreadableVersions concatenated (the listing's order),
 * missingBackends without repeats (in the order first seen), nextPageToken empty.
 */
async function listAll(pages: AsyncIterable<ListModelsResponse>): Promise<ListModelsResponse> {
  const all = ListModelsResponse.fromPartial({});
  for await (const page of pages) {
    for (const m of page.models) {
      all.models.push(m);
    }
    for (const u of page.unreadableVersions) {
      all.unreadableVersions.push(u);
    }
    for (const b of page.missingBackends) {
      if (!all.missingBackends.includes(b)) {
        all.missingBackends.push(b);
      }
    }
  }
  return all;
}

/** maas.generative.v1.GenerativeService: one method per RPC. */
export class GenerativeClient {
  /** @internal */
  constructor(private readonly caller: Caller) {}

  /** Stores a model given explicit parameters (version 1, or the next version of an existing name). */
  createModel(request: DeepPartial<gen.CreateModelRequest>, opts?: CallOptions): Promise<gen.CreateModelResponse> {
    return this.caller.unary(gen.GenerativeServiceService.createModel, request,
      (r) => gen.CreateModelRequest.fromPartial(r), opts);
  }

  /** Fits a model to streamed rows: config first, then each chunk of rows (see matrix() and splitRows()). */
  fitModel(config: DeepPartial<gen.FitConfig>, chunks: Source<DeepPartial<Matrix>>,
    opts?: CallOptions): Promise<gen.FitModelResponse> {
    return this.caller.clientStream(gen.GenerativeServiceService.fitModel, { config },
      mapSource(chunks, (rows): DeepPartial<gen.FitModelRequest> => ({ rows })),
      (r) => gen.FitModelRequest.fromPartial(r), opts);
  }

  /**
   * Streams the samples of a request in batches:
   *
   * ```ts
   * for await (const batch of client.generative.sample({ model: { name: "box" }, numSamples: 1000, seed: 7 })) {
   *   const rows = toRows(batch.x!);
   * }
   * ```
   */
  sample(request: DeepPartial<gen.SampleRequest>, opts?: CallOptions): AsyncGenerator<gen.SampleBatch, void, undefined> {
    return this.caller.serverStream(gen.GenerativeServiceService.sample, request,
      (r) => gen.SampleRequest.fromPartial(r), opts);
  }

  /** Estimates log p(x) per row with the request's estimator. */
  estimateLogLikelihood(request: DeepPartial<gen.EstimateLogLikelihoodRequest>,
    opts?: CallOptions): Promise<gen.EstimateLogLikelihoodResponse> {
    return this.caller.unary(gen.GenerativeServiceService.estimateLogLikelihood, request,
      (r) => gen.EstimateLogLikelihoodRequest.fromPartial(r), opts);
  }

  /** Streams running estimates until the target standard error, the sample cap or the deadline. */
  streamEstimate(request: DeepPartial<gen.StreamEstimateRequest>,
    opts?: CallOptions): AsyncGenerator<gen.StreamEstimateResponse, void, undefined> {
    return this.caller.serverStream(gen.GenerativeServiceService.streamEstimate, request,
      (r) => gen.StreamEstimateRequest.fromPartial(r), opts);
  }

  /** Returns a model's info and full parameters. */
  getModel(request: DeepPartial<gen.GetModelRequest>, opts?: CallOptions): Promise<gen.GetModelResponse> {
    return this.caller.unary(gen.GenerativeServiceService.getModel, request,
      (r) => gen.GetModelRequest.fromPartial(r), opts);
  }

  /** Lists the generative models (latest versions unless allVersions). */
  listModels(request: DeepPartial<ListModelsRequest> = {}, opts?: CallOptions): Promise<ListModelsResponse> {
    return this.caller.unary(gen.GenerativeServiceService.listModels,
      withPageBytes(request, this.caller.maxReceiveBytes),
      (r) => ListModelsRequest.fromPartial(r), opts);
  }

  /** The pages of a generative listing, as GatewayClient.listModelsPages. */
  listModelsPages(request: DeepPartial<ListModelsRequest> = {},
    opts: CallOptions = {}): AsyncGenerator<ListModelsResponse, void, undefined> {
    return listPages("GenerativeService.ListModels", (r, o) => this.listModels(r, o), request, opts,
      this.caller.maxReceiveBytes);
  }

  /** Every generative model the request covers, in as many pages as needed, as GatewayClient.listAllModels. */
  listAllModels(request: DeepPartial<ListModelsRequest> = {}, opts: CallOptions = {}): Promise<ListModelsResponse> {
    return listAll(this.listModelsPages(request, opts));
  }

  /** Deletes one version (version >= 1) or every version (0) of a model. */
  deleteModel(request: DeepPartial<DeleteModelRequest>, opts?: CallOptions): Promise<DeleteModelResponse> {
    return this.caller.unary(gen.GenerativeServiceService.deleteModel, request,
      (r) => DeleteModelRequest.fromPartial(r), opts);
  }
}

/** maas.discriminative.v1.DiscriminativeService: one method per RPC. */
export class DiscriminativeClient {
  /** @internal */
  constructor(private readonly caller: Caller) {}

  /** Stores a pipeline given its fitted state (how a scikit-learn model is imported). */
  createModel(request: DeepPartial<disc.CreateModelRequest>, opts?: CallOptions): Promise<disc.CreateModelResponse> {
    return this.caller.unary(disc.DiscriminativeServiceService.createModel, request,
      (r) => disc.CreateModelRequest.fromPartial(r), opts);
  }

  /**
   * Trains a pipeline: config first, then each batch of labelled texts, read lazily (see batches()). Each text is a
   * string or bytes (a Uint8Array or Buffer, sent as they are: bytes that are not UTF-8 meet the config's
   * decode_error).
   */
  train(config: DeepPartial<disc.TrainConfig>, batches: Source<TextBatchInput>,
    opts?: CallOptions): Promise<disc.TrainResponse> {
    return this.caller.clientStream(DiscriminativeTextService.train, { config },
      mapSource(batches, (batch): TrainRequestInput => ({ batch })), trainRequest, opts);
  }

  /**
   * Classifies texts (strings or bytes, as train takes them: the model's decode_error applies to bytes), or the texts
   * of packedTexts (see packTexts).
   */
  classify(request: ClassifyRequestInput, opts?: CallOptions): Promise<disc.ClassifyResponse> {
    return this.caller.unary(DiscriminativeTextService.classify, request, classifyRequest, opts);
  }

  /** Sends each request on one bidi stream and yields the matching responses, in order, as they arrive. */
  classifyStream(requests: Source<ClassifyRequestInput>,
    opts?: CallOptions): AsyncGenerator<disc.ClassifyResponse, void, undefined> {
    return this.caller.bidiStream(DiscriminativeTextService.classifyStream, requests, classifyRequest, opts);
  }

  /** Returns the sparse feature rows of texts (strings or bytes), or of packedTexts (see packTexts). */
  vectorize(request: VectorizeRequestInput, opts?: CallOptions): Promise<disc.VectorizeResponse> {
    return this.caller.unary(DiscriminativeTextService.vectorize, request, vectorizeRequest, opts);
  }

  /** Evaluates a model on streamed labelled texts (strings or bytes): config first, then each batch. */
  evaluate(config: DeepPartial<disc.EvaluateConfig>, batches: Source<TextBatchInput>,
    opts?: CallOptions): Promise<disc.EvaluateResponse> {
    return this.caller.clientStream(DiscriminativeTextService.evaluate, { config },
      mapSource(batches, (batch): EvaluateRequestInput => ({ batch })), evaluateRequest, opts);
  }

  /** Returns a model's info and full pipeline state. */
  getModel(request: DeepPartial<disc.GetModelRequest>, opts?: CallOptions): Promise<disc.GetModelResponse> {
    return this.caller.unary(disc.DiscriminativeServiceService.getModel, request,
      (r) => disc.GetModelRequest.fromPartial(r), opts);
  }

  /** Lists the discriminative models. */
  listModels(request: DeepPartial<ListModelsRequest> = {}, opts?: CallOptions): Promise<ListModelsResponse> {
    return this.caller.unary(disc.DiscriminativeServiceService.listModels,
      withPageBytes(request, this.caller.maxReceiveBytes),
      (r) => ListModelsRequest.fromPartial(r), opts);
  }

  /** The pages of a discriminative listing, as GatewayClient.listModelsPages. */
  listModelsPages(request: DeepPartial<ListModelsRequest> = {},
    opts: CallOptions = {}): AsyncGenerator<ListModelsResponse, void, undefined> {
    return listPages("DiscriminativeService.ListModels", (r, o) => this.listModels(r, o), request, opts,
      this.caller.maxReceiveBytes);
  }

  /** Every discriminative model the request covers, in as many pages as needed, as GatewayClient.listAllModels. */
  listAllModels(request: DeepPartial<ListModelsRequest> = {}, opts: CallOptions = {}): Promise<ListModelsResponse> {
    return listAll(this.listModelsPages(request, opts));
  }

  /** Deletes one version (version >= 1) or every version (0) of a model. */
  deleteModel(request: DeepPartial<DeleteModelRequest>, opts?: CallOptions): Promise<DeleteModelResponse> {
    return this.caller.unary(disc.DiscriminativeServiceService.deleteModel, request,
      (r) => DeleteModelRequest.fromPartial(r), opts);
  }
}

/** maas.gateway.v1.Gateway, the gateway's own service: one method per RPC. */
export class GatewayClient {
  /** @internal */
  constructor(private readonly caller: Caller) {}

  /** Lists the models of both backends; each ModelInfo carries its ModelType. */
  listModels(request: DeepPartial<ListModelsRequest> = {}, opts?: CallOptions): Promise<ListModelsResponse> {
    return this.caller.unary(gw.GatewayService.listModels, withPageBytes(request, this.caller.maxReceiveBytes),
      (r) => ListModelsRequest.fromPartial(r), opts);
  }

  /**
   * The pages of the listing of request, following each nextPageToken until one is empty (pageSize 0 or unset:
   * MAX_PAGE_SIZE; pageToken: start there); leaving the loop stops the listing. A page can hold fewer than pageSize
   * entries (each fits in the servers' largest message). opts.timeoutMs bounds the whole listing; without it each
   * page gets the client's default deadline. Servers older than paging answer everything in one page.
   *
   * ```ts
   * for await (const page of client.gateway.listModelsPages({ namePrefix: "news-" })) {
   *   for (const m of page.models) { ... }
   * }
   * ```
   */
  listModelsPages(request: DeepPartial<ListModelsRequest> = {},
    opts: CallOptions = {}): AsyncGenerator<ListModelsResponse, void, undefined> {
    return listPages("Gateway.ListModels", (r, o) => this.listModels(r, o), request, opts,
      this.caller.maxReceiveBytes);
  }

  /**
   * The complete listing of request, whatever the size of the stores: every page of listModelsPages as one
   * response (models and unreadableVersions concatenated, missingBackends without repeats: non-empty means a backend
   * did not answer and its models are missing). A failed page rejects the whole (listModelsPages keeps the pages read).
   * listModels is the single call (refused RESOURCE_EXHAUSTED, with pageSize 0, when the listing exceeds a message).
   */
  listAllModels(request: DeepPartial<ListModelsRequest> = {}, opts: CallOptions = {}): Promise<ListModelsResponse> {
    return listAll(this.listModelsPages(request, opts));
  }

  /** Each route, its target and its health. */
  getBackends(request: DeepPartial<gw.GetBackendsRequest> = {}, opts?: CallOptions): Promise<gw.GetBackendsResponse> {
    return this.caller.unary(gw.GatewayService.getBackends, request, (r) => gw.GetBackendsRequest.fromPartial(r), opts);
  }
}

/**
 * A client of a maas endpoint: `new MaasClient("127.0.0.1:50051")`. The connection is made by the first call
 * (or waitForReady); close() it when done.
 */
export class MaasClient {
  readonly generative: GenerativeClient;
  readonly discriminative: DiscriminativeClient;
  readonly gateway: GatewayClient;
  private readonly client: Client;
  private readonly calls = new Calls();

  constructor(target: string, options: ClientOptions = {}) {
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!(typeof timeoutMs === "number" && timeoutMs >= 0)) {
      throw new Error(`maas: timeoutMs must be >= 0, got ${timeoutMs}`);
    }
    const channelOptions = clientChannelOptions(options);
    this.client = new Client(target, channelCredentials(options), channelOptions);
    const token = bearerToken(options);
    // What the channel receives (channelOptions may set it too): the listings ask for pages no larger.
    const received = channelOptions["grpc.max_receive_message_length"];
    const maxReceive = typeof received === "number" ? received : 0;
    this.generative = new GenerativeClient(
      new Caller(this.client, "GenerativeService", token, timeoutMs, this.calls, maxReceive));
    this.discriminative = new DiscriminativeClient(
      new Caller(this.client, "DiscriminativeService", token, timeoutMs, this.calls, maxReceive));
    this.gateway = new GatewayClient(new Caller(this.client, "Gateway", token, timeoutMs, this.calls, maxReceive));
  }

  /**
   * Polls grpc.health.v1 until `service` ("" = the whole server, or e.g. "maas.generative.v1.GenerativeService")
   * answers SERVING; rejects after timeoutMs with the last answer.
   */
  async waitServing(service = "", timeoutMs: number = DEFAULT_TIMEOUT_MS): Promise<void> {
    const caller = new Caller(this.client, "Health", undefined, 1_000, this.calls);
    const deadline = Date.now() + timeoutMs;
    let last = "no answer";
    for (;;) {
      if (this.calls.closed) {
        throw new MaasError("Health.Check", status.CANCELLED, "the client is closed (MaasClient.close() was called)");
      }
      try {
        const resp = await caller.unary(health.HealthService.check, { service },
          (r) => health.HealthCheckRequest.fromPartial(r),
          { timeoutMs: Math.max(100, Math.min(1_000, deadline - Date.now())) });
        if (resp.status === health.HealthCheckResponse_ServingStatus.SERVING) {
          return;
        }
        last = health.healthCheckResponse_ServingStatusToJSON(resp.status);
      } catch (e) {
        last = (e as Error).message;
      }
      if (Date.now() + 100 >= deadline) {
        throw new Error(`maas: health of "${service}" not SERVING within ${timeoutMs} ms (last: ${last})`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Resolves once the channel is connected; rejects after timeoutMs. */
  waitForReady(timeoutMs: number = DEFAULT_TIMEOUT_MS): Promise<void> {
    if (this.calls.closed) {
      return Promise.reject(new MaasError("waitForReady", status.CANCELLED,
        "the client is closed (MaasClient.close() was called)"));
    }
    return new Promise((resolve, reject) => {
      this.client.waitForReady(Date.now() + timeoutMs, (err?: Error) => (err ? reject(err) : resolve()));
    });
  }

  /**
   * Closes the channel: calls in flight are cancelled (they fail with a CANCELLED MaasError saying that the client
   * was closed), and so are calls made afterwards. Calling it again does nothing.
   */
  close(): void {
    this.calls.close();
    this.client.close();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Values

type Matrix = import("./gen/maas/common/v1/common").Matrix;

/** Packs rows (all of one length) into a row-major Matrix. */
export function matrix(rows: ReadonlyArray<ReadonlyArray<number>>): Matrix {
  const cols = rows.length > 0 ? rows[0].length : 0;
  const values: number[] = [];
  rows.forEach((row, i) => {
    if (row.length !== cols) {
      throw new Error(`maas: matrix: row ${i} has ${row.length} values, row 0 has ${cols}`);
    }
    // One push per value: push(...row) passes the row as arguments, which overflow the stack beyond ~100k columns.
    for (const v of row) {
      values.push(v);
    }
  });
  return { rows: rows.length, cols, values };
}

/** Unpacks a row-major Matrix into rows. */
export function toRows(m: Matrix): number[][] {
  if (m.values.length !== m.rows * m.cols) {
    throw new Error(`maas: toRows: a ${m.rows}x${m.cols} matrix carries ${m.values.length} values`);
  }
  const out: number[][] = [];
  for (let r = 0; r < m.rows; r++) {
    out.push(m.values.slice(r * m.cols, (r + 1) * m.cols));
  }
  return out;
}

/** A chunk size: at least 1 (as the Go client's), a RangeError when it is not a number (NaN would drop all data). */
function chunkSize(n: number, what: string): number {
  if (typeof n !== "number" || Number.isNaN(n)) {
    throw new RangeError(`maas: ${what} must be a number >= 1, got ${String(n)}`);
  }
  return Math.max(1, Math.floor(n));
}

/** Yields m in chunks of at most rowsPerChunk rows (for fitModel; values below 1 mean 1, NaN is a RangeError). */
export function splitRows(m: Matrix, rowsPerChunk: number): Generator<Matrix, void, undefined> {
  const step = chunkSize(rowsPerChunk, "splitRows: rowsPerChunk");
  return (function* () {
    for (let start = 0; start < m.rows; start += step) {
      const n = Math.min(step, m.rows - start);
      yield { rows: n, cols: m.cols, values: m.values.slice(start * m.cols, (start + n) * m.cols) };
    }
  })();
}

/**
 * Yields examples in TextBatches of at most perBatch examples (for train and evaluate; values below 1 mean 1, NaN is
 * a RangeError).
 */
export function batches<E extends LabeledTextInput>(examples: ReadonlyArray<E>,
  perBatch: number): Generator<{ examples: E[] }, void, undefined> {
  const step = chunkSize(perBatch, "batches: perBatch");
  return (function* () {
    for (let start = 0; start < examples.length; start += step) {
      yield { examples: examples.slice(start, start + step) };
    }
  })();
}

async function* mapSource<A, B>(source: Source<A>, f: (a: A) => B): AsyncGenerator<B, void, undefined> {
  for await (const a of source) {
    yield f(a);
  }
}
