// ListModels paging: listModelsPages and listAllModels against the real binaries (listings of both types, with
// unreadable versions, longer than a page; tokens resumed, across the gateway and the services too, and refused with
// another listing; a store beyond a small --max_message_bytes), and against fake servers for what the real ones
// cannot be made to do (ignore pageSize as servers older than paging do, a token that does not advance, ...).
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { sendUnaryData, Server as GrpcServer, ServerCredentials, ServerUnaryCall, ServiceError } from "@grpc/grpc-js";

import {
  CallOptions, common, DEFAULT_MAX_MESSAGE_BYTES, gateway as gw, isMaasError, MaasClient, MAX_PAGE_SIZE, status,
} from "../src/index";
import { Stack } from "./servers";

type Request = common.DeepPartial<common.ListModelsRequest>;
type Response = common.ListModelsResponse;

/** One entry of a listing: a model (readable) or an unreadable version. */
interface Entry {
  name: string;
  version: bigint;
  type: common.ModelType;
  readable: boolean;
}

function show(entries: Entry[]): string {
  return entries.map((e) => `${e.name}@${e.version}/${common.modelTypeToJSON(e.type)}${e.readable ? "" : "!"}`)
    .join(" ");
}

/** The listing's order: name, then version, then type. */
function compareEntries(a: Entry, b: Entry): number {
  if (a.name !== b.name) {
    return a.name < b.name ? -1 : 1;
  }
  if (a.version !== b.version) {
    return a.version < b.version ? -1 : 1;
  }
  return a.type - b.type;
}

function modelEntries(resp: Response): Entry[] {
  return resp.models.map((m) => ({ name: m.name, version: m.version, type: m.type, readable: true }));
}

function unreadableEntries(resp: Response): Entry[] {
  return resp.unreadableVersions.map((u) => ({ name: u.name, version: u.version, type: u.type, readable: false }));
}

/** The entries of a response (models and unreadableVersions together) in the listing's order; each list checked. */
function pageEntries(resp: Response): Entry[] {
  const models = modelEntries(resp);
  const unreadable = unreadableEntries(resp);
  for (const list of [models, unreadable]) {
    for (let i = 1; i < list.length; i++) {
      assert.ok(compareEntries(list[i - 1], list[i]) < 0, `out of order (or repeated): ${show(list.slice(i - 1, i + 1))}`);
    }
  }
  return [...models, ...unreadable].sort(compareEntries);
}

function sameEntries(got: Entry[], want: Entry[], what: string): void {
  assert.equal(show(got), show(want), what);
}

const ofType = (type: common.ModelType) => (e: Entry) => e.type === type;
const following = (last: Entry) => (e: Entry) => compareEntries(e, last) > 0;

const PREFIX = "ts-page-";
const corpus = [
  { text: "the striker scored a late goal", label: "sports" },
  { text: "knead the bread dough and let it rise", label: "food" },
];

interface Endpoint {
  name: string;
  list: (r: Request, o?: CallOptions) => Promise<Response>;
  all: (r?: Request, o?: CallOptions) => Promise<Response>;
  pages: (r: Request, o?: CallOptions) => AsyncGenerator<Response, void, undefined>;
  keep: (e: Entry) => boolean;
}

describe("paging against the real servers", () => {
  let stack: Stack;
  const clients: MaasClient[] = [];
  let endpoints: Endpoint[];
  let latest: Entry[] = [];
  let every: Entry[] = [];

  /**
   * Stores, under PREFIX, 13 generative models (one with 2 versions), 5 discriminative ones (one named as a generative
   * model: the two differ by type only) and one unreadable version per service (an empty or foreign file written into
   * the store directly).
   */
  before(async () => {
    stack = await Stack.start();
    const connect = (address: string) => {
      const c = new MaasClient(address, { timeoutMs: 10_000 });
      clients.push(c);
      return c;
    };
    const c = connect(stack.gateway.address);
    for (const s of [stack.generative, stack.discriminative, stack.gateway]) {
      await connect(s.address).waitServing("", 15_000);
    }
    const G = common.ModelType.GENERATIVE;
    const D = common.ModelType.DISCRIMINATIVE;
    for (let i = 0; i < 12; i++) {
      const name = `${PREFIX}g${String(i).padStart(2, "0")}`;
      await c.generative.createModel({ name, spec: { uniform: { low: [0], high: [1] } } });
      if (i === 3) {
        await c.generative.createModel({ name, spec: { uniform: { low: [0], high: [2] } } });
        every.push({ name, version: 1n, type: G, readable: true });
        latest.push({ name, version: 2n, type: G, readable: true });
      } else {
        latest.push({ name, version: 1n, type: G, readable: true });
      }
    }
    await c.generative.createModel({ name: `${PREFIX}both`, spec: { uniform: { low: [0], high: [1] } } });
    latest.push({ name: `${PREFIX}both`, version: 1n, type: G, readable: true });
    for (const name of [0, 1, 2, 3].map((i) => `${PREFIX}d${String(i).padStart(2, "0")}`).concat(`${PREFIX}both`)) {
      await c.discriminative.train({ name }, [{ examples: corpus }]);
      latest.push({ name, version: 1n, type: D, readable: true });
    }
    for (const [service, type, content] of [["generative", G, ""], ["discriminative", D, "not a model"]] as const) {
      const name = `${PREFIX}bad-${service}`;
      mkdirSync(join(stack.root, service, name, "1"), { recursive: true });
      writeFileSync(join(stack.root, service, name, "1", "model.pb"), content);
      latest.push({ name, version: 1n, type, readable: false });
    }
    every = [...every, ...latest].sort(compareEntries);
    latest.sort(compareEntries);

    const g = connect(stack.generative.address).generative;
    const d = connect(stack.discriminative.address).discriminative;
    endpoints = [
      { name: "gateway", list: (r, o) => c.gateway.listModels(r, o), all: (r, o) => c.gateway.listAllModels(r, o),
        pages: (r, o) => c.gateway.listModelsPages(r, o), keep: () => true },
      { name: "generative", list: (r, o) => g.listModels(r, o), all: (r, o) => g.listAllModels(r, o),
        pages: (r, o) => g.listModelsPages(r, o), keep: ofType(G) },
      { name: "discriminative", list: (r, o) => d.listModels(r, o), all: (r, o) => d.listAllModels(r, o),
        pages: (r, o) => d.listModelsPages(r, o), keep: ofType(D) },
    ];
  });

  after(async () => {
    clients.forEach((c) => c.close());
    await stack?.stop();
  });

  it("yields every page in order, every entry exactly once, through the gateway and from each service", async () => {
    for (const ep of endpoints) {
      for (const allVersions of [false, true]) {
        const want = (allVersions ? every : latest).filter(ep.keep);
        for (const pageSize of [1, 3, 7]) {
          const what = `${ep.name}, allVersions ${allVersions}, pages of ${pageSize}`;
          const got: Entry[] = [];
          const tokens: string[] = [];
          for await (const page of ep.pages({ namePrefix: PREFIX, allVersions, pageSize })) {
            const entries = pageEntries(page);
            assert.ok(entries.length <= pageSize, `${what}: a page of ${entries.length}`);
            got.push(...entries);
            tokens.push(page.nextPageToken);
          }
          sameEntries(got, want, what);
          assert.ok(want.length <= pageSize || tokens.length >= 2, `${what}: ${got.length} entries in ${tokens.length} page(s)`);
          tokens.forEach((t, i) => assert.ok((t === "") === (i === tokens.length - 1) && !tokens.slice(0, i).includes(t),
            `${what}: nextPageTokens ${JSON.stringify(tokens)}`));
        }
      }
    }
  });

  it("listAllModels is the whole listing, the same as one answer and as small pages", async () => {
    for (const ep of endpoints) {
      for (const allVersions of [false, true]) {
        const want = (allVersions ? every : latest).filter(ep.keep);
        const what = `${ep.name} listAllModels, allVersions ${allVersions}`;
        const request = { namePrefix: PREFIX, allVersions };
        const all = await ep.all(request);
        assert.deepEqual(request, { namePrefix: PREFIX, allVersions }, "listAllModels changed its request");
        sameEntries(modelEntries(all), want.filter((e) => e.readable), `${what}: models`);
        sameEntries(unreadableEntries(all), want.filter((e) => !e.readable), `${what}: unreadableVersions`);
        assert.deepEqual([all.missingBackends, all.nextPageToken], [[], ""], what);
        const single = await ep.list(request);
        assert.equal(single.nextPageToken, "", `${what}: pageSize 0 answered a token`);
        assert.deepEqual(single, all, `${what}: differs from one answer`);
        assert.deepEqual(await ep.all({ ...request, pageSize: 2 }), all, `${what}: differs from pages of 2`);
      }
    }
    // Through the gateway the listing mixes both types: a generative and a discriminative model of one name are two
    // entries, ordered by type.
    const [gateway] = endpoints;
    sameEntries(modelEntries(await gateway.all({ namePrefix: `${PREFIX}b` })), [
      { name: `${PREFIX}both`, version: 1n, type: common.ModelType.GENERATIVE, readable: true },
      { name: `${PREFIX}both`, version: 1n, type: common.ModelType.DISCRIMINATIVE, readable: true }], "mixed");
    sameEntries(pageEntries(await gateway.all()), latest, "listAllModels() on this stack");
  });

  it("resumes a listing from a token, refuses a token sent with another listing", async () => {
    for (const ep of endpoints) {
      const want = latest.filter(ep.keep);
      const first = await ep.list({ namePrefix: PREFIX, pageSize: 2 });
      const firstEntries = pageEntries(first);
      assert.ok(first.nextPageToken !== "" && firstEntries.length > 0 && firstEntries.length <= 2, ep.name);
      const rest = await ep.all({ namePrefix: PREFIX, pageSize: 3, pageToken: first.nextPageToken });
      sameEntries([...firstEntries, ...pageEntries(rest)], want, `${ep.name}: first page + the rest`);
      const token = first.nextPageToken;
      for (const bad of [
        { namePrefix: `${PREFIX}g`, pageSize: 2, pageToken: token },
        { namePrefix: "", pageSize: 2, pageToken: token },
        { namePrefix: PREFIX, allVersions: true, pageSize: 2, pageToken: token },
        { namePrefix: PREFIX, pageToken: token },
        { namePrefix: PREFIX, pageSize: -1 },
      ]) {
        await assert.rejects(ep.list(bad), (e) => isMaasError(e, status.INVALID_ARGUMENT),
          `${ep.name}: ${JSON.stringify(bad)}`);
      }
      // listAllModels passes the refusal on, naming the RPC.
      await assert.rejects(ep.all({ namePrefix: `${PREFIX}d`, pageToken: token }),
        (e) => isMaasError(e, status.INVALID_ARGUMENT) && e.rpc.endsWith(".ListModels"), ep.name);
    }
  });

  it("takes tokens from the gateway on the services and the reverse", async () => {
    const [gateway, ...services] = endpoints;
    for (const pageSize of [2, 5]) {
      // A gateway page (of both types), continued on each service: that service's entries after it.
      const page = await gateway.list({ namePrefix: PREFIX, pageSize });
      const last = pageEntries(page).at(-1)!;
      for (const ep of services) {
        const rest = await ep.all({ namePrefix: PREFIX, pageToken: page.nextPageToken });
        sameEntries(pageEntries(rest), latest.filter(ep.keep).filter(following(last)), `gateway token on ${ep.name}`);
      }
      // A service's page, continued on the gateway: the entries of both types after it.
      for (const ep of services) {
        const own = await ep.list({ namePrefix: PREFIX, pageSize });
        const rest = await gateway.all({ namePrefix: PREFIX, pageToken: own.nextPageToken });
        sameEntries(pageEntries(rest), latest.filter(following(pageEntries(own).at(-1)!)), `${ep.name} token on the gateway`);
      }
    }
  });
});

describe("a listing beyond the largest message", () => {
  it("is refused as one answer and listed whole by listAllModels, in pages that each fit", async () => {
    const cap = 256 << 10;
    const capArgs = ["--max_message_bytes", String(cap)];
    const stack = await Stack.start(capArgs, capArgs);
    const c = new MaasClient(stack.gateway.address, { timeoutMs: 10_000 });
    const direct = new MaasClient(stack.generative.address, { timeoutMs: 10_000 });
    try {
      await direct.waitServing("", 15_000);
      await c.waitServing("", 15_000);
      // 12 models of 64 labels of 256 + 256 bytes (the limits): about 33 KiB of ModelInfo each, 400 KiB together.
      const labels: Record<string, string> = {};
      for (let i = 0; i < 64; i++) {
        labels[String(i).padStart(2, "0") + "k".repeat(254)] = "v".repeat(256);
      }
      const names = Array.from({ length: 12 }, (_, i) => `ts-cap-${String(i).padStart(2, "0")}`);
      for (const name of names) {
        await c.generative.createModel({ name, spec: { uniform: { low: [0], high: [1] } }, labels });
      }
      await assert.rejects(direct.generative.listModels(), (e) => isMaasError(e, status.RESOURCE_EXHAUSTED));
      let pages = 0;
      const got: string[] = [];
      for await (const page of direct.generative.listModelsPages()) {
        const size = common.ListModelsResponse.encode(page).finish().length;
        assert.ok(size <= cap, `a page of ${size} bytes`);
        pages++;
        got.push(...page.models.map((m) => m.name));
      }
      assert.deepEqual(got, names);
      assert.ok(pages >= 2, `${names.length} models of 33 KiB in ${pages} page(s)`);
      for (const all of [await direct.generative.listAllModels(), await c.gateway.listAllModels()]) {
        assert.deepEqual(all.models.map((m) => m.name), names);
        assert.deepEqual(all.missingBackends, []);
        assert.equal(Object.keys(all.models[11].labels).length, 64);
      }
    } finally {
      c.close();
      direct.close();
      await stack.stop();
    }
  });
});

describe("a client that receives less than the servers send", () => {
  it("lists every model once, asking for pages no larger than its maxMessageBytes", async () => {
    // Servers at their default --max_message_bytes (64 MiB), clients at 128 KiB: a page of 1000 of these models
    // (~4 KiB each) is larger than the clients take (before they sent maxPageBytes: RESOURCE_EXHAUSTED, received
    // message larger than max).
    const limit = 128 << 10;
    const stack = await Stack.start();
    const c = new MaasClient(stack.gateway.address, { timeoutMs: 10_000 });
    const gateway = new MaasClient(stack.gateway.address, { timeoutMs: 10_000, maxMessageBytes: limit });
    const direct = new MaasClient(stack.generative.address, { timeoutMs: 10_000, maxMessageBytes: limit });
    try {
      await c.waitServing("", 15_000);
      await direct.waitServing("", 15_000);
      const names = Array.from({ length: 80 }, (_, i) => `ts-small-${String(i).padStart(2, "0")}`);
      for (const name of names) {
        await c.generative.createModel({ name, spec: { uniform: { low: [0], high: [1] } }, description: "d".repeat(4000) });
      }
      const first = await c.generative.listModels({ pageSize: MAX_PAGE_SIZE });
      const size = common.ListModelsResponse.encode(first).finish().length;
      assert.ok(size > limit, `the premise: a page of 1000 at the servers' limit is ${size} bytes`);
      let pages = 0;
      for await (const page of direct.generative.listModelsPages()) {
        assert.ok(page.models.length > 0);
        pages++;
      }
      assert.ok(pages >= 3, `${names.length} models of 4 KiB in ${pages} page(s) of at most ${limit} bytes`);
      for (const all of [await direct.generative.listAllModels(), await gateway.gateway.listAllModels()]) {
        assert.deepEqual(all.models.map((m) => m.name), names);
      }
      // One page asked for with listModels is within the client's limit too (a review: it was not).
      for (const one of [await direct.generative.listModels({ pageSize: MAX_PAGE_SIZE }),
        await gateway.gateway.listModels({ pageSize: MAX_PAGE_SIZE })]) {
        assert.ok(one.models.length > 0 && one.models.length < names.length && one.nextPageToken !== "");
      }
    } finally {
      c.close();
      gateway.close();
      direct.close();
      await stack.stop();
    }
  });
});

/** A fake gateway answering ListModels with answer(request, index of the call), recording the requests. */
async function fakeGateway(answer: (request: common.ListModelsRequest, call: number) => Response | Partial<ServiceError>,
  delayMs = 0): Promise<{ client: MaasClient; requests: common.ListModelsRequest[]; stop: () => void }> {
  const requests: common.ListModelsRequest[] = [];
  const server = new GrpcServer();
  server.addService(gw.GatewayService, {
    listModels: (call: ServerUnaryCall<common.ListModelsRequest, Response>, callback: sendUnaryData<Response>) => {
      requests.push(call.request);
      const result = answer(call.request, requests.length - 1);
      setTimeout(() => ("models" in result ? callback(null, result as Response) : callback(result)), delayMs);
    },
    getBackends: (_call: unknown, callback: sendUnaryData<gw.GetBackendsResponse>) => {
      callback({ code: status.UNIMPLEMENTED });
    },
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p)));
  });
  const client = new MaasClient(`127.0.0.1:${port}`, { timeoutMs: 10_000 });
  return { client, requests, stop: () => { client.close(); server.forceShutdown(); } };
}

function response(names: string[], more: Partial<Response> = {}): Response {
  return common.ListModelsResponse.fromPartial({
    models: names.map((name) => ({ name, version: 1, type: common.ModelType.GENERATIVE })), ...more });
}

describe("paging against fake servers", () => {
  it("a server older than paging answers everything at once: one page", async () => {
    const fake = await fakeGateway(() => response(["a", "b", "c"], {
      unreadableVersions: [{ name: "bad", version: 1n, type: common.ModelType.GENERATIVE, code: "DATA_LOSS", message: "" }] }));
    try {
      const all = await fake.client.gateway.listAllModels({ allVersions: true });
      assert.deepEqual(all.models.map((m) => m.name), ["a", "b", "c"]);
      assert.equal(all.unreadableVersions.length, 1);
      // maxPageBytes: the client's receive limit (maxMessageBytes), unless the request sets one.
      assert.deepEqual(fake.requests, [common.ListModelsRequest.fromPartial({
        allVersions: true, pageSize: MAX_PAGE_SIZE, maxPageBytes: BigInt(DEFAULT_MAX_MESSAGE_BYTES) })]);
      await fake.client.gateway.listAllModels({ maxPageBytes: 5000n });
      assert.equal(fake.requests[1].maxPageBytes, 5000n);
    } finally {
      fake.stop();
    }
  });

  it("sends each page's token with the same request, collects missing backends once each", async () => {
    const pages = [
      response(["a"], { missingBackends: ["discriminative: UNAVAILABLE: down"], nextPageToken: "t1" }),
      response(["b"], { missingBackends: ["generative: UNAVAILABLE: down", "discriminative: UNAVAILABLE: down"],
        nextPageToken: "t2" }),
      response(["c"], { missingBackends: ["discriminative: UNAVAILABLE: down"] }),
    ];
    const fake = await fakeGateway((_, call) => pages[call]);
    try {
      const all = await fake.client.gateway.listAllModels({ namePrefix: "x", pageSize: 1 });
      assert.deepEqual(all.models.map((m) => m.name), ["a", "b", "c"]);
      assert.deepEqual(all.missingBackends, ["discriminative: UNAVAILABLE: down", "generative: UNAVAILABLE: down"]);
      assert.deepEqual(fake.requests.map((r) => [r.namePrefix, r.pageSize, r.pageToken]),
        [["x", 1, ""], ["x", 1, "t1"], ["x", 1, "t2"]]);
    } finally {
      fake.stop();
    }
  });

  it("a token that does not advance is an error, not an endless loop", async () => {
    const fake = await fakeGateway(() => response(["a"], { nextPageToken: "same" }));
    try {
      await assert.rejects(fake.client.gateway.listAllModels(),
        (e) => isMaasError(e, status.INTERNAL) && e.rpc === "Gateway.ListModels" && e.details.includes("does not advance"));
      assert.equal(fake.requests.length, 2);
    } finally {
      fake.stop();
    }
  });

  it("tokens that cycle are an error, not an endless loop", async () => {
    // A review: tokens A, B, A, ... looped forever (only a token answered straight back was caught).
    const fake = await fakeGateway((request) => response(["a"], { nextPageToken: request.pageToken === "A" ? "B" : "A" }));
    try {
      await assert.rejects(fake.client.gateway.listAllModels(),
        (e) => isMaasError(e, status.INTERNAL) && e.details.includes("does not advance"));
      assert.equal(fake.requests.length, 3);
    } finally {
      fake.stop();
    }
  });

  it("an error on a later page ends the listing; leaving the loop stops it", async () => {
    const fake = await fakeGateway((request) => request.pageToken === ""
      ? response(["a"], { nextPageToken: "t1" }) : { code: status.UNAVAILABLE, details: "backend gone" });
    try {
      await assert.rejects(fake.client.gateway.listAllModels(), (e) => isMaasError(e, status.UNAVAILABLE));
      const seen: string[] = [];
      await assert.rejects((async () => {
        for await (const page of fake.client.gateway.listModelsPages()) {
          seen.push(...page.models.map((m) => m.name));
        }
      })(), (e) => isMaasError(e, status.UNAVAILABLE));
      assert.deepEqual(seen, ["a"]);
      const before = fake.requests.length;
      for await (const _ of fake.client.gateway.listModelsPages()) {
        break;
      }
      assert.equal(fake.requests.length - before, 1);
    } finally {
      fake.stop();
    }
  });

  // A deadline per page (or none) would page forever: the test's own timeout ends that.
  it("timeoutMs bounds the whole listing, not each page", { timeout: 60_000 }, async () => {
    // Endless pages of 50 ms each.
    const fake = await fakeGateway((_, call) => response([`m${call}`], { nextPageToken: `t${call}` }), 50);
    try {
      await assert.rejects(fake.client.gateway.listAllModels({}, { timeoutMs: 300 }),
        (e) => isMaasError(e, status.DEADLINE_EXCEEDED));
    } finally {
      fake.stop();
    }
  });
});
