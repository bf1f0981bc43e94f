// TLS, mutual TLS and the bearer token against a real generative server started with --tls_cert_file,
// --tls_client_ca_file and --auth_token_file (certificates made by openssl in the test).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";

import { MaasClient, MaasError, status } from "../src/index";
import { Server } from "./servers";

let dir: string;
let server: Server;
const pki = (name: string) => join(dir, name);

function openssl(...args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: "pipe", timeout: 60_000 });
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "maas-node-tls-"));
  openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
    "-subj", "/CN=maas ts test CA", "-keyout", "ca.key", "-out", "ca.pem");
  writeFileSync(pki("server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  for (const name of ["server", "client"]) {
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", `/CN=maas ${name}`,
      "-keyout", `${name}.key`, "-out", `${name}.csr`);
    openssl("x509", "-req", "-in", `${name}.csr`, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
      "-out", `${name}.pem`, ...(name === "server" ? ["-extfile", "server.ext"] : []));
  }
  writeFileSync(pki("token"), "  ts-s3cret\n");
  server = await Server.start("maas-generative", ["--model_dir", pki("models"), "--tls_cert_file", pki("server.pem"),
    "--tls_key_file", pki("server.key"), "--tls_client_ca_file", pki("ca.pem"), "--auth_token_file", pki("token")]);
});

after(async () => {
  try {
    await server?.stop();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

async function code(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return "OK";
  } catch (e) {
    assert.ok(e instanceof MaasError, String(e));
    return e.codeName;
  }
}

it("needs TLS, a client certificate and the token for writes", async () => {
  const tls = { caFile: pki("ca.pem"), certFile: pki("client.pem"), keyFile: pki("client.key") };
  const create = (c: MaasClient) => c.generative.createModel({ name: "ts-secure", spec: { uniform: { low: [0], high: [1] } } });
  const clients: MaasClient[] = [];
  const make = (options: ConstructorParameters<typeof MaasClient>[1]) => {
    const c = new MaasClient(server.address, { timeoutMs: 10_000, ...options });
    clients.push(c);
    return c;
  };
  try {
    assert.equal(await code(create(make({ tls, tokenFile: pki("token") }))), "OK");
    const noToken = make({ tls });
    assert.equal(await code(create(noToken)), "UNAUTHENTICATED");
    assert.equal(await code(noToken.generative.listModels()), "OK"); // reads need no token
    assert.equal(await code(create(make({ tls, token: "not-it" }))), "PERMISSION_DENIED");
    // Without a client certificate, or in plaintext, the handshake fails.
    assert.equal(await code(make({ tls: { caFile: pki("ca.pem") }, token: "ts-s3cret" }).generative.listModels()),
      status[status.UNAVAILABLE]);
    assert.equal(await code(make({}).generative.listModels()), "UNAVAILABLE");
  } finally {
    clients.forEach((c) => c.close());
  }
  // Bad options fail at construction, naming what is wrong.
  assert.throws(() => new MaasClient(server.address, { token: "  " }), /token is empty/);
  assert.throws(() => new MaasClient(server.address, { tokenFile: pki("missing") }), /token file/);
  assert.throws(() => new MaasClient(server.address, { token: "ts-s3cret", tokenFile: pki("token") }), /not both/);
  assert.throws(() => new MaasClient(server.address, { tls: { certFile: pki("client.pem") } }), /both/);
});

it("refuses a token that cannot be a header value at construction, without quoting it", () => {
  // It used to be taken, and every call then failed with a plain Error quoting "Bearer <token>" (into logs).
  const tokens = ["s3cr\u00e9t-9xq", "line-one\nline-two", "tabbed\tzz9q", "deleted\u007fzz9q", "emoji-\u{1F600}"];
  for (const token of tokens) {
    writeFileSync(pki("bad-token"), `${token}\n`);
    for (const options of [{ token }, { tokenFile: pki("bad-token") }]) {
      assert.throws(() => new MaasClient(server.address, options), (e: unknown) => {
        assert.ok(e instanceof TypeError, String(e));
        assert.match(e.message, /bearer token.* cannot be sent in the authorization header: its character \d+ of \d+ is/);
        for (const piece of token.split(/[^ -~]/).filter((p) => p.length >= 4)) {
          assert.ok(!e.message.includes(piece), `${e.message} quotes the token`);
        }
        return true;
      }, JSON.stringify(options));
    }
  }
  new MaasClient(server.address, { token: "  printable ASCII, spaces too ~  " }).close();
});

it("refuses CA certificates that are not PEM at construction, naming the file", () => {
  // They used to be taken, and every call then failed the handshake with "self-signed certificate in certificate
  // chain". Go's WithTLS refuses them too.
  writeFileSync(pki("garbage.pem"), "not a pem\n");
  writeFileSync(pki("broken.pem"), "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n");
  for (const file of ["garbage.pem", "broken.pem", "client.key"]) {
    assert.throws(() => new MaasClient(server.address, { tls: { caFile: pki(file) } }),
      (e: unknown) => e instanceof Error && e.message.includes(`no PEM certificate in the CA file ${pki(file)}`));
  }
  assert.throws(() => new MaasClient(server.address, { tls: { ca: "not a pem" } }), /no PEM certificate in tls\.ca/);
  new MaasClient(server.address, { tls: { caFile: pki("ca.pem") } }).close();
});
