// The request serializers of the RPCs that carry texts (src/texts.ts), without a server: texts given as strings are
// encoded byte for byte as the generated encoders encode them (randomised requests with every other field set), and
// texts given as bytes travel unchanged in the text fields, the other fields as generated. packTexts: the layout of
// packed_texts, byte by byte, holding the bytes the texts field would carry. (Against the server, in client.test.ts:
// "texts as bytes" and "packed texts".)
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";

import { discriminative as disc } from "../src/index";
import {
  classifyRequest,
  DiscriminativeTextService,
  evaluateBatch,
  packTexts,
  TextInput,
  trainBatch,
  vectorizeRequest,
} from "../src/texts";

const generated = disc.DiscriminativeServiceService;
const ours = DiscriminativeTextService;

/** A seeded generator (xorshift32), so a failure can be replayed. */
class Random {
  constructor(private state: number) {}
  next(): number {
    let x = this.state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p = 0.5): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  /** Strings of ASCII, 2-, 3- and 4-byte UTF-8, U+FFFD, lone surrogates and NUL; sometimes empty or long. */
  string(): string {
    const units = ["a", "Z", " ", "\0", "é", "€", "😀", "\uFFFD", "\uD800", "\uDFFF", "字", "\n"];
    const len = this.chance(0.1) ? 0 : this.chance(0.1) ? 200 + this.int(300) : this.int(20);
    return Array.from({ length: len }, () => this.pick(units)).join("");
  }
  strings(): string[] {
    return Array.from({ length: this.int(6) }, () => this.string());
  }
  bytes(): Uint8Array {
    const raw = Uint8Array.from({ length: this.chance(0.1) ? 0 : this.int(40) }, () => this.int(256));
    // A Buffer from Node's pool (non-zero byteOffset), a plain Uint8Array, or a view into a larger array.
    const kind = this.int(3);
    if (kind === 0) {
      return Buffer.from(raw);
    }
    if (kind === 1) {
      return raw;
    }
    const outer = new Uint8Array(raw.length + 7);
    outer.set(raw, 3);
    return outer.subarray(3, 3 + raw.length);
  }
  text(): TextInput {
    return this.chance() ? this.bytes() : this.string();
  }
  bigint(): bigint {
    return BigInt(this.int(2 ** 31)) * BigInt(this.int(2 ** 31)) * (this.chance() ? -1n : 1n);
  }
  model(): disc.ClassifyRequest["model"] {
    return this.chance(0.2) ? undefined : { name: this.string(), version: this.bigint() };
  }
  examples<T extends TextInput>(text: () => T): { text?: T; label?: string; weight?: number }[] {
    return Array.from({ length: this.int(5) }, () => ({
      ...(this.chance(0.9) ? { text: text() } : {}),
      ...(this.chance(0.9) ? { label: this.string() } : {}),
      ...(this.chance() ? { weight: this.chance(0.1) ? 0 : this.next() * 10 } : {}),
    }));
  }
  trainConfig(): disc.TrainConfig {
    return disc.TrainConfig.fromPartial({
      name: this.string(),
      vectorizer: this.chance() ? undefined : {
        count: {
          text: { decodeError: this.int(3), analyzer: this.int(3), ngramMax: this.int(4), stopWordList: this.strings() },
          vocabulary: this.strings(),
        },
        tfidf: this.chance() ? { sublinearTf: true } : undefined,
      },
      classifier: this.chance() ? undefined : { complementNb: { alpha: this.next(), norm: this.chance() } },
      partial: this.chance(),
      classes: this.strings(),
      labels: Object.fromEntries(this.strings().map((s, i) => [s, String(i)])),
      description: this.string(),
    });
  }
}

/** The payloads of the length-delimited fields at path (field numbers, outermost first) of a message, in order. */
function payloads(message: Uint8Array, path: number[]): Uint8Array[] {
  const reader = new BinaryReader(message);
  const out: Uint8Array[] = [];
  while (reader.pos < reader.len) {
    const [number, type] = reader.tag();
    if (number === path[0] && type === WireType.LengthDelimited) {
      const payload = reader.bytes();
      out.push(...(path.length === 1 ? [payload] : payloads(payload, path.slice(1))));
    } else {
      reader.skip(type, number);
    }
  }
  return out;
}

const utf8 = (t: TextInput) => (typeof t === "string" ? new TextEncoder().encode(t) : t);
const same = (a: Uint8Array[], b: Uint8Array[]) =>
  assert.deepEqual(a.map((x) => Buffer.from(x).toString("hex")), b.map((x) => Buffer.from(x).toString("hex")));
const ROUNDS = 300;

describe("request serializers", () => {
  it("encode requests whose texts are strings exactly as the generated encoders do", () => {
    const rnd = new Random(20261203);
    for (let round = 0; round < ROUNDS; round++) {
      const classify = {
        model: rnd.model(), texts: rnd.strings(), topK: rnd.int(4), explain: rnd.chance(),
        explainFeatures: rnd.int(20), compact: rnd.chance(),
      };
      assert.deepEqual(ours.classify.requestSerialize(classifyRequest(classify)),
        generated.classify.requestSerialize(disc.ClassifyRequest.fromPartial(classify)), `round ${round}`);
      assert.deepEqual(ours.classifyStream.requestSerialize(classifyRequest(classify)),
        generated.classifyStream.requestSerialize(disc.ClassifyRequest.fromPartial(classify)));

      const vectorize = { model: rnd.model(), texts: rnd.strings(), includeFeatureNames: rnd.chance() };
      assert.deepEqual(ours.vectorize.requestSerialize(vectorizeRequest(vectorize)),
        generated.vectorize.requestSerialize(disc.VectorizeRequest.fromPartial(vectorize)), `round ${round}`);

      const batch = { examples: rnd.examples(() => rnd.string()) };
      assert.deepEqual(ours.train.requestSerialize(trainBatch(batch)),
        generated.train.requestSerialize(disc.TrainRequest.fromPartial({ batch })), `round ${round}`);
      assert.deepEqual(ours.evaluate.requestSerialize(evaluateBatch(batch)),
        generated.evaluate.requestSerialize(disc.EvaluateRequest.fromPartial({ batch })));
      // The first message of a stream (the config) goes through the same serializer.
      const config = disc.TrainRequest.fromPartial({ config: rnd.trainConfig() });
      assert.deepEqual(ours.train.requestSerialize(config), generated.train.requestSerialize(config));
      const evaluateConfig = disc.EvaluateRequest.fromPartial({ config: { model: rnd.model() } });
      assert.deepEqual(ours.evaluate.requestSerialize(evaluateConfig), generated.evaluate.requestSerialize(evaluateConfig));
    }
  });

  it("send texts given as bytes unchanged, in order, among strings, and every other field as generated", () => {
    const rnd = new Random(7);
    for (let round = 0; round < ROUNDS; round++) {
      const texts = Array.from({ length: 1 + rnd.int(6) }, () => rnd.text());
      const classify = { model: rnd.model(), texts, topK: rnd.int(4), explain: rnd.chance(), compact: rnd.chance() };
      const classified = ours.classify.requestSerialize(classifyRequest(classify));
      same(payloads(classified, [2]), texts.map(utf8));
      // The other fields decode as from the generated encoding (the decoder reads texts as strings: not compared).
      assert.deepEqual({ ...disc.ClassifyRequest.decode(classified), texts: [] },
        disc.ClassifyRequest.decode(generated.classify.requestSerialize(disc.ClassifyRequest.fromPartial({ ...classify,
          texts: [] }))));
      same(payloads(ours.classifyStream.requestSerialize(classifyRequest(classify)), [2]), texts.map(utf8));

      const vectorize = { model: rnd.model(), texts, includeFeatureNames: rnd.chance() };
      const vectorized = ours.vectorize.requestSerialize(vectorizeRequest(vectorize));
      same(payloads(vectorized, [2]), texts.map(utf8));
      assert.deepEqual({ ...disc.VectorizeRequest.decode(vectorized), texts: [] },
        disc.VectorizeRequest.decode(generated.vectorize.requestSerialize(disc.VectorizeRequest.fromPartial({ ...vectorize,
          texts: [] }))));

      // TrainRequest/EvaluateRequest.batch = 2, TextBatch.examples = 1, LabeledText.text = 1 (absent when empty).
      const examples = rnd.examples(() => rnd.text());
      const sent = examples.map((e) => utf8(e.text ?? "")).filter((b) => b.length > 0);
      same(payloads(ours.train.requestSerialize(trainBatch({ examples })), [2, 1, 1]), sent);
      same(payloads(ours.evaluate.requestSerialize(evaluateBatch({ examples })), [2, 1, 1]), sent);
      const withoutTexts = (m: Buffer) => disc.TrainRequest.decode(m).batch?.examples.map((e) => ({ ...e, text: "" }));
      assert.deepEqual(withoutTexts(ours.train.requestSerialize(trainBatch({ examples }))),
        withoutTexts(generated.train.requestSerialize(disc.TrainRequest.fromPartial({
          batch: { examples: examples.map((e) => ({ ...e, text: "" })) } }))));
    }
  });

  it("send bytes that are UTF-8 exactly as the string they spell", () => {
    const rnd = new Random(99);
    for (let round = 0; round < ROUNDS; round++) {
      const strings = rnd.strings();
      const bytes = strings.map((s) => new TextEncoder().encode(s)); // not Buffers: String(buffer) decodes UTF-8
      assert.deepEqual(ours.classify.requestSerialize(classifyRequest({ texts: bytes, topK: 1 })),
        generated.classify.requestSerialize(disc.ClassifyRequest.fromPartial({ texts: strings, topK: 1 })));
      const examples = strings.map((s, i) => ({ text: s, label: String(i), weight: i })); // "" too: no field
      const asBytes = examples.map((e) => ({ ...e, text: new TextEncoder().encode(e.text) }));
      assert.deepEqual(ours.train.requestSerialize(trainBatch({ examples: asBytes })),
        generated.train.requestSerialize(disc.TrainRequest.fromPartial({ batch: { examples } })));
    }
  });
});

/** The texts of a packed_texts buffer (each: 4-byte little-endian length, then the bytes); fails on a bad layout. */
function unpack(packed: Uint8Array): Uint8Array[] {
  const view = new DataView(packed.buffer, packed.byteOffset, packed.byteLength);
  const texts: Uint8Array[] = [];
  let at = 0;
  while (at < packed.length) {
    assert.ok(at + 4 <= packed.length, `a length cut short at byte ${at}`);
    const length = view.getUint32(at, true);
    assert.ok(at + 4 + length <= packed.length, `text ${texts.length} at byte ${at} runs past the end`);
    texts.push(packed.subarray(at + 4, at + 4 + length));
    at += 4 + length;
  }
  return texts;
}

describe("packTexts", () => {
  it("writes each text as its UTF-8 byte length, 4 bytes little-endian, then its bytes", () => {
    const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
    assert.equal(hex(packTexts(["ab", "", "é☕"])), hex(Uint8Array.of(
      0x02, 0x00, 0x00, 0x00, 0x61, 0x62,
      0x00, 0x00, 0x00, 0x00,
      0x05, 0x00, 0x00, 0x00, 0xc3, 0xa9, 0xe2, 0x98, 0x95))); // é is 2 bytes of UTF-8, ☕ 3
    // Bytes as they are (not UTF-8 too), a Buffer, and a lone surrogate as U+FFFD (as the texts field sends it).
    assert.equal(hex(packTexts([Uint8Array.of(0x63, 0xe9), Buffer.from([0x00]), "\uD800"])), hex(Uint8Array.of(
      0x02, 0x00, 0x00, 0x00, 0x63, 0xe9,
      0x01, 0x00, 0x00, 0x00, 0x00,
      0x03, 0x00, 0x00, 0x00, 0xef, 0xbf, 0xbd)));
    // A length of 0x010203 bytes: the low byte first.
    const long = packTexts(["x".repeat(0x010203)]);
    assert.equal(long.length, 4 + 0x010203);
    assert.equal(hex(long.subarray(0, 6)), "030201007878");
    assert.equal(packTexts([]).length, 0);
    // A Buffer, the type of the generated packedTexts fields.
    assert.ok(packTexts(["a"]) instanceof Buffer);
  });

  it("packs exactly the bytes the texts field carries", () => {
    const rnd = new Random(20261204);
    for (let round = 0; round < ROUNDS; round++) {
      const texts = Array.from({ length: rnd.int(8) }, () => rnd.text());
      same(unpack(packTexts(texts)), payloads(ours.classify.requestSerialize(classifyRequest({ texts })), [2]));
    }
  });

  it("refuses a text whose length does not fit 4 bytes, naming it", () => {
    // A Uint8Array that claims 4 GiB (packing a real one would take 4 GiB).
    const huge = new Proxy(new Uint8Array(0), {
      get: (target, key) => (key === "length" ? 2 ** 32 : Reflect.get(target, key)),
    });
    assert.throws(() => packTexts(["fine", huge]), (e) => e instanceof RangeError && /texts\[1\]/.test(e.message));
  });
});
