#!/usr/bin/env node
// Bundles the web console with esbuild into gateway/console/dist (index.html, app.js, app.css).
// Part of `npm run build`; the hub serves these files and nothing from a CDN.
import { build } from "esbuild";
import { copyFile, mkdir, rm } from "node:fs/promises";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));
const out = `${here}dist`;
await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });
await build({
  entryPoints: { app: `${here}src/main.tsx` },
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2020"],
  jsx: "automatic",
  jsxImportSource: "preact",
  outdir: out,
  legalComments: "none",
  logLevel: "warning",
});
await copyFile(`${here}src/index.html`, `${out}/index.html`);
