// Builds a runnable image of a Concord member from a checkout, FROM scratch, so that nothing is pulled from a
// registry: the node binary running this code (at /usr/local/bin/node, where the official node images keep it),
// the server compiled by tsc (/app/dist), the production dependencies (`npm ls --omit=dev`; @node-rs/crc32 brings
// a native addon), the malloc_trim addon when it was built, and the shared libraries `ldd` lists for node and for
// every native addon copied (the CRC addon needs librt, which node does not). The Dockerfile at the repository root builds
// the same layout from node:24-slim for those who can pull; both must keep IMAGE_ENTRYPOINT, the /data volume and
// the ports in step (docs/operations.md, "Container image").
//
// The build goes through testcontainers (the same Docker client the Jepsen-style container driver uses).

import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { GenericContainer, Wait } from "testcontainers";
import { MEMBER_NODE_FLAGS } from "../src/server/member-node-flags.js";

// Ryuk, testcontainers' reaper, is an image that would have to be pulled; what these builds and the container
// driver create they remove themselves. ci.sh exports this too; the default covers hand runs.
process.env.TESTCONTAINERS_RYUK_DISABLED ??= "true";

export const IMAGE_ENTRYPOINT: readonly string[] = ["/usr/local/bin/node", ...MEMBER_NODE_FLAGS, "/app/dist/cli/concord.js", "server"];
export const DEFAULT_IMAGE_TAG = "concord:local";
export const CLIENT_PORT = 7000;
export const PEER_PORT = 7001;

export interface ImageBuildOptions {
  /** The checkout to build: its src/ and cli/ are compiled, its node_modules supply the dependencies. */
  repoRoot: string;
  tag: string;
  log?: (message: string) => void;
}

/** Builds `tag` from `repoRoot`; returns the tag. Throws with tsc's or Docker's own message when a step fails. */
export async function buildMemberImage(o: ImageBuildOptions): Promise<string> {
  const log = o.log ?? (() => {});
  const ctx = fs.mkdtempSync("/tmp/concord-image-");
  try {
    const rootfs = path.join(ctx, "rootfs");
    const copy = (from: string, to: string) => {
      fs.mkdirSync(path.dirname(path.join(rootfs, to)), { recursive: true });
      fs.cpSync(from, path.join(rootfs, to), { recursive: true, dereference: true });
    };

    /**
     * Copies the shared libraries `binary` loads (ldd), each once. A binary ldd cannot read is one this system
     * cannot load either (prebuilt addons ship variants for other C libraries, e.g. musl): it brings nothing.
     */
    const libraries = new Set<string>();
    const copyLibrariesOf = (binary: string) => {
      let listed: string;
      try {
        listed = execFileSync("ldd", [binary], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
      } catch {
        return;
      }
      for (const line of listed.split("\n")) {
        const lib = /(\/\S+)\s+\(0x/.exec(line)?.[1];
        if (lib !== undefined && !libraries.has(lib)) {
          libraries.add(lib);
          copy(lib, lib);
        }
      }
    };
    const node = fs.realpathSync(process.execPath);
    copy(node, "/usr/local/bin/node");
    copyLibrariesOf(node);

    log(`compiling ${o.repoRoot} (tsc -p tsconfig.build.json)`);
    const tsc = path.join(o.repoRoot, "node_modules/typescript/bin/tsc");
    execFileSync(process.execPath, [tsc, "-p", path.join(o.repoRoot, "tsconfig.build.json"), "--outDir", path.join(rootfs, "app/dist"), "--sourceMap", "false", "--declaration", "false"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    copy(path.join(o.repoRoot, "package.json"), "/app/package.json"); // "type": "module" for dist/

    const modules = fs.realpathSync(path.join(o.repoRoot, "node_modules"));
    for (const dir of productionPackageDirs(o.repoRoot, modules)) {
      copy(dir, path.join("/app/node_modules", path.relative(modules, dir)));
      for (const addon of nativeAddonsIn(dir)) copyLibrariesOf(addon);
    }
    const addon = "build/Release/malloc_trim.node"; // src/server/c-heap.ts
    if (fs.existsSync(path.join(o.repoRoot, addon))) {
      copy(path.join(o.repoRoot, addon), path.join("/app", addon));
      copyLibrariesOf(path.join(o.repoRoot, addon));
    }

    for (const dir of ["tmp", "data"]) fs.mkdirSync(path.join(rootfs, dir), { recursive: true });
    fs.chmodSync(path.join(rootfs, "tmp"), 0o1777);
    fs.writeFileSync(
      path.join(ctx, "Dockerfile"),
      [
        "FROM scratch",
        "COPY rootfs/ /",
        "WORKDIR /app",
        "ENV HOME=/tmp CONCORD_DATA_DIR=/data",
        "VOLUME /data",
        `EXPOSE ${CLIENT_PORT} ${PEER_PORT}`,
        `ENTRYPOINT ${JSON.stringify(IMAGE_ENTRYPOINT)}`,
        "",
      ].join("\n"),
    );
    log(`building ${o.tag}`);
    await GenericContainer.fromDockerfile(ctx).build(o.tag, { deleteOnExit: false });
    return o.tag;
  } finally {
    fs.rmSync(ctx, { recursive: true, force: true });
  }
}

/** The native addons (`*.node`) directly in a package's directory, where prebuilt ones are shipped. */
function nativeAddonsIn(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((name) => name.endsWith(".node"))
    .map((name) => path.join(dir, name));
}

/** The installed directories of the production dependency tree (npm's own view of it), inside `modules`. */
function productionPackageDirs(repoRoot: string, modules: string): string[] {
  const out = execFileSync("npm", ["ls", "--omit=dev", "--all", "--parseable"], { cwd: repoRoot, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  return out
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => fs.realpathSync(line))
    .filter((dir) => path.relative(modules, dir).split(path.sep)[0] !== "..");
}

/**
 * Runs `node -e` in the image: proves the binary, its libraries and the loader work inside it, and that the native
 * CRC addon loads (its libraries are not all node's).
 */
export async function checkImageRuns(tag: string): Promise<void> {
  const probe = await new GenericContainer(tag)
    .withEntrypoint(["/usr/local/bin/node"])
    .withCommand(["-e", "require('@node-rs/crc32').crc32c(Buffer.from('concord')); process.exit(0)"])
    .withWaitStrategy(Wait.forOneShotStartup())
    .withStartupTimeout(60_000)
    .start();
  await probe.stop({ remove: true });
}
