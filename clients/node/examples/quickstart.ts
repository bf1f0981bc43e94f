// Quickstart: one model of each kind through the gateway at $MAAS_TARGET (default 127.0.0.1:50051).
import { batches, generative, isMaasError, MaasClient, matrix, toRows } from "@maas-project/maas-client";

async function main(): Promise<void> {
  const client = new MaasClient(process.env.MAAS_TARGET ?? "127.0.0.1:50051");
  try {
    // A uniform box [0,1] x [-1,1]: store it, stream 3 samples (seeded), estimate log p(x) exactly.
    await client.generative.createModel({ name: "ts-box", spec: { uniform: { low: [0, -1], high: [1, 1] } } });
    for await (const batch of client.generative.sample({ model: { name: "ts-box" }, numSamples: 3, seed: 7 })) {
      for (const row of toRows(batch.x!)) {
        console.log("sample", row);
      }
    }
    const est = await client.generative.estimateLogLikelihood({
      model: { name: "ts-box" }, x: matrix([[0.5, 0], [2, 0]]), estimator: generative.Estimator.EXACT });
    for (const row of est.rows) {
      console.log("log p(x)", row.logLikelihood.toFixed(6));
    }

    // A text classifier (CountVectorizer + MultinomialNB) trained from streamed batches.
    const examples = [
      { text: "the striker scored a late goal", label: "sports" },
      { text: "the keeper saved a penalty", label: "sports" },
      { text: "a faster chip and more memory", label: "tech" },
      { text: "the update fixes a kernel bug", label: "tech" },
    ];
    await client.discriminative.train({ name: "ts-text" }, batches(examples, 2));
    const resp = await client.discriminative.classify({
      model: { name: "ts-text" }, texts: ["a goal in the last minute"], topK: 1 });
    const top = resp.results[0].scores[0];
    console.log("label", top.label, `p=${top.probability.toFixed(4)}`);

    // Failures are MaasError values carrying the gRPC status code and the server's message.
    try {
      await client.generative.getModel({ model: { name: "no-such-model" } });
    } catch (e) {
      if (isMaasError(e)) {
        console.log("error", e.codeName);
      }
    }
  } finally {
    client.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
