#!/usr/bin/env node
// Runs every bench and writes one results table (markdown + JSON, with the date and the machine) that
// the README's performance section is copied from.
//
//   npm run bench                          # build, then every bench once
//   node bench/run.mjs --repeat 3          # each bench 3 times: the table shows the median and range
//   node bench/run.mjs --only commands,query --out /tmp/results
//
// A bench is any bench/*.mjs file except this runner and files whose name starts with "_"; shared
// helpers live in bench/lib/. Each bench ends its stdout with ONE JSON line
// {"bench","figures":[{name,value,unit,baseline,ratio,goal,goalOn,better,met}]} (bench/lib/report.mjs).
// Bench output streams through to stderr, so a long run shows progress.
import { spawn } from "node:child_process";
import { readdirSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, basename } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { machine, round } from "./lib/report.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    only: { type: "string" },
    skip: { type: "string" },
    repeat: { type: "string", default: "1" },
    out: { type: "string", default: join(here, "results") },
    "timeout-min": { type: "string", default: "20" },
  },
});

const list = (s) => (s ? s.split(",").map((x) => x.trim()).filter(Boolean) : []);
const all = readdirSync(here)
  .filter((f) => f.endsWith(".mjs") && f !== "run.mjs" && !f.startsWith("_"))
  .map((f) => basename(f, ".mjs"))
  .sort();
const only = list(values.only);
const skip = new Set(list(values.skip));
const unknown = only.filter((n) => !all.includes(n));
if (unknown.length > 0) {
  process.stderr.write(`unknown bench: ${unknown.join(", ")} (have: ${all.join(", ")})\n`);
  process.exit(2);
}
const repeat = Number(values.repeat);
if (!Number.isInteger(repeat) || repeat < 1) {
  process.stderr.write(`--repeat must be a positive integer\n`);
  process.exit(2);
}
const benches = (only.length > 0 ? only : all).filter((n) => !skip.has(n));

/** Runs one bench; resolves with its last JSON line (or an error description). */
function runOne(name) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, [join(here, `${name}.mjs`)], { stdio: ["ignore", "pipe", "inherit"], detached: false });
    let out = "";
    child.stdout.on("data", (d) => {
      out += d.toString();
      process.stderr.write(d);
    });
    const timer = setTimeout(() => child.kill("SIGTERM"), Number(values["timeout-min"]) * 60_000);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      const seconds = Math.round((Date.now() - started) / 1000);
      const last = out.trimEnd().split("\n").pop() ?? "";
      try {
        const parsed = JSON.parse(last);
        if (parsed.bench && Array.isArray(parsed.figures)) return resolve({ ...parsed, code, seconds });
      } catch {
        // fall through
      }
      resolve({ bench: name, figures: [], code, signal, seconds, error: `no JSON result line (exit ${code ?? signal})` });
    });
  });
}

const runs = [];
for (const name of benches) {
  for (let i = 0; i < repeat; i++) {
    process.stderr.write(`\n=== bench ${name}${repeat > 1 ? ` (run ${i + 1}/${repeat})` : ""} ===\n`);
    runs.push({ name, ...(await runOne(name)) });
  }
}

/** Groups repeated runs of a figure: median value/baseline/ratio and the range of ratios (or values). */
function summarize() {
  const rows = [];
  for (const name of benches) {
    const mine = runs.filter((r) => r.name === name);
    const failed = mine.filter((r) => r.error);
    const figs = new Map();
    for (const r of mine) for (const f of r.figures) (figs.get(f.name) ?? figs.set(f.name, []).get(f.name)).push(f);
    if (figs.size === 0) rows.push({ bench: name, figure: "(no result)", error: failed[0]?.error ?? "no figures" });
    for (const [fname, fs] of figs) {
      const med = (k) => median(fs.map((f) => f[k]).filter((x) => typeof x === "number"));
      const key = fs[0].goalOn === "ratio" ? "ratio" : "value";
      const spread = fs.map((f) => f[key]).filter((x) => typeof x === "number");
      const f0 = fs[0];
      const subject = med(key);
      const met = f0.goal === null || subject === null ? null : f0.better === "higher" ? subject >= f0.goal : subject <= f0.goal;
      rows.push({
        bench: name,
        figure: fname,
        unit: f0.unit,
        value: med("value"),
        baseline: med("baseline"),
        ratio: med("ratio"),
        range: spread.length > 1 ? [Math.min(...spread), Math.max(...spread)] : null,
        rangeOf: key,
        goal: f0.goal,
        goalOn: f0.goalOn,
        better: f0.better,
        met,
        runs: fs.length,
        ...(failed.length > 0 ? { failedRuns: failed.length } : {}),
      });
    }
  }
  return rows;
}

function median(xs) {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return round(s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2, 3);
}

const fmt = (x) => (x === null || x === undefined ? "–" : typeof x === "number" ? x.toLocaleString("en-US", { maximumFractionDigits: 2 }) : String(x));
const rows = summarize();
const meta = { date: new Date().toISOString(), machine: machine(), repeat, benches };
const md = [
  `# Canopy bench results`,
  ``,
  `${meta.date} on ${meta.machine.host}: ${meta.machine.cpu}, ${meta.machine.cores} cores, ${meta.machine.memGiB} GiB, Linux ${meta.machine.kernel}, Node ${meta.machine.node}; load average at the end ${meta.machine.loadavg.join(" / ")}. Each bench ran ${repeat}×; medians shown, range over runs in brackets.`,
  ``,
  `| bench | figure | value | baseline | ratio | goal | met |`,
  `|---|---|---|---|---|---|---|`,
  ...rows.map((r) => {
    if (r.error) return `| ${r.bench} | ${r.figure} | ${r.error} | | | | |`;
    const range = r.range ? ` [${fmt(r.range[0])}–${fmt(r.range[1])}]` : "";
    const goal = r.goal === null ? "–" : `${r.better === "higher" ? "≥" : "≤"} ${fmt(r.goal)}${r.goalOn === "ratio" ? "×" : ` ${r.unit}`}`;
    const v = `${fmt(r.value)} ${r.unit}${r.rangeOf === "value" ? range : ""}`;
    const ratio = r.ratio === null ? "–" : `${fmt(r.ratio)}×${r.rangeOf === "ratio" ? range : ""}`;
    return `| ${r.bench} | ${r.figure} | ${v} | ${r.baseline === null ? "–" : `${fmt(r.baseline)} ${r.unit}`} | ${ratio} | ${goal} | ${r.met === null ? "–" : r.met ? "yes" : "**no**"} |`;
  }),
  ``,
].join("\n");

mkdirSync(values.out, { recursive: true });
writeFileSync(join(values.out, "latest.json"), `${JSON.stringify({ ...meta, rows, runs }, null, 2)}\n`);
writeFileSync(join(values.out, "latest.md"), md);
process.stdout.write(md);
process.stdout.write(`\nwritten: ${join(values.out, "latest.md")} and latest.json\n`);
process.exit(runs.some((r) => r.error) ? 1 : 0);
