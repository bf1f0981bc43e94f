// Typed errors: every failed call rejects (or throws from its iterator) with a MaasError carrying the gRPC status.
import { Metadata, status } from "@grpc/grpc-js";

/** The canonical name of a status code as the project (and the C++ CLI) writes it: "NOT_FOUND". */
export function codeName(code: status): string {
  return status[code] ?? `CODE_${code}`;
}

/**
 * The error of a failed call.
 *
 * ```ts
 * try { await client.generative.getModel({ model: { name: "nope" } }); }
 * catch (e) { if (e instanceof MaasError && e.code === status.NOT_FOUND) { ... } }
 * ```
 */
export class MaasError extends Error {
  override readonly name = "MaasError";

  constructor(
    /** The RPC, e.g. "GenerativeService.Sample". */
    readonly rpc: string,
    /** The gRPC status code (never OK). */
    readonly code: status,
    /** The server's message: what is wrong and how to fix it. */
    readonly details: string,
    /** Trailing metadata of the failed call (empty when the call never reached a server). */
    readonly metadata: Metadata = new Metadata(),
  ) {
    super(`maas: ${rpc}: ${codeName(code)}: ${details}`);
  }

  /** The code's name, e.g. "NOT_FOUND". */
  get codeName(): string {
    return codeName(this.code);
  }
}

/** True when err is a MaasError (with this code, when one is given). */
export function isMaasError(err: unknown, code?: status): err is MaasError {
  return err instanceof MaasError && (code === undefined || err.code === code);
}

interface StatusLike {
  code?: unknown;
  details?: unknown;
  metadata?: unknown;
  message?: unknown;
}

/** Turns what @grpc/grpc-js reports (a ServiceError / StatusObject) into a MaasError naming the RPC. */
export function toMaasError(rpc: string, err: unknown): MaasError {
  if (err instanceof MaasError) {
    return err;
  }
  const e = (typeof err === "object" && err !== null ? err : {}) as StatusLike;
  const code = typeof e.code === "number" && e.code in status ? (e.code as status) : status.UNKNOWN;
  const details = typeof e.details === "string" ? e.details : typeof e.message === "string" ? e.message : String(err);
  const metadata = e.metadata instanceof Metadata ? e.metadata : new Metadata();
  return new MaasError(rpc, code, details, metadata);
}
