// Texts as strings or bytes. The discriminative service reads every text field (ClassifyRequest.texts,
// VectorizeRequest.texts, LabeledText.text) as bytes, so a text that is not UTF-8 meets the model's decode_error
// (strict: INVALID_ARGUMENT naming the text; replace / ignore: scikit-learn's repair). The generated encoders take
// texts as JS strings only, which cannot hold such bytes (and turn a lone surrogate into U+FFFD whatever the
// model's decode_error). Here a text may also be a Uint8Array (a Buffer is one), sent as its bytes unchanged: a
// string field and a bytes field have the same wire format (wire type 2, length-delimited), so the generated
// encoders write the messages, given a TextWriter, whose string() writes a Uint8Array with bytes(). A request whose
// texts are all strings is encoded byte for byte as the generated encoder encodes it. Only the text fields can hold a
// Uint8Array (the *Input types below); every other string field is written by BinaryWriter.string as generated.
import { BinaryWriter } from "@bufbuild/protobuf/wire";

import { DeepPartial } from "./gen/maas/common/v1/common";
import * as disc from "./gen/maas/discriminative/v1/discriminative";

/** A text: a string (sent as UTF-8) or bytes sent as they are (bytes that are not UTF-8 meet decode_error). */
export type TextInput = string | Uint8Array;

/** A ClassifyRequest for classify and classifyStream: as DeepPartial<ClassifyRequest>, each text a string or bytes. */
export type ClassifyRequestInput = Omit<DeepPartial<disc.ClassifyRequest>, "texts"> & {
  texts?: ReadonlyArray<TextInput>;
};
/** A VectorizeRequest for vectorize: as DeepPartial<VectorizeRequest>, each text a string or bytes. */
export type VectorizeRequestInput = Omit<DeepPartial<disc.VectorizeRequest>, "texts"> & {
  texts?: ReadonlyArray<TextInput>;
};
/** A labelled example for train and evaluate: as DeepPartial<LabeledText>, the text a string or bytes. */
export type LabeledTextInput = Omit<DeepPartial<disc.LabeledText>, "text"> & { text?: TextInput };
/** A batch of labelled examples for train and evaluate (see batches()). */
export type TextBatchInput = Omit<DeepPartial<disc.TextBatch>, "examples"> & {
  examples?: ReadonlyArray<LabeledTextInput>;
};

/** Bytes of the length before each text in packed_texts. */
const PACKED_LENGTH_BYTES = 4;
/** The largest text packTexts packs: what a 4-byte length holds. */
const MAX_PACKED_TEXT = 0xffff_ffff;

/**
 * The texts as ClassifyRequest / VectorizeRequest `packedTexts`: each text as its byte length, 4 bytes little-endian,
 * then its bytes (the layout of KServe's raw BYTES tensors). Set `packedTexts` instead of `texts` (not both): one
 * bytes field instead of one per text is cheaper to encode, send and read for large batches, and the answer is the
 * same. A string is sent as UTF-8 (as in `texts`: a lone surrogate as U+FFFD), a Uint8Array as its bytes (bytes that
 * are not UTF-8 meet the model's decode_error). Returns a Buffer (a Uint8Array), the type of the generated
 * `packedTexts` fields; throws a RangeError for a text of 4 GiB or more, whose length does not fit.
 *
 *     await client.discriminative.classify({ model: { name: "news" }, packedTexts: packTexts(texts), compact: true });
 */
export function packTexts(texts: ReadonlyArray<TextInput>): Buffer {
  let size = 0;
  const lengths = texts.map((text, i) => {
    const length = typeof text === "string" ? Buffer.byteLength(text, "utf8") : text.length;
    if (length > MAX_PACKED_TEXT) {
      throw new RangeError(`packTexts: texts[${i}] has ${length} bytes, more than the ${MAX_PACKED_TEXT} that ` +
        "packed_texts' 4-byte length can hold");
    }
    size += PACKED_LENGTH_BYTES + length;
    return length;
  });
  const packed = Buffer.allocUnsafe(size); // every byte is written below
  let at = 0;
  for (const [i, text] of texts.entries()) {
    at = packed.writeUInt32LE(lengths[i], at);
    if (typeof text === "string") {
      packed.write(text, at, lengths[i], "utf8");
    } else {
      packed.set(text, at);
    }
    at += lengths[i];
  }
  return packed;
}

// The generated message types with their text fields widened: what the serializers below take.
type LabeledTextWire = Omit<disc.LabeledText, "text"> & { text: TextInput };
type TextBatchWire = Omit<disc.TextBatch, "examples"> & { examples: LabeledTextWire[] };
export type ClassifyRequestWire = Omit<disc.ClassifyRequest, "texts"> & { texts: TextInput[] };
export type VectorizeRequestWire = Omit<disc.VectorizeRequest, "texts"> & { texts: TextInput[] };
export type TrainRequestWire = Omit<disc.TrainRequest, "batch"> & { batch?: TextBatchWire };
export type EvaluateRequestWire = Omit<disc.EvaluateRequest, "batch"> & { batch?: TextBatchWire };

/** A BinaryWriter whose string() also takes a Uint8Array, written as it is (as bytes() writes it). */
export class TextWriter extends BinaryWriter {
  override string(value: string | Uint8Array): this {
    return value instanceof Uint8Array ? this.bytes(value) : super.string(value);
  }
}

export function classifyRequest(request: ClassifyRequestInput): ClassifyRequestWire {
  const { texts, ...rest } = request;
  return { ...disc.ClassifyRequest.fromPartial(rest), texts: [...(texts ?? [])] };
}

export function vectorizeRequest(request: VectorizeRequestInput): VectorizeRequestWire {
  const { texts, ...rest } = request;
  return { ...disc.VectorizeRequest.fromPartial(rest), texts: [...(texts ?? [])] };
}

function textBatch(batch: TextBatchInput): TextBatchWire {
  const { examples, ...rest } = batch;
  return {
    ...disc.TextBatch.fromPartial(rest),
    // An empty text is "" either way, so that the generated encoder leaves the field out as it does for "".
    examples: (examples ?? []).map(({ text, ...example }) => ({
      ...disc.LabeledText.fromPartial(example), text: text === undefined || text.length === 0 ? "" : text })),
  };
}

/** A TrainRequest for train: as DeepPartial<TrainRequest> (config or batch), the batch's texts strings or bytes. */
export type TrainRequestInput = Omit<DeepPartial<disc.TrainRequest>, "batch"> & { batch?: TextBatchInput };
/** An EvaluateRequest for evaluate: as DeepPartial<EvaluateRequest>, the batch's texts strings or bytes. */
export type EvaluateRequestInput = Omit<DeepPartial<disc.EvaluateRequest>, "batch"> & { batch?: TextBatchInput };

/** TrainRequest { config } or { batch }. */
export function trainRequest(request: TrainRequestInput): TrainRequestWire {
  const { batch, ...rest } = request;
  return { ...disc.TrainRequest.fromPartial(rest), batch: batch === undefined ? undefined : textBatch(batch) };
}

/** EvaluateRequest { config } or { batch }. */
export function evaluateRequest(request: EvaluateRequestInput): EvaluateRequestWire {
  const { batch, ...rest } = request;
  return { ...disc.EvaluateRequest.fromPartial(rest), batch: batch === undefined ? undefined : textBatch(batch) };
}

/** TrainRequest { batch }. */
export function trainBatch(batch: TextBatchInput): TrainRequestWire {
  return trainRequest({ batch });
}

/** EvaluateRequest { batch }. */
export function evaluateBatch(batch: TextBatchInput): EvaluateRequestWire {
  return evaluateRequest({ batch });
}

/** The generated encoder of T given a TextWriter: W is T with text fields widened to TextInput. */
function serializer<T, W>(fns: { encode(message: T, writer?: BinaryWriter): BinaryWriter }): (value: W) => Buffer {
  return (value: W) => Buffer.from(fns.encode(value as unknown as T, new TextWriter()).finish());
}

const service = disc.DiscriminativeServiceService;

/**
 * DiscriminativeServiceService with the request serializers of the RPCs that carry texts (Train, Classify,
 * ClassifyStream, Vectorize, Evaluate) taking each text as a string or bytes; the other methods as generated.
 */
export const DiscriminativeTextService = {
  ...service,
  train: { ...service.train, requestSerialize: serializer<disc.TrainRequest, TrainRequestWire>(disc.TrainRequest) },
  classify: {
    ...service.classify,
    requestSerialize: serializer<disc.ClassifyRequest, ClassifyRequestWire>(disc.ClassifyRequest),
  },
  classifyStream: {
    ...service.classifyStream,
    requestSerialize: serializer<disc.ClassifyRequest, ClassifyRequestWire>(disc.ClassifyRequest),
  },
  vectorize: {
    ...service.vectorize,
    requestSerialize: serializer<disc.VectorizeRequest, VectorizeRequestWire>(disc.VectorizeRequest),
  },
  evaluate: {
    ...service.evaluate,
    requestSerialize: serializer<disc.EvaluateRequest, EvaluateRequestWire>(disc.EvaluateRequest),
  },
} as const;
