import { readFile, readdir } from "node:fs/promises";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import type { IncomingMessage, ServerResponse } from "node:http";

/** Where `npm run build` puts the bundled console (gateway/console/dist). */
export const CONSOLE_DIST = fileURLToPath(new URL("../../console/dist/", import.meta.url));

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".map": "application/json",
};

interface Asset {
  type: string;
  body: Buffer;
  gzip: Buffer;
}

/**
 * The bundled front end, read into memory once (a few hundred KB) and gzipped once. Only the files
 * the build wrote are served: the request path is looked up in a map, never joined onto a directory.
 */
export class StaticAssets {
  private constructor(private readonly files: Map<string, Asset>) {}

  static async load(dir = CONSOLE_DIST): Promise<StaticAssets> {
    const files = new Map<string, Asset>();
    let names: string[] = [];
    try {
      names = await readdir(dir);
    } catch {
      /* not built: every page answers 503 below */
    }
    for (const name of names) {
      const type = TYPES[extname(name)];
      if (!type || name.endsWith(".map")) continue;
      const body = await readFile(join(dir, name));
      files.set(`/${name}`, { type, body, gzip: gzipSync(body) });
    }
    return new StaticAssets(files);
  }

  get built(): boolean {
    return this.files.has("/index.html");
  }

  /** Serves a file; any other path (a page of the single-page app) gets index.html. */
  serve(req: IncomingMessage, res: ServerResponse, path: string): void {
    const asset = this.files.get(path) ?? this.files.get("/index.html");
    if (!asset) {
      res.writeHead(503, { "Content-Type": "text/plain; charset=utf-8" });
      res.end("the console was not built: run npm run build\n");
      return;
    }
    const gz = /\bgzip\b/.test(req.headers["accept-encoding"] ?? "");
    const body = gz ? asset.gzip : asset.body;
    res.writeHead(200, {
      "Content-Type": asset.type,
      "Content-Length": body.length,
      "Cache-Control": "no-cache",
      Vary: "Accept-Encoding",
      ...(gz ? { "Content-Encoding": "gzip" } : {}),
    });
    res.end(req.method === "HEAD" ? undefined : body);
  }
}
