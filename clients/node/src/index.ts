// @maas-project/maas-client: the TypeScript client of maas. See README.md.
export {
  batches,
  CallOptions,
  ClientOptions,
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_RECONNECT_BACKOFF_MAX_MS,
  DEFAULT_TIMEOUT_MS,
  DiscriminativeClient,
  GatewayClient,
  GenerativeClient,
  MaasClient,
  MAX_PAGE_SIZE,
  matrix,
  Source,
  splitRows,
  TlsOptions,
  toRows,
} from "./client";
export { codeName, isMaasError, MaasError } from "./errors";
export {
  ClassifyRequestInput,
  LabeledTextInput,
  packTexts,
  TextBatchInput,
  TextInput,
  VectorizeRequestInput,
} from "./texts";
export { status, Metadata } from "@grpc/grpc-js";
// The generated message types, one namespace per proto package.
export * as common from "./gen/maas/common/v1/common";
export * as discriminative from "./gen/maas/discriminative/v1/discriminative";
export * as gateway from "./gen/maas/gateway/v1/gateway";
export * as generative from "./gen/maas/generative/v1/generative";
