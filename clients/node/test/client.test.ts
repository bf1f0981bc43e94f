// The TypeScript client against the real binaries: every RPC of the three services through the gateway, checked
// against closed-form oracles (the uniform density; CountVectorizer + MultinomialNB computed here), plus typed
// errors, deadlines, cancellation and stream behaviour.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";

import {
  batches,
  common,
  discriminative as disc,
  gateway as gw,
  generative as gen,
  isMaasError,
  MaasClient,
  MaasError,
  matrix,
  packTexts,
  splitRows,
  status,
  toRows,
} from "../src/index";
import { Stack } from "./servers";

let stack: Stack;
let client: MaasClient;

before(async () => {
  stack = await Stack.start();
  client = new MaasClient(stack.gateway.address);
  await client.waitForReady(10_000);
  for (const server of [stack.generative, stack.discriminative]) {
    const direct = new MaasClient(server.address);
    try {
      await direct.waitServing("", 15_000);
    } finally {
      direct.close();
    }
  }
  await client.waitServing("", 15_000);
});

after(async () => {
  client?.close();
  await stack?.stop();
});

async function rejectsWith(promise: Promise<unknown>, code: status, ...mentions: string[]): Promise<MaasError> {
  try {
    await promise;
  } catch (e) {
    return checkError(e, code, ...mentions);
  }
  assert.fail(`expected ${status[code]}, but the call succeeded`);
}

function checkError(e: unknown, code: status, ...mentions: string[]): MaasError {
  assert.ok(e instanceof MaasError, `expected a MaasError, got ${String(e)}`);
  assert.equal(e.codeName, status[code], e.message);
  assert.ok(isMaasError(e, code));
  assert.ok(e.details.trim() !== "", `${e.codeName} carries an empty message`);
  for (const m of mentions) {
    assert.ok(e.details.toLowerCase().includes(m.toLowerCase()), `${e.details} does not mention ${m}`);
  }
  return e;
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) {
    out.push(x);
  }
  return out;
}

async function sampleRows(request: Parameters<typeof client.generative.sample>[0]): Promise<number[][]> {
  const rows: number[][] = [];
  let next = BigInt(request.startIndex ?? 0);
  for await (const batch of client.generative.sample(request, { timeoutMs: 10_000 })) {
    assert.equal(batch.startIndex, next);
    const x = toRows(batch.x!);
    rows.push(...x);
    next += BigInt(x.length);
  }
  return rows;
}

describe("every RPC is wrapped", () => {
  it("has a method per RPC of each service definition; streamed responses come back as async iterators", async () => {
    const services: [Record<string, { requestStream: boolean; responseStream: boolean }>, object][] = [
      [gen.GenerativeServiceService, client.generative],
      [disc.DiscriminativeServiceService, client.discriminative],
      [gw.GatewayService, client.gateway],
    ];
    let total = 0;
    for (const [definition, wrapper] of services) {
      for (const [name, kind] of Object.entries(definition)) {
        total++;
        const method = (wrapper as Record<string, unknown>)[name];
        assert.equal(typeof method, "function", `${name} is not wrapped`);
        if (kind.responseStream) {
          // Generators start no call before the first next(); return() disposes of this one.
          const stream = (method as (...a: unknown[]) => AsyncGenerator<unknown>).call(wrapper, kind.requestStream ? [] : {});
          assert.equal(typeof stream[Symbol.asyncIterator], "function", `${name} does not return an async iterator`);
          await stream.return(undefined);
        }
      }
    }
    assert.ok(total >= 19, `${total} RPCs`);
  });
});

describe("generative", () => {
  const low = [0, -1];
  const high = [1, 1];

  it("creates a uniform box, samples it reproducibly and estimates its density exactly", async () => {
    const created = await client.generative.createModel({ name: "ts-sample-box", spec: { uniform: { low, high } } });
    assert.equal(created.info?.version, 1n);
    assert.equal(created.info?.family, "uniform");
    assert.equal(created.info?.type, common.ModelType.GENERATIVE);

    const whole = await sampleRows({ model: { name: "ts-sample-box" }, numSamples: 300, seed: 7, batchSize: 300 });
    const small = await sampleRows({ model: { name: "ts-sample-box", version: 1 }, numSamples: 300, seed: 7, batchSize: 7 });
    assert.equal(whole.length, 300);
    assert.deepEqual(small, whole);
    const shard = await sampleRows({ model: { name: "ts-sample-box" }, numSamples: 20, seed: 7, startIndex: 100, batchSize: 3 });
    assert.deepEqual(shard, whole.slice(100, 120));
    for (const row of whole) {
      row.forEach((v, d) => assert.ok(v >= low[d] && v <= high[d], `${row} outside the box`));
    }
    // Seeds use all 64 bits: bigint round trip.
    const seed = (1n << 63n) + 12345n;
    const batchesOut = await collect(client.generative.sample({ model: { name: "ts-sample-box" }, numSamples: 5, seed }));
    assert.equal(batchesOut[0].seed, seed);

    const want = -Math.log((high[0] - low[0]) * (high[1] - low[1]));
    const x = matrix([[0.5, 0], [2, 0], [0.25, -0.75]]);
    const est = await client.generative.estimateLogLikelihood({ model: { name: "ts-sample-box" }, x, estimator: gen.Estimator.EXACT });
    assert.equal(est.rows.length, 3);
    assert.ok(Math.abs(est.rows[0].logLikelihood - want) <= 1e-15);
    assert.equal(est.rows[1].logLikelihood, -Infinity);
    assert.ok(Math.abs(est.rows[2].logLikelihood - want) <= 1e-15);

    const streamed = await collect(client.generative.streamEstimate({
      request: { model: { name: "ts-sample-box" }, x, estimator: gen.Estimator.EXACT } }));
    assert.equal(streamed.length, 1);
    assert.equal(streamed[0].stopReason, gen.StopReason.EXACT_RESULT);
    assert.deepEqual(streamed[0].estimate, est);

    await rejectsWith(client.generative.estimateLogLikelihood({ model: { name: "ts-sample-box" }, x: matrix([[1, 2, 3]]) }),
      status.FAILED_PRECONDITION, "3 columns");
    await rejectsWith(client.generative.createModel({ name: "Bad Name!", spec: { uniform: { low, high } } }),
      status.INVALID_ARGUMENT, "name");
    await assert.rejects(collect(client.generative.sample({ model: { name: "no-such-model" }, numSamples: 1 })),
      (e) => checkError(e, status.NOT_FOUND, "no-such-model").rpc === "GenerativeService.Sample");
  });

  it("fits from streamed chunks, lists, gets and deletes", async () => {
    // Seeded rows (a small LCG): the uniform fit is the per-column min and max.
    let state = 12345;
    const next = () => (state = (state * 1103515245 + 12345) % 2147483648) / 2147483648;
    const rows = Array.from({ length: 2500 }, () => [next() * 10 - 5, next(), -next()]);
    const lowFit = [0, 1, 2].map((d) => Math.min(...rows.map((r) => r[d])));
    const highFit = [0, 1, 2].map((d) => Math.max(...rows.map((r) => r[d])));
    const fit = await client.generative.fitModel({ name: "ts-fit", seed: 3, uniform: {}, labels: { by: "ts" } },
      splitRows(matrix(rows), 1000));
    assert.equal(fit.trace?.numRows, 2500n);
    assert.equal(fit.info?.dimension, 3n);
    const got = await client.generative.getModel({ model: { name: "ts-fit" } });
    assert.deepEqual(got.spec?.uniform, { low: lowFit, high: highFit });
    assert.equal(got.info?.labels.by, "ts");

    // An async source works too; a second fit is version 2.
    async function* chunks() {
      yield* splitRows(matrix(rows), 700);
    }
    await client.generative.fitModel({ name: "ts-fit", uniform: {} }, chunks());
    const all = await client.generative.listModels({ namePrefix: "ts-fit", allVersions: true });
    assert.deepEqual(all.models.map((m) => m.version), [1n, 2n]);
    const latest = await client.generative.listModels();
    assert.ok(latest.models.some((m) => m.name === "ts-fit" && m.version === 2n));

    // Ragged chunks are refused and nothing is stored; a source that throws cancels the call with its error.
    await rejectsWith(client.generative.fitModel({ name: "ts-ragged", uniform: {} }, [matrix([[1, 2]]), matrix([[1, 2, 3]])]),
      status.INVALID_ARGUMENT);
    function* failing() {
      yield matrix([[1, 2]]);
      throw new Error("source broke");
    }
    await assert.rejects(client.generative.fitModel({ name: "ts-broken", uniform: {} }, failing()), /source broke/);
    for (const name of ["ts-ragged", "ts-broken"]) {
      await rejectsWith(client.generative.getModel({ model: { name } }), status.NOT_FOUND);
    }

    const deleted = await client.generative.deleteModel({ name: "ts-fit" });
    assert.deepEqual(deleted.deletedVersions, [1n, 2n]);
    await rejectsWith(client.generative.getModel({ model: { name: "ts-fit" } }), status.NOT_FOUND, "ts-fit");
  });

  it("honours deadlines, abort signals and early exits from streams", async () => {
    await client.generative.createModel({ name: "ts-deadline", spec: { uniform: { low, high } } });
    const big = { model: { name: "ts-deadline" }, numSamples: 10_000_000, batchSize: 1000 };
    // A slow reader of a long stream (10 000 batches, 200 s at 20 ms each) meets its deadline.
    let n = 0;
    await assert.rejects(async () => {
      for await (const _ of client.generative.sample(big, { timeoutMs: 500 })) {
        n++;
        await new Promise((r) => setTimeout(r, 20));
      }
    }, (e) => checkError(e, status.DEADLINE_EXCEEDED) !== undefined);
    assert.ok(n < 10_000, `${n} batches`);
    // Aborting cancels.
    const controller = new AbortController();
    n = 0;
    await assert.rejects(async () => {
      for await (const _ of client.generative.sample(big, { signal: controller.signal })) {
        if (++n === 3) {
          controller.abort();
        }
      }
    }, (e) => checkError(e, status.CANCELLED) !== undefined);
    const aborted = new AbortController();
    aborted.abort();
    await rejectsWith(client.generative.listModels({}, { signal: aborted.signal }), status.CANCELLED);
    // Leaving the loop early ends the call; the client stays usable.
    for await (const batch of client.generative.sample(big)) {
      assert.equal(batch.startIndex, 0n);
      break;
    }
    assert.ok((await client.generative.listModels()).models.length > 0);
    // The client's default timeout applies to unary calls without their own.
    const hurried = new MaasClient(stack.gateway.address, { timeoutMs: 1e-6 });
    try {
      await rejectsWith(hurried.generative.listModels(), status.DEADLINE_EXCEEDED);
      await hurried.generative.listModels({}, { timeoutMs: 10_000 });
    } finally {
      hurried.close();
    }
  });
});

// CountVectorizer() + MultinomialNB(alpha=1) in closed form, for ASCII text (scikit-learn's default analyzer:
// lowercase, tokens /\b\w\w+\b/).
const corpus = [
  { text: "The striker scored a late goal", label: "sports" },
  { text: "the keeper saved a penalty in the final minute", label: "sports" },
  { text: "A great match: two goals and a red card", label: "sports" },
  { text: "new processor doubles the memory bandwidth", label: "tech" },
  { text: "the phone ships with a faster chip and more memory", label: "tech" },
  { text: "an update fixes the kernel bug in the driver", label: "tech" },
  { text: "knead the bread dough and let it rise", label: "food" },
  { text: "slow cooked beans with garlic and bread", label: "food" },
  { text: "the soup needs more salt and a little garlic", label: "food" },
  { text: "I bought a phone after the match, and bread", label: "tech" },
];
const tokens = (text: string) => text.toLowerCase().match(/\b\w\w+\b/g) ?? [];

class NbOracle {
  readonly vocabulary: string[];
  readonly classes: string[];
  private readonly logPrior: number[];
  private readonly featureLogProb: number[][];

  constructor(examples: { text: string; label: string }[]) {
    this.vocabulary = [...new Set(examples.flatMap((e) => tokens(e.text)))].sort();
    this.classes = [...new Set(examples.map((e) => e.label))].sort();
    const counts = this.classes.map(() => new Array<number>(this.vocabulary.length).fill(0));
    const classCount = this.classes.map(() => 0);
    for (const e of examples) {
      const c = this.classes.indexOf(e.label);
      classCount[c]++;
      for (const [f, n] of this.counts(e.text)) {
        counts[c][f] += n;
      }
    }
    this.logPrior = classCount.map((n) => Math.log(n / examples.length));
    this.featureLogProb = counts.map((row) => {
      const total = row.reduce((a, b) => a + b, 0);
      return row.map((v) => Math.log(v + 1) - Math.log(total + this.vocabulary.length));
    });
  }

  counts(text: string): Map<number, number> {
    const row = new Map<number, number>();
    for (const t of tokens(text)) {
      const f = this.vocabulary.indexOf(t);
      if (f >= 0) {
        row.set(f, (row.get(f) ?? 0) + 1);
      }
    }
    return row;
  }

  logProba(text: string): { label: string; logProb: number[] } {
    const jll = [...this.logPrior];
    for (const [f, n] of this.counts(text)) {
      jll.forEach((_, c) => (jll[c] += n * this.featureLogProb[c][f]));
    }
    let best = 0;
    jll.forEach((v, c) => (best = v > jll[best] ? c : best));
    const m = Math.max(...jll);
    const lse = m + Math.log(jll.reduce((s, v) => s + Math.exp(v - m), 0));
    return { label: this.classes[best], logProb: jll.map((v) => v - lse) };
  }
}

const near = (a: number, b: number) => Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b));

describe("discriminative", () => {
  const oracle = new NbOracle(corpus);
  const queries = ["the striker scored a late goal", "knead the bread dough", "a faster processor and more memory",
    "zebra unicorn", "Garlic BREAD, garlic soup!"];

  it("trains, classifies (unary and bidi stream), vectorizes and evaluates as the oracle says", async () => {
    const trained = await client.discriminative.train({ name: "ts-nb" }, batches(corpus, 4));
    assert.equal(trained.summary?.numDocuments, BigInt(corpus.length));
    assert.deepEqual(trained.summary?.classes, oracle.classes);
    assert.equal(trained.summary?.numFeatures, BigInt(oracle.vocabulary.length));

    const resp = await client.discriminative.classify({ model: { name: "ts-nb" }, texts: queries });
    assert.equal(resp.results.length, queries.length);
    queries.forEach((q, i) => {
      const { label, logProb } = oracle.logProba(q);
      const r = resp.results[i];
      assert.equal(r.label, label, q);
      assert.deepEqual(r.scores.map((s) => s.label), oracle.classes);
      r.scores.forEach((s, c) => {
        assert.ok(near(s.logProbability, logProb[c]), `${q}: ${s.logProbability} vs ${logProb[c]}`);
        assert.ok(near(s.probability, Math.exp(logProb[c])));
      });
    });

    // Bidi: one response per request, in order, equal to the unary answers; requests from an async source.
    async function* requests() {
      for (const q of queries) {
        yield { model: { name: "ts-nb" }, texts: [q] };
      }
    }
    const streamed = await collect(client.discriminative.classifyStream(requests()));
    assert.deepEqual(streamed.map((r) => r.results[0]), resp.results);
    // A request source that throws cancels the call, and its error is what the loop throws.
    async function* failing() {
      yield { model: { name: "ts-nb" }, texts: queries };
      throw new Error("request source broke");
    }
    await assert.rejects(collect(client.discriminative.classifyStream(failing())), /request source broke/);
    // A bad request in the middle ends the stream with the server's status.
    await assert.rejects(collect(client.discriminative.classifyStream([
      { model: { name: "ts-nb" }, texts: queries }, { model: { name: "ts-nb" } }])),
      (e) => checkError(e, status.INVALID_ARGUMENT, "texts") !== undefined);

    const vec = await client.discriminative.vectorize({ model: { name: "ts-nb" }, texts: queries, includeFeatureNames: true });
    assert.equal(vec.numFeatures, BigInt(oracle.vocabulary.length));
    queries.forEach((q, i) => {
      const want = oracle.counts(q);
      const row = vec.rows[i];
      assert.deepEqual(row.indices, [...want.keys()].sort((a, b) => a - b).map(BigInt));
      row.indices.forEach((f, j) => {
        assert.equal(row.values[j], want.get(Number(f)));
        assert.equal(vec.featureNames.get(f), oracle.vocabulary[Number(f)]);
      });
    });

    const evaluation = await client.discriminative.evaluate({ model: { name: "ts-nb" } }, batches(corpus, 3));
    const k = oracle.classes.length;
    const confusion = new Array<number>(k * k).fill(0);
    let correct = 0;
    let logLoss = 0;
    for (const e of corpus) {
      const { label, logProb } = oracle.logProba(e.text);
      const truth = oracle.classes.indexOf(e.label);
      confusion[truth * k + oracle.classes.indexOf(label)]++;
      correct += label === e.label ? 1 : 0;
      logLoss -= logProb[truth];
    }
    assert.ok(near(evaluation.accuracy, correct / corpus.length));
    assert.deepEqual(evaluation.confusionMatrix?.values, confusion);
    assert.ok(near(evaluation.logLoss, logLoss / corpus.length));

    // Export, import under a new name, same answers; list; delete.
    const exported = await client.discriminative.getModel({ model: { name: "ts-nb" } });
    assert.deepEqual(exported.spec?.vectorizer?.vocabulary, oracle.vocabulary);
    await client.discriminative.createModel({ name: "ts-nb-copy", spec: exported.spec });
    const copied = await client.discriminative.classify({ model: { name: "ts-nb-copy" }, texts: queries });
    assert.deepEqual(copied.results, resp.results);
    const listed = await client.discriminative.listModels({ namePrefix: "ts-nb" });
    assert.deepEqual(listed.models.map((m) => m.name), ["ts-nb", "ts-nb-copy"]);
    for (const name of ["ts-nb", "ts-nb-copy"]) {
      await client.discriminative.deleteModel({ name });
    }
    await rejectsWith(client.discriminative.classify({ model: { name: "ts-nb" }, texts: queries }), status.NOT_FOUND);
    await rejectsWith(client.discriminative.train({ name: "ts-empty" }, []), status.INVALID_ARGUMENT);
  });
});

// Texts as bytes: a text given as a Uint8Array reaches the model as those bytes, so bytes that are not UTF-8 meet its
// decode_error. The oracle is the server itself on strings: replace must answer as for the text with each maximal
// ill-formed subsequence spelled U+FFFD (what Node's TextDecoder makes of the bytes, checked here), ignore as for
// the text without them, in Train, Classify, ClassifyStream, Vectorize and Evaluate; strict refuses naming the text.
describe("texts as bytes", () => {
  type Part = string | { bytes: number[]; replaced: string };
  const bad = (bytes: number[], replaced: string): Part => ({ bytes, replaced });
  const R = "\uFFFD";
  // A plain Uint8Array (a Buffer would pass even through an encoder that decodes it: its toString() is UTF-8 with
  // replacement).
  const toBytes = (parts: Part[]) =>
    new Uint8Array(Buffer.concat(parts.map((p) => Buffer.from(typeof p === "string" ? p : p.bytes))));
  const spelled = (parts: Part[], how: "replace" | "ignore") =>
    parts.map((p) => (typeof p === "string" ? p : how === "replace" ? p.replaced : "")).join("");
  // Truncated sequences, a stray continuation byte, an encoded surrogate, an overlong form, a code point above
  // U+10FFFF, bytes that never occur in UTF-8; inside words and between them, next to valid multi-byte UTF-8.
  const docs: { parts: Part[]; label: string }[] = [
    { parts: ["the stri", bad([0xff], R), "ker scored a late go", bad([0xc3], R), "al"], label: "sports" },
    { parts: ["the keeper saved a pen", bad([0xe2, 0x82], R), "alty in the final minute"], label: "sports" },
    { parts: ["a great match ", bad([0x80], R), " two goals and a red card"], label: "sports" },
    { parts: ["new proc", bad([0xed, 0xa0, 0x80], R + R + R), "essor doubles the memory"], label: "tech" },
    { parts: ["the phone ships with a fast", bad([0xc0, 0xaf], R + R), "er chip"], label: "tech" },
    { parts: ["an update fixes the kernel bug ", bad([0xf4, 0x90, 0x80, 0x80], R + R + R + R), "in the driver"],
      label: "tech" },
    { parts: ["knead the bread dough and let it rise ", bad([0xf0, 0x9f, 0x8d], R)], label: "food" },
    { parts: ["slow cooked beans with garlic and brea", bad([0xfe, 0xfe], R + R), "d"], label: "food" },
    { parts: ["the soup needs more salt and a little ", "café", bad([0xe9], R), " garlic"], label: "food" },
    { parts: ["plain text, valid UTF-8: crème brûlée"], label: "food" },
  ];
  const queries: Part[][] = [
    ["a late go", bad([0xc3], R), "al by the stri", bad([0xff], R), "ker"],
    ["bre", bad([0xe2, 0x82], R), "ad dough and more mem", bad([0xed, 0xa0, 0x80], R + R + R), "ory"],
    [bad([0xc0, 0xaf], R + R), "garlic", bad([0xf0, 0x9f, 0x8d], R)],
    ["crème brûlée and a faster chip"],
  ];
  const config = (name: string, decodeError: disc.DecodeError) => ({
    name,
    vectorizer: { count: { text: { decodeError, analyzer: disc.Analyzer.ANALYZER_CHAR_WB, ngramMin: 1, ngramMax: 3 } } },
  });

  it("spells the ill-formed bytes of the test texts as Node's TextDecoder does (the oracle of replace)", () => {
    for (const parts of [...docs.map((d) => d.parts), ...queries]) {
      assert.equal(spelled(parts, "replace"), new TextDecoder("utf-8").decode(toBytes(parts)));
    }
  });

  for (const [how, decodeError] of [["replace", disc.DecodeError.DECODE_ERROR_REPLACE],
    ["ignore", disc.DecodeError.DECODE_ERROR_IGNORE]] as const) {
    it(`decode_error ${how}: bytes answer as the repaired strings in every RPC that carries texts`, async () => {
      const asBytes = docs.map((d) => ({ text: toBytes(d.parts), label: d.label }));
      const asText = docs.map((d) => ({ text: spelled(d.parts, how), label: d.label }));
      const [fromBytes, fromText] = [`ts-bytes-${how}`, `ts-text-${how}`];
      await client.discriminative.train(config(fromBytes, decodeError), batches(asBytes, 3));
      await client.discriminative.train(config(fromText, decodeError), batches(asText, 3));
      const [a, b] = await Promise.all([fromBytes, fromText].map((name) =>
        client.discriminative.getModel({ model: { name } })));
      assert.deepEqual(a.spec, b.spec);
      assert.deepEqual(a.trainSummary, b.trainSummary);
      assert.equal(a.spec?.vectorizer?.vocabulary.some((term) => term.includes(R)), how === "replace");

      const model = { name: fromText };
      // Bytes and strings in one request; each query as bytes and as its repaired string.
      const texts = queries.flatMap((q) => [toBytes(q), spelled(q, how)]);
      const want = queries.flatMap((q) => [spelled(q, how), spelled(q, how)]);
      const got = await client.discriminative.classify({ model, texts });
      assert.deepEqual(got, await client.discriminative.classify({ model, texts: want }));
      // The comparison can tell replace from ignore: the two repairs classify differently.
      const other = queries.map((q) => spelled(q, how === "replace" ? "ignore" : "replace"));
      assert.notDeepEqual((await client.discriminative.classify({ model, texts: other })).results,
        got.results.filter((_, i) => i % 2 === 0));
      const streamed = await collect(client.discriminative.classifyStream(texts.map((t) => ({ model, texts: [t] }))));
      assert.deepEqual(streamed.map((r) => r.results[0]), got.results);
      assert.deepEqual(await client.discriminative.vectorize({ model, texts, includeFeatureNames: true }),
        await client.discriminative.vectorize({ model, texts: want, includeFeatureNames: true }));
      assert.deepEqual(await client.discriminative.evaluate({ model }, batches(asBytes, 4)),
        await client.discriminative.evaluate({ model }, batches(asText, 4)));
    });
  }

  it("decode_error strict: INVALID_ARGUMENT naming the text and the byte offset; bytes that are UTF-8 work", async () => {
    const plain = docs.map((d) => ({ text: spelled(d.parts, "replace"), label: d.label }));
    await client.discriminative.train(config("ts-bytes-strict", disc.DecodeError.DECODE_ERROR_STRICT), [{ examples: plain }]);
    const model = { name: "ts-bytes-strict" };
    const valid = toBytes(docs[docs.length - 1].parts);
    assert.deepEqual(await client.discriminative.classify({ model, texts: [valid, Buffer.from("café")] }),
      await client.discriminative.classify({ model, texts: [new TextDecoder().decode(valid), "café"] }));
    const broken = queries[1];
    const offset = toBytes(broken.slice(0, broken.findIndex((p) => typeof p !== "string"))).length;
    const mentions = ["texts[2]", "UTF-8", `byte offset ${offset}`];
    const texts = ["fine", valid, toBytes(broken)];
    await rejectsWith(client.discriminative.classify({ model, texts }), status.INVALID_ARGUMENT, ...mentions);
    await rejectsWith(client.discriminative.vectorize({ model, texts }), status.INVALID_ARGUMENT, ...mentions);
    await assert.rejects(collect(client.discriminative.classifyStream([{ model, texts }])),
      (e) => checkError(e, status.INVALID_ARGUMENT, ...mentions) !== undefined);
    const examples = texts.map((text) => ({ text, label: "food" }));
    // Evaluate names the example by its place in the stream: the third of the second batch is example 4.
    await rejectsWith(client.discriminative.evaluate({ model }, [{ examples: examples.slice(0, 2) }, { examples }]),
      status.INVALID_ARGUMENT, "example 4: ", "UTF-8", `byte offset ${offset}`);
    await rejectsWith(client.discriminative.train(config("ts-bytes-never", disc.DecodeError.DECODE_ERROR_STRICT),
      [{ examples: plain }, { examples }]), status.INVALID_ARGUMENT, "batch 1, example 2", "UTF-8", `byte offset ${offset}`);
    await rejectsWith(client.discriminative.getModel({ model: { name: "ts-bytes-never" } }), status.NOT_FOUND);
  });
});

// packedTexts (see packTexts): the texts in one bytes field answer exactly as the same texts sent one per field, on
// the discriminative server directly and through the gateway; a cut buffer and both forms at once are INVALID_ARGUMENT.
describe("packed texts", () => {
  const model = { name: "ts-packed" };
  const texts = ["the striker scored a late goal", "knead the bread dough", Buffer.from("a faster processor"),
    "zebra unicorn", "", "naïve café ☕ 日本 bread"];

  before(async () => {
    await client.discriminative.train({ name: model.name }, batches(corpus, 4));
  });
  after(async () => {
    await client?.discriminative.deleteModel({ name: model.name });
  });

  for (const via of ["direct", "gateway"] as const) {
    it(`classify and vectorize answer as with texts (${via}); a cut buffer is INVALID_ARGUMENT`, async () => {
      const target = new MaasClient(via === "direct" ? stack.discriminative.address : stack.gateway.address);
      try {
        const d = target.discriminative;
        const packedTexts = packTexts(texts);
        for (const compact of [false, true]) {
          const got = await d.classify({ model, packedTexts, compact });
          assert.equal(compact ? got.predicted.length : got.results.length, texts.length);
          assert.deepEqual(got, await d.classify({ model, texts, compact }));
        }
        const rows = await d.vectorize({ model, packedTexts, includeFeatureNames: true });
        assert.equal(rows.rows.length, texts.length);
        assert.deepEqual(rows, await d.vectorize({ model, texts, includeFeatureNames: true }));

        // The last text one byte short; a length itself cut short; both forms at once.
        const short = packedTexts.subarray(0, packedTexts.length - 1);
        await rejectsWith(d.classify({ model, packedTexts: short }), status.INVALID_ARGUMENT,
          `packed_texts: text ${texts.length - 1} at byte`);
        await rejectsWith(d.vectorize({ model, packedTexts: short }), status.INVALID_ARGUMENT, "packed_texts");
        await rejectsWith(d.classify({ model, packedTexts: Buffer.concat([packedTexts, Buffer.from([7, 0])]) }),
          status.INVALID_ARGUMENT, `text ${texts.length}`, "cut short");
        await rejectsWith(d.classify({ model, texts: texts.slice(0, 1), packedTexts }), status.INVALID_ARGUMENT,
          "both texts");
        // Packed bytes that are not UTF-8 meet the model's decode_error (strict: named as in texts).
        const notUtf8 = packTexts(["bread", Buffer.from("café au lait", "latin1")]);
        await rejectsWith(d.classify({ model, packedTexts: notUtf8 }), status.INVALID_ARGUMENT, "texts[1]",
          "byte offset 3");
      } finally {
        target.close();
      }
    });
  }
});

describe("client streams", () => {
  it("stop reading the source when the server refuses the call", async () => {
    // 10 000 batches of 16 KiB (160 MiB: more than any flow-control window lets through before the refusal).
    let pulled = 0;
    const text = "no label ".repeat(1820);
    function* unlabeled() {
      while (pulled < 10_000) {
        pulled++;
        yield { examples: [{ text }] }; // a label is required: the server ends the call at the first batch
      }
    }
    await rejectsWith(client.discriminative.train({ name: "ts-unlabeled" }, unlabeled()), status.INVALID_ARGUMENT, "label");
    assert.ok(pulled < 10_000, "train kept reading batches after the server had refused the call");
  });
});

describe("streams and limits", () => {
  it("leaving a classifyStream loop early cancels the call and stops reading an endless request source", async () => {
    await client.discriminative.train({ name: "ts-bidi" }, [{ examples: corpus }]);
    let done = false; // set when the source has been told to stop
    function* endless() {
      try {
        for (;;) {
          yield { model: { name: "ts-bidi" }, texts: ["a late goal"] };
        }
      } finally {
        done = true;
      }
    }
    let responses = 0;
    for await (const r of client.discriminative.classifyStream(endless())) {
      assert.equal(r.results[0].label, "sports");
      if (++responses === 5) {
        break;
      }
    }
    // Without the cancellation the sender would wait for 'drain' (flow control) and never stop reading the source.
    const deadline = Date.now() + 5_000;
    while (!done) {
      assert.ok(Date.now() < deadline, "the request source is still being read after the loop ended");
      await new Promise((r) => setTimeout(r, 10));
    }
  });

  it("bounds messages by maxMessageBytes", async () => {
    const small = new MaasClient(stack.gateway.address, { maxMessageBytes: 1024 });
    try {
      await small.generative.createModel({ name: "ts-small-messages", spec: { uniform: { low: [0, 0], high: [1, 1] } } });
      await assert.rejects(collect(small.generative.sample({ model: { name: "ts-small-messages" }, numSamples: 1000,
        batchSize: 1000 })), (e) => checkError(e, status.RESOURCE_EXHAUSTED) !== undefined);
    } finally {
      small.close();
    }
  });
});

describe("close", () => {
  it("cancels the calls in flight and refuses later calls with a CANCELLED MaasError", async () => {
    await client.generative.createModel({ name: "ts-close", spec: { uniform: { low: [0, 0], high: [1, 1] } } });
    const closing = new MaasClient(stack.gateway.address);
    await closing.generative.listModels(); // connected
    // A unary call and a long stream in flight, and a client stream whose source is still being read.
    const unary = closing.generative.getModel({ model: { name: "ts-close" } });
    let batches = 0;
    const stream = (async () => {
      for await (const _ of closing.generative.sample({ model: { name: "ts-close" }, numSamples: 200_000,
        batchSize: 100 })) {
        batches++;
      }
    })();
    let release: () => void = () => {};
    const released = new Promise<void>((r) => (release = r));
    async function* slowRows() {
      yield { rows: 1, cols: 2, values: [0.5, 0.5] };
      await released;
      yield { rows: 1, cols: 2, values: [0.25, 0.5] };
    }
    const fit = closing.generative.fitModel({ name: "ts-close-fit", uniform: {} }, slowRows());
    closing.close();
    release();
    await rejectsWith(unary, status.CANCELLED, "closed");
    await assert.rejects(stream, (e) => checkError(e, status.CANCELLED, "closed") !== undefined);
    assert.ok(batches < 2_000, `${batches} batches: the stream ran to its end after close()`);
    await rejectsWith(fit, status.CANCELLED, "closed");
    await rejectsWith(client.generative.getModel({ model: { name: "ts-close-fit" } }), status.NOT_FOUND);
    // Calls after close() fail the same way (a rejected promise, never a plain Error).
    await rejectsWith(closing.gateway.listModels(), status.CANCELLED, "closed");
    await assert.rejects(collect(closing.generative.sample({ model: { name: "ts-close" }, numSamples: 1 })),
      (e) => checkError(e, status.CANCELLED, "closed") !== undefined);
    await rejectsWith(closing.discriminative.train({ name: "ts-close-train" }, []), status.CANCELLED, "closed");
    closing.close(); // again: nothing happens
  });
});

describe("request pumps", () => {
  it("let timers run while a client stream or a bidi stream reads a source that never waits", async () => {
    await client.discriminative.train({ name: "ts-pump" }, [{ examples: corpus }]);
    for (const kind of ["train", "classifyStream"]) {
      // The source stops soon after a timer set before the call has fired (or at a cap far beyond what a pump that
      // yields to the event loop reads before a turn of it).
      const cap = 100_000;
      let produced = 0;
      let firedAt = -1;
      setTimeout(() => (firedAt = produced), 0);
      const more = () => produced < cap && (firedAt < 0 || produced < firedAt + 10);
      if (kind === "train") {
        function* examples() {
          while (more()) {
            produced++;
            yield { examples: [{ text: "the striker scored a late goal", label: "sports" }] };
          }
        }
        await client.discriminative.train({ name: "ts-pump-train" }, examples(), { timeoutMs: 300_000 });
      } else {
        function* requests() {
          while (more()) {
            produced++;
            yield { model: { name: "ts-pump" }, texts: ["a late goal"] };
          }
        }
        await collect(client.discriminative.classifyStream(requests(), { timeoutMs: 300_000 }));
      }
      assert.ok(firedAt >= 0 && firedAt < 5_000, `${kind}: the timer fired after ${firedAt} of ${produced} messages`);
    }
  });
});

describe("argument checks", () => {
  it("refuse NaN chunk sizes, negative timeouts and values the wire format cannot hold, naming them", async () => {
    assert.throws(() => splitRows(matrix([[1, 2]]), NaN), /rowsPerChunk must be a number/);
    assert.throws(() => batches([{ text: "a", label: "b" }], NaN), /perBatch must be a number/);
    assert.deepEqual([...splitRows(matrix([[1, 2], [3, 4]]), 0)].map((m) => m.rows), [1, 1]);
    await client.generative.createModel({ name: "ts-args", spec: { uniform: { low: [0], high: [1] } } });
    const model = { name: "ts-args" };
    await rejectsWith(client.generative.getModel({ model }, { timeoutMs: -1 }), status.INVALID_ARGUMENT, "timeoutMs");
    await assert.rejects(collect(client.generative.sample({ model, numSamples: 1 }, { timeoutMs: NaN })),
      (e) => checkError(e, status.INVALID_ARGUMENT, "timeoutMs") !== undefined);
    assert.throws(() => new MaasClient(stack.gateway.address, { timeoutMs: -1 }), /timeoutMs must be >= 0/);
    await assert.rejects(collect(client.generative.sample({ model, numSamples: 1, seed: -1 })),
      (e) => checkError(e, status.INVALID_ARGUMENT, "field seed = -1") !== undefined);
    await rejectsWith(client.generative.estimateLogLikelihood({ model, x: matrix([[0.5]]), seed: -1 }),
      status.INVALID_ARGUMENT, "field seed = -1");
    await rejectsWith(client.generative.estimateLogLikelihood({ model, x: { rows: -1, cols: 1, values: [0.5] } }),
      status.INVALID_ARGUMENT, "field x.rows = -1");
  });
});

/** f(), failing the test when it throws: a wrapper reports every failure through its promise or its stream. */
function noThrow<T>(what: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    assert.fail(`${what} threw synchronously instead of failing the call: ${String(e)}`);
  }
}

describe("field values", () => {
  it("a value a 64-bit field cannot take is an INVALID_ARGUMENT naming the field, in every kind of call", async () => {
    await client.generative.createModel({ name: "ts-args64", spec: { uniform: { low: [0], high: [1] } } });
    await client.discriminative.train({ name: "ts-args64-text" }, [{ examples: corpus }]);
    const model = { name: "ts-args64" };
    const x = matrix([[0.5]]);
    const unary: [Parameters<typeof client.generative.estimateLogLikelihood>[0], string][] = [
      [{ model, x, seed: 1.5 }, "field seed = 1.5"],
      [{ model, x, seed: "7x" }, 'field seed = "7x"'],
      [{ model, x, numSamples: 1.5 }, "field numSamples = 1.5"],
      [{ model: { ...model, version: 1.5 }, x }, "field model.version = 1.5"],
    ];
    for (const [request, named] of unary) {
      await rejectsWith(noThrow(named, () => client.generative.estimateLogLikelihood(request)),
        status.INVALID_ARGUMENT, named);
    }
    await rejectsWith(noThrow("getModel", () => client.generative.getModel({ model: { ...model, version: "v" } })),
      status.INVALID_ARGUMENT, 'field model.version = "v"');
    // Server streams fail their stream.
    for (const [request, named] of [[{ model, numSamples: 1.5 }, "field numSamples = 1.5"],
      [{ model, numSamples: 1, seed: "7x" }, 'field seed = "7x"']] as const) {
      await assert.rejects(collect(noThrow(named, () => client.generative.sample(request))),
        (e) => checkError(e, status.INVALID_ARGUMENT, named) !== undefined);
    }
    // Client streams reject (their streamed messages have no 64-bit field: the bidi case covers a later message).
    await rejectsWith(noThrow("fitModel", () => client.generative.fitModel(
      { name: "ts-args64-fit", uniform: {}, seed: 1.5 }, [matrix([[0.5]])])), status.INVALID_ARGUMENT,
    "field config.seed = 1.5");
    await rejectsWith(noThrow("train", () => client.discriminative.train(
      { name: "ts-args64-train", vectorizer: { count: { maxFeatures: 2.5 } } }, [{ examples: corpus }])),
    status.INVALID_ARGUMENT, "field config.vectorizer.count.maxFeatures = 2.5");
    // The bidi stream fails its stream, for the first request or a later one.
    for (const requests of [[{ model: { name: "ts-args64-text", version: 1.5 }, texts: ["a late goal"] }],
      [{ model: { name: "ts-args64-text" }, texts: ["a late goal"] },
        { model: { name: "ts-args64-text", version: 1.5 }, texts: ["a goal"] }]]) {
      await assert.rejects(collect(client.discriminative.classifyStream(requests)),
        (e) => checkError(e, status.INVALID_ARGUMENT, "field model.version = 1.5") !== undefined);
    }
    // Nothing was stored.
    await rejectsWith(client.generative.getModel({ model: { name: "ts-args64-fit" } }), status.NOT_FOUND);
    await rejectsWith(client.discriminative.getModel({ model: { name: "ts-args64-train" } }), status.NOT_FOUND);
  });

  it("client and bidi streams name the field the wire format cannot hold, in the first or a later message",
    async () => {
      await client.discriminative.train({ name: "ts-unsendable-text" }, [{ examples: corpus }]);
      await rejectsWith(client.generative.fitModel({ name: "ts-unsendable", uniform: {}, seed: -1 },
        [matrix([[1, 2]])]), status.INVALID_ARGUMENT, "field config.seed = -1");
      await rejectsWith(client.generative.fitModel({ name: "ts-unsendable", uniform: {} },
        [matrix([[1, 2]]), { rows: -1, cols: 2, values: [3, 4] }]), status.INVALID_ARGUMENT, "field rows.rows = -1");
      const text = { model: { name: "ts-unsendable-text" }, texts: ["a late goal"] };
      for (const requests of [[{ ...text, topK: -1 }], [text, text, { ...text, topK: -2 }, { ...text, topK: -3 }]]) {
        const named = `field topK = ${requests.length === 1 ? -1 : -2}`;
        await assert.rejects(collect(client.discriminative.classifyStream(requests)),
          (e) => checkError(e, status.INVALID_ARGUMENT, named) !== undefined);
      }
      await rejectsWith(client.generative.getModel({ model: { name: "ts-unsendable" } }), status.NOT_FOUND);
    });
});

describe("strings that are not text", () => {
  it("a lone surrogate in a label, name or other string field is an INVALID_ARGUMENT naming the field, nothing stored",
    async () => {
      // UTF-8 cannot hold a lone surrogate: the encoder wrote U+FFFD instead, and the model was stored with a class
      // name that is not the label given.
      const bad = "sport\uD800";
      const model = { name: "ts-surrogate" };
      await rejectsWith(client.discriminative.train(model, [{ examples: [{ text: "goal match", label: "sport" },
        { text: "bread dough", label: "food" }] }, { examples: [{ text: "goal", label: bad }] }]),
      status.INVALID_ARGUMENT, "field batch.examples[0].label", "lone surrogate U+D800 at character 5");
      await rejectsWith(client.discriminative.train({ ...model, labels: { team: "\uDC00a" } },
        [{ examples: corpus }]), status.INVALID_ARGUMENT, "field config.labels.team", "U+DC00 at character 0");
      await rejectsWith(client.discriminative.train({ name: bad }, [{ examples: corpus }]), status.INVALID_ARGUMENT,
        "field config.name");
      await rejectsWith(client.generative.fitModel({ ...model, uniform: {}, description: bad }, [matrix([[0.5]])]),
        status.INVALID_ARGUMENT, "field config.description");
      await rejectsWith(client.generative.createModel({ ...model, labels: { [bad]: "x" },
        spec: { uniform: { low: [0], high: [1] } } }), status.INVALID_ARGUMENT, "field labels");
      await rejectsWith(client.discriminative.getModel({ model: { name: bad } }), status.INVALID_ARGUMENT,
        "field model.name");
      await rejectsWith(client.gateway.listModels({ namePrefix: bad }), status.INVALID_ARGUMENT, "field namePrefix");
      await rejectsWith(client.discriminative.deleteModel({ name: bad }), status.INVALID_ARGUMENT, "field name");
      await assert.rejects(collect(client.generative.sample({ model: { name: bad }, numSamples: 1 })),
        (e) => checkError(e, status.INVALID_ARGUMENT, "field model.name") !== undefined);
      await assert.rejects(collect(client.discriminative.classifyStream([{ model: { name: "ts-none" }, texts: ["a"] },
        { model: { name: bad }, texts: ["a"] }])),
      (e) => checkError(e, status.INVALID_ARGUMENT, "field model.name") !== undefined);
      await rejectsWith(client.discriminative.getModel({ model }), status.NOT_FOUND);
      await rejectsWith(client.generative.getModel({ model }), status.NOT_FOUND);
      // Texts are not checked: a string text is sent as UTF-8, a lone surrogate as U+FFFD (texts.ts; a Uint8Array
      // text is sent as its bytes).
      await client.discriminative.train(model, [{ examples: corpus }]);
      const answer = await client.discriminative.classify({ model, texts: ["a late goal\uD800"] });
      assert.equal(answer.results.length, 1);
      await client.discriminative.deleteModel(model);
    });
});

describe("far deadlines", () => {
  it("timeoutMs of Infinity, or ending after what servers can hold (2262), is no deadline, per call and client-wide",
    async () => {
      await client.generative.createModel({ name: "ts-far", spec: { uniform: { low: [0], high: [1] } } });
      const model = { name: "ts-far" };
      const rows = [matrix([[0.25], [0.75]])];
      const year = 365.25 * 86_400_000;
      // 1e15 and beyond: grpc-js cannot send them (1e15 threw on an async path, killing the process); 300 years and
      // 99 999 999 hours (the longest grpc-timeout) end after 2262, which the servers read as passed; 100 years is a
      // deadline.
      for (const timeoutMs of [Infinity, 1e16, 1e15, Number.MAX_VALUE, 99_999_999 * 3_600_000, 300 * year, 1e13,
        100 * year]) {
        assert.ok((await client.gateway.listModels({}, { timeoutMs })).models.length > 0, `${timeoutMs}`);
        assert.equal((await client.generative.getModel({ model }, { timeoutMs })).info?.name, "ts-far");
        assert.equal((await collect(client.generative.sample({ model, numSamples: 3 }, { timeoutMs }))).length, 1);
        await client.generative.fitModel({ name: "ts-far-fit", uniform: {} }, rows, { timeoutMs });
        const far = new MaasClient(stack.gateway.address, { timeoutMs });
        try {
          assert.ok((await far.generative.listModels()).models.length > 0);
          await far.generative.fitModel({ name: "ts-far-fit", uniform: {} }, rows);
        } finally {
          far.close();
        }
      }
      await rejectsWith(client.generative.getModel({ model }, { timeoutMs: -Infinity }), status.INVALID_ARGUMENT,
        "timeoutMs");
      assert.throws(() => new MaasClient(stack.gateway.address, { timeoutMs: -Infinity }), /timeoutMs must be >= 0/);
    });
});

describe("values", () => {
  it("matrix() packs rows of any width", () => {
    const wide = Array.from({ length: 200_000 }, (_, i) => i);
    const m = matrix([wide, wide.map((v) => -v)]);
    assert.equal(m.rows, 2);
    assert.equal(m.cols, 200_000);
    assert.equal(m.values.length, 400_000);
    assert.equal(m.values[199_999], 199_999);
    assert.equal(m.values[200_001], -1);
    assert.deepEqual(toRows(m), [wide, wide.map((v) => -v)]);
  });
});

describe("gateway", () => {
  it("lists the models of both backends and reports both backends SERVING", async () => {
    await client.generative.createModel({ name: "ts-gw-box", spec: { uniform: { low: [0], high: [1] } } });
    await client.discriminative.train({ name: "ts-gw-text" }, [{ examples: corpus }]);
    const list = await client.gateway.listModels({ namePrefix: "ts-gw-" });
    assert.deepEqual(list.models.map((m) => m.type), [common.ModelType.GENERATIVE, common.ModelType.DISCRIMINATIVE]);
    const deadline = Date.now() + 10_000;
    for (;;) {
      const backends = await client.gateway.getBackends();
      if (backends.backends.length === 2 && backends.backends.every((b) => b.health === gw.BackendHealth.SERVING)) {
        break;
      }
      assert.ok(Date.now() < deadline, `GetBackends: ${JSON.stringify(gw.GetBackendsResponse.toJSON(backends))}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    // Health: the gateway's own service is SERVING; an unknown service never is.
    await client.waitServing("maas.gateway.v1.Gateway", 10_000);
    await assert.rejects(client.waitServing("no.such.Service", 500), /not SERVING within 500 ms.*NOT_FOUND/);
    // The generative service alone does not serve the Gateway service.
    const direct = new MaasClient(stack.generative.address);
    try {
      // gRPC's own answer for a service the server lacks (with an empty message).
      await assert.rejects(direct.gateway.getBackends(), (e) => isMaasError(e, status.UNIMPLEMENTED));
    } finally {
      direct.close();
    }
  });
});

/** The code block after the line "<!-- example: path ... -->" in README.md, and the output block after it. */
function readmeExample(readme: string, path: string): [string, string] {
  const start = readme.indexOf(`<!-- example: ${path}`);
  assert.ok(start >= 0, `README.md has no <!-- example: ${path} --> marker`);
  const blocks = [...readme.slice(start).matchAll(/\n```[^\n]*\n([\s\S]*?)```/g)].slice(0, 2).map((m) => m[1]);
  assert.equal(blocks.length, 2, `README.md: the ${path} example needs a code block and an output block`);
  return [blocks[0], blocks[1]];
}

describe("README", () => {
  it("shows examples/quickstart.ts verbatim, and running it prints the output the README shows", async () => {
    // Compiled layout: dist/test/client.test.js, dist/examples/quickstart.js; sources in clients/node.
    const nodeDir = join(__dirname, "..", "..");
    const readme = readFileSync(join(nodeDir, "..", "..", "README.md"), "utf8");
    const [code, output] = readmeExample(readme, "clients/node/examples/quickstart.ts");
    assert.equal(code, readFileSync(join(nodeDir, "examples", "quickstart.ts"), "utf8"),
      "README.md's TypeScript example differs from clients/node/examples/quickstart.ts: copy the file into the README");
    const { stdout } = await promisify(execFile)(process.execPath, [join(nodeDir, "dist", "examples", "quickstart.js")], {
      env: { ...process.env, MAAS_TARGET: stack.gateway.address }, timeout: 60_000 });
    assert.equal(stdout, output);
  });
});
