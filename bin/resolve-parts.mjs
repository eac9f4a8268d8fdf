// Module resolve hook for an installed tarball (`npm install -g canopy-*.tgz`): there the workspaces are
// plain folders next to bin/, not packages linked into node_modules. `@canopy/<part>[/<sub>]` then maps
// to <root>/<part>/dist/<sub|index>.js; everything else resolves as usual (third-party packages are the
// root package's dependencies).
const root = new URL("../", import.meta.url);
const PARTS = new Set(["protocol", "agent", "gateway", "firmware-bridge"]);

export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (err) {
    const m = /^@canopy\/([a-z-]+)(?:\/(.+))?$/.exec(specifier);
    if (!m || !PARTS.has(m[1]) || err?.code !== "ERR_MODULE_NOT_FOUND") throw err;
    return next(new URL(`${m[1]}/dist/${m[2] ?? "index"}.js`, root).href, context);
  }
}
