import fc from "fast-check";
import { CONFIG_KEYS } from "@canopy/protocol";

/**
 * Generators for door-fuzz.test.ts: mostly wrong, sometimes right, and the known nasty cases
 * (10 MB strings, 200,000-key objects, deep nesting, catastrophic regexes, option-looking values).
 */
const KNOWN_KEYS = Object.keys(CONFIG_KEYS);
const TEN_MB = "x".repeat(10 * 2 ** 20);
const WIDE = Object.fromEntries(Array.from({ length: 200_000 }, (_, i) => [`k${i}`, i]));
const deep = (n: number): unknown => (n === 0 ? 1 : { a: deep(n - 1) });
const DEEP = deep(200);

/** A character edit of a known key: the typo family (`log.levle`). */
const nearMiss = fc.tuple(fc.constantFrom(...KNOWN_KEYS), fc.nat(), fc.constantFrom("", "x", ".", "e")).map(([k, i, c]) => {
  const at = i % k.length;
  return k.slice(0, at) + c + k.slice(at + 1);
});

export const configKey: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...KNOWN_KEYS) },
  { weight: 2, arbitrary: nearMiss },
  { weight: 2, arbitrary: fc.stringMatching(/^app\.[a-z][a-z0-9_]{0,12}(\.[a-z0-9_]{1,8}){0,2}$/) },
  { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 1, arbitrary: fc.constantFrom("", ".", "a..b", "log.*", "up.>", " log.level", "log.level\n", "é.ü", "x".repeat(300)) },
  // Object.prototype's names: found `config set valueOf {}` throwing a TypeError once.
  { weight: 1, arbitrary: fc.constantFrom("valueOf", "constructor", "__proto__", "toString", "hasOwnProperty", "log.__proto__") },
);

const ordinaryValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 2, arbitrary: fc.constantFrom("debug", "info", "warn", "loud", "5s", "0s", "-5", "banana", "999999TiB", "64MiB", "1h", "", null, -5, 0, 1e308, true) },
  { weight: 2, arbitrary: fc.string({ maxLength: 30 }) },
  { weight: 1, arbitrary: fc.integer() },
);
/** About 1 in 40 is one of the huge or deep values (each costs up to ~70 ms to refuse). */
export const configValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 39, arbitrary: ordinaryValue },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(TEN_MB, WIDE, DEEP, [TEN_MB], { v: TEN_MB }) },
);

// ---- CEL ---------------------------------------------------------------------------------------

const field = fc.constantFrom(
  "device", "os.platform", "os.arch", "os.distro", "os.uptime", "cpu.cores", "cpu.load", "cpu.temperature",
  "mem.total", "mem.available", "disk.available", "agent.version", "labels", "mcus", "up.pending", "up.full",
  'config["log.level"]', "config.app", "net.interfaces",
  // wrong on purpose: unknown facts and roots
  "os.platfrom", "cpu.speed", "foo", "mcus.board", "device.id",
);
const literal = fc.oneof(
  fc.integer({ min: -1_000, max: 100_000 }).map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }).map((d) => (Number.isInteger(d) ? `${d}.0` : String(d))),
  fc.string({ maxLength: 12 }).map((s) => JSON.stringify(s)),
  fc.constantFrom("true", "false", "null", "1u", "b'ab'", "'linux'", '"arm64"', "[]", "{}", "[1, 2]", "3.14"),
);
const regex = fc.oneof(
  fc.constantFrom("^(a+)+$", "(a|aa)+$", "(.*)*x", "^([a-z]+)*$", "(x+x+)+y", "a{1,99999}", "^lin", "arm.*", "[", "(?P<n>x)", "\\d+"),
  fc.stringMatching(/^[a-z.*+?()|^$\\[\]{}0-9]{0,20}$/),
);
const binop = fc.constantFrom("==", "!=", "<", "<=", ">", ">=", "&&", "||", "+", "-", "*", "/", "%", "in");

const { expr } = fc.letrec<{ expr: string }>((tie) => ({
  expr: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    field,
    literal,
    fc.tuple(tie("expr"), binop, tie("expr")).map(([a, o, b]) => `${a} ${o} ${b}`),
    tie("expr").map((e) => `!(${e})`),
    tie("expr").map((e) => `(${e})`),
    fc.tuple(tie("expr"), tie("expr"), tie("expr")).map(([c, a, b]) => `${c} ? ${a} : ${b}`),
    fc.tuple(field, regex).map(([f, r]) => `${f}.matches(${JSON.stringify(r)})`),
    fc.tuple(field, fc.string({ maxLength: 6 })).map(([f, s]) => `${f}.startsWith(${JSON.stringify(s)})`),
    field.map((f) => `size(${f})`),
    field.map((f) => `has(${f})`),
    fc.tuple(fc.constantFrom("exists", "all", "exists_one", "map", "filter"), tie("expr")).map(([m, e]) => `mcus.${m}(m, m.board == "esp32" || ${e})`),
  ),
}));

const typical = fc.constantFrom(
  'os.platform == "linux"', "cpu.load < 10.0", 'mcus.exists(m, m.board == "rp2040")', '"lab" in labels', "mem.available > 100000000",
);

export const celExpression: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: expr },
  { weight: 2, arbitrary: typical },
  { weight: 1, arbitrary: fc.tuple(field, fc.constantFrom("^(a+)+$", "(a|aa)+$", "(x+x+)+y")).map(([f, r]) => `${f}.matches(${JSON.stringify(r)})`) },
  { weight: 1, arbitrary: fc.string({ maxLength: 60 }) },
  { weight: 1, arbitrary: fc.array(fc.oneof(field, literal, binop, fc.constantFrom("(", ")", "?", ":", ".", ",")), { maxLength: 12 }).map((t) => t.join(" ")) },
  {
    weight: 1,
    arbitrary: fc.oneof(
      fc.integer({ min: 1, max: 300 }).map((n) => `${"(".repeat(n)}true${")".repeat(n)}`),
      fc.integer({ min: 1, max: 3_000 }).map((n) => Array.from({ length: n }, () => "true").join(" && ")),
      fc.constant(`device == "${"a".repeat(5_000)}"`),
      fc.constant(`${"!".repeat(2_000)}true`),
    ),
  },
);

// ---- CLI argument vectors -------------------------------------------------------------------------

/** Device ids: a few valid ones (so some commands succeed and repeat), and many that are not ids. */
// Valid ones are rare on purpose: each makes a real round trip to the hub (~0.1–0.2 s), the refusals
// do not (that is the point of the door), and the test has a time budget.
const deviceId = fc.oneof(
  { weight: 1, arbitrary: fc.constantFrom("fz-a", "fz-b", "fz-c", "fz-d") },
  { weight: 24, arbitrary: fc.constantFrom("", "a.b", "a b", "*", ">", "dev/1", "x".repeat(65), "é", "a\nb", "..") },
  { weight: 15, arbitrary: fc.tuple(fc.string({ maxLength: 20 }), fc.constantFrom(".", " ", "*", ">", "/", "\u0000", "ü")).map(([a, b]) => a + b) },
);
const maybe = <T>(a: fc.Arbitrary<T[]>): fc.Arbitrary<T[]> => fc.oneof(fc.constant([] as T[]), a);
const scope = fc.tuple(fc.constantFrom("--group", "--device"), deviceId);
const duration = fc.oneof(fc.constantFrom("10s", "2m", "0s", "-1s", "banana", "99999999h", "1"), fc.string({ maxLength: 6 }));
const valueText = fc.oneof(ordinaryValue.map((v) => (typeof v === "string" ? v : JSON.stringify(v) ?? "null")), fc.string({ maxLength: 20 }));
const strings = (max: number): fc.Arbitrary<string[]> => fc.array(fc.string({ maxLength: 16 }), { maxLength: max });

export const cliVector: fc.Arbitrary<string[]> = fc.oneof(
  fc.tuple(deviceId, maybe(fc.tuple(fc.constant("--group"), deviceId))).map(([id, g]) => ["device", "add", id, ...g]),
  fc.tuple(configKey, valueText, scope).map(([k, v, s]) => ["config", "set", k, v, ...s]),
  fc.tuple(configKey, scope).map(([k, s]) => ["config", "get", k, ...s, "--json"]),
  fc
    .tuple(deviceId, fc.oneof(fc.constantFrom("ping", "sysinfo", "mcu.blink", "exec"), fc.string({ maxLength: 12 })), maybe(fc.tuple(fc.constant("--arg"), fc.string({ maxLength: 12 }))), maybe(fc.tuple(fc.constant("--ttl"), duration)))
    .map(([d, name, a, ttl]) => ["cmd", "send", "--device", d, name, ...a, ...ttl]),
  fc.tuple(celExpression, scope).map(([e, s]) => ["query", e, ...s, "-t", "50ms", "--json"]),
  fc.tuple(deviceId, fc.oneof(fc.constantFrom("tlm.>", "up.*.tlm.temp", "up.>", ">", "a..b", "up.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*"), fc.string({ maxLength: 12 })), fc.oneof(fc.constantFrom("5", "0", "-1", "1e9", "x"), fc.string({ maxLength: 4 }))).map(([d, s, n]) => ["tail", "--device", d, "--subject", s, "-n", n, "--json"]),
  fc.tuple(fc.constantFrom("rollout", "firmware", "flash", "mcu", "device", "cmd", "config"), strings(3)).map(([c, rest]) => [c, ...rest.filter((x) => !/^-*(w|watch|f|follow)$/.test(x))]),
  strings(5).map((v) => v.filter((x) => !["dev", "hub", "gateway", "agent", "bridge", "console", "sim", "context", "pub"].includes(x))),
);
