// The reconnect backoff of MaasClient (reconnectBackoffMaxMs, default 5 s): grpc-js's own (1 s, x1.6, up to 120 s)
// kept calls failing at once with UNAVAILABLE for 6-13 s after a server that had been down a minute was back.
import assert from "node:assert/strict";
import { createServer, Server } from "node:net";
import { describe, it } from "node:test";

import { clientChannelOptions } from "../src/client";
import { DEFAULT_RECONNECT_BACKOFF_MAX_MS, MaasClient } from "../src/index";

function backoffOf(options: ReturnType<typeof clientChannelOptions>): [unknown, unknown] {
  return [options["grpc.initial_reconnect_backoff_ms"], options["grpc.max_reconnect_backoff_ms"]];
}

describe("reconnect backoff", () => {
  it("is capped at 5 s by default, the first wait staying grpc-js's 1 s", () => {
    assert.equal(DEFAULT_RECONNECT_BACKOFF_MAX_MS, 5_000);
    assert.deepEqual(backoffOf(clientChannelOptions({})), [1_000, 5_000]);
    assert.deepEqual(backoffOf(clientChannelOptions({ maxMessageBytes: 1024, timeoutMs: 5 })), [1_000, 5_000]);
  });

  it("takes reconnectBackoffMaxMs, a shorter one shortening the first wait too, and channelOptions still win", () => {
    assert.deepEqual(backoffOf(clientChannelOptions({ reconnectBackoffMaxMs: 30_000 })), [1_000, 30_000]);
    assert.deepEqual(backoffOf(clientChannelOptions({ reconnectBackoffMaxMs: 250 })), [250, 250]);
    assert.deepEqual(backoffOf(clientChannelOptions({ reconnectBackoffMaxMs: 1 })), [1, 1]);
    assert.deepEqual(
      backoffOf(clientChannelOptions({
        reconnectBackoffMaxMs: 250,
        channelOptions: { "grpc.max_reconnect_backoff_ms": 700, "grpc.initial_reconnect_backoff_ms": 100 },
      })),
      [100, 700]);
  });

  it("refuses a reconnectBackoffMaxMs that is not an integer from 1 to 2^31 - 1, naming it", () => {
    for (const bad of [0, -1, 1.5, NaN, Infinity, 2 ** 31, "5" as unknown as number]) {
      assert.throws(() => new MaasClient("127.0.0.1:1", { reconnectBackoffMaxMs: bad }),
        new RegExp(`reconnectBackoffMaxMs must be an integer number of milliseconds from 1 to 2147483647, got ${bad}`));
    }
  });

  // The option reaches the channel: a port that accepts each connection and closes it at once (a failed attempt, as
  // to a server that is down) counts the client's attempts. With a 250 ms cap the 10th comes within about 3 s; with
  // grpc-js's default backoff it would come after about (1.6^9 - 1) / 0.6 = 110 s (at least 88 s with the jitter),
  // far beyond the 20 s the test waits.
  it("reaches the channel: attempts keep coming every 250 ms at most", async () => {
    let attempts = 0;
    let reached: () => void = () => {};
    const tenth = new Promise<void>((resolve) => (reached = resolve));
    const server: Server = createServer((socket) => {
      socket.destroy();
      if (++attempts === 10) reached();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    assert.ok(address !== null && typeof address === "object");
    const client = new MaasClient(`127.0.0.1:${address.port}`, { reconnectBackoffMaxMs: 250 });
    let timer: NodeJS.Timeout | undefined;
    try {
      const calling = client.waitServing("", 20_000).catch(() => undefined); // calls every 50 ms meanwhile
      const gaveUp = new Promise<void>((resolve) => (timer = setTimeout(resolve, 20_000)));
      await Promise.race([tenth, gaveUp]);
      assert.ok(attempts >= 10, `only ${attempts} connection attempts in 20 s: the reconnect backoff is not capped`);
      client.close();
      await calling;
    } finally {
      clearTimeout(timer);
      client.close();
      server.close();
    }
  });
});
