// The real maas binaries for the live tests: started from $MAAS_BUILD_DIR/bin on port 0 (loopback), the chosen port
// parsed from the ready line each binary prints to stderr ("<binary>: serving ... on port <N>"), stopped with
// SIGTERM and checked to exit with code 0. A missing binary or build dir fails the tests (never a skip).
import { ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

const READY_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 15_000;

export function buildDir(): string {
  const dir = process.env.MAAS_BUILD_DIR;
  if (!dir) {
    throw new Error("MAAS_BUILD_DIR is not set; run these tests through ctest (ctest -R node:)");
  }
  return dir;
}

export class Server {
  private readonly lines: string[] = [];
  private readonly exited: Promise<number | null>;

  private constructor(readonly name: string, readonly port: number, private readonly proc: ChildProcess,
    lines: string[], exited: Promise<number | null>) {
    this.lines = lines;
    this.exited = exited;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  stderr(): string {
    return this.lines.join("\n");
  }

  /** Runs bin/<name> with args plus --port 0 --host 127.0.0.1 and waits for its ready line. */
  static start(name: string, args: string[]): Promise<Server> {
    const path = join(buildDir(), "bin", name);
    if (!existsSync(path)) {
      throw new Error(`binary ${path} is missing; build it first (cmake --build ${buildDir()} --target ${name})`);
    }
    const proc = spawn(path, ["--port", "0", "--host", "127.0.0.1", ...args], { stdio: ["ignore", "ignore", "pipe"] });
    const lines: string[] = [];
    const exited = new Promise<number | null>((resolve) => proc.on("exit", (code, signal) => resolve(signal ? -1 : code)));
    return new Promise<Server>((resolve, reject) => {
      const timer = setTimeout(() => {
        proc.kill("SIGKILL");
        reject(new Error(`${name} printed no ready line within ${READY_TIMEOUT_MS} ms; stderr:\n${lines.join("\n")}`));
      }, READY_TIMEOUT_MS);
      let ready = false;
      createInterface({ input: proc.stderr! }).on("line", (line) => {
        if (lines.length < 300) {
          lines.push(line);
        }
        const m = /on port (\d+)/.exec(line);
        if (!ready && line.startsWith(name) && line.includes("serving") && m) {
          ready = true;
          clearTimeout(timer);
          resolve(new Server(name, Number(m[1]), proc, lines, exited));
        }
      });
      void exited.then((code) => {
        if (!ready) {
          clearTimeout(timer);
          reject(new Error(`${name} exited (${code}) before its ready line; stderr:\n${lines.join("\n")}`));
        }
      });
    });
  }

  /** SIGTERM; rejects unless the process exits with code 0 within the grace period. */
  async stop(): Promise<void> {
    this.proc.kill("SIGTERM");
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), STOP_TIMEOUT_MS)));
    const code = await Promise.race([this.exited, timeout]);
    clearTimeout(timer);
    if (code === "timeout") {
      this.proc.kill("SIGKILL");
      throw new Error(`${this.name} did not exit within ${STOP_TIMEOUT_MS} ms of SIGTERM; stderr:\n${this.stderr()}`);
    }
    if (code !== 0) {
      throw new Error(`${this.name} exited with ${code} on SIGTERM; stderr:\n${this.stderr()}`);
    }
  }
}

/** A generative and a discriminative server behind a gateway, in a fresh temporary model directory. */
export class Stack {
  private constructor(readonly root: string, readonly generative: Server, readonly discriminative: Server,
    readonly gateway: Server) {}

  static async start(serviceArgs: string[] = [], gatewayArgs: string[] = []): Promise<Stack> {
    const root = mkdtempSync(join(tmpdir(), "maas-node-client-"));
    const started: Server[] = [];
    try {
      for (const d of ["generative", "discriminative"]) {
        mkdirSync(join(root, d));
      }
      const generative = await Server.start("maas-generative", ["--model_dir", join(root, "generative"), ...serviceArgs]);
      started.push(generative);
      const discriminative = await Server.start("maas-discriminative",
        ["--model_dir", join(root, "discriminative"), ...serviceArgs]);
      started.push(discriminative);
      const gateway = await Server.start("maas-gateway", [
        "--generative_target", `ipv4:${generative.address}`, "--discriminative_target", `ipv4:${discriminative.address}`,
        "--health_check_interval_ms", "200", ...gatewayArgs]);
      return new Stack(root, generative, discriminative, gateway);
    } catch (e) {
      await Promise.allSettled(started.map((s) => s.stop()));
      rmSync(root, { recursive: true, force: true });
      throw e;
    }
  }

  /** Stops every server (gateway first); rejects on the first unclean exit. */
  async stop(): Promise<void> {
    try {
      await this.gateway.stop();
      await Promise.all([this.generative.stop(), this.discriminative.stop()]);
    } finally {
      rmSync(this.root, { recursive: true, force: true });
    }
  }
}
