import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { waitFor } from "@canopy/protocol";
import { Fleet, freePort, tempDir, type TempDir } from "../harness/index.js";
import { Chroot, REPO, diff, must, snapshot } from "./chroot.js";

/**
 * deploy/install.sh in a fresh Debian trixie root (debootstrap minbase + systemd, udev and Debian's
 * Node 20, cached between runs): the release tarball and a join token from `canopy device add` (the
 * device's credentials and leaf-link TLS) → user, groups, files and
 * modes, the enabled unit, `systemd-analyze verify` clean, `canopy --version`; the agent started in
 * the root as the canopy user enrolls with a hub outside and shows online; a second run changes
 * nothing; --upgrade keeps config and data; --uninstall leaves only the data.
 */
const DEVICE = "pi-chroot";
const times: Record<string, number> = {};
let tmp: TempDir;
let fleet: Fleet;
let root: Chroot;
let tarball = "";
let version = "";

async function timed<T>(name: string, f: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  try {
    return await f();
  } finally {
    times[name] = Date.now() - t0;
  }
}

before(async () => {
  assert.equal(process.getuid?.(), 0, "the install test needs root (chroot, mounts, useradd inside the root)");
  tmp = await tempDir("canopy-install-");
  await timed("rootfs+overlay", async () => {
    root = await Chroot.up(join(tmp.path, "chroot"));
  });
  tarball = await timed("make-release", async () =>
    (await must("bash", [join(REPO, "deploy/scripts/make-release.sh"), "--no-build", "--out", join(tmp.path, "rel")])).stdout.trim().split("\n").pop() ?? "",
  );
  version = JSON.parse(await readFile(join(REPO, "package.json"), "utf8")).version as string;
  await mkdir(join(root.root, "root/rel"), { recursive: true });
  await must("tar", ["-xzf", tarball, "-C", join(root.root, "root/rel")]);
  // The hub advertises its real leaf port: the device inside dials what its join token says.
  fleet = await Fleet.start({ hubArgs: ["--leaf-port", String(await freePort())] });
}, { timeout: 900_000 }); // a cold cache runs debootstrap first (~3.5 min here)

after(async () => {
  await root?.down();
  await fleet?.stop();
  await tmp?.remove();
  process.stdout.write(`# install test times (ms): ${JSON.stringify(times)}\n`);
});

test("install.sh on fresh trixie: install, agent online as canopy, idempotent, upgrade, uninstall", { timeout: 600_000 }, async () => {
  const before = await snapshot(root, { mtimes: false });
  const installer = `/root/rel/canopy-${version}/install.sh`;
  // `canopy device add` on the hub side: the device's join token (creds + leaf-link TLS in one line).
  const added = await fleet.cli(["device", "add", DEVICE, "--json"]);
  assert.equal(added.code, 0, added.stderr);
  const token = (JSON.parse(added.stdout) as { join: string }).join;
  assert.match(token, /^canopy1\./);

  // Bad input is refused at the door with exit 2 and nothing installed.
  const bad = await root.exec(`${installer} --join canopy1.bm90IGpzb24`);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /join token: damaged|join token/);
  const noEnroll = await root.exec(installer);
  assert.equal(noEnroll.code, 2);
  assert.match(noEnroll.stderr, /--join TOKEN or --bundle FILE/);

  const first = await timed("install", () => root.exec(`${installer} --join ${token}`));
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stderr, new RegExp(`done: Canopy ${version.replace(/\./g, "\\.")} \\(device\\)`));

  // User, groups, files and modes, the enabled unit, udev rule.
  const id = await root.exec("id -nG canopy && getent passwd canopy");
  assert.equal(id.code, 0, id.stderr);
  assert.deepEqual(id.stdout.split("\n")[0]?.split(" ").sort(), ["canopy", "dialout"]);
  assert.match(id.stdout, /:\/var\/lib\/canopy:\/usr\/sbin\/nologin/);
  const stat = await root.exec(
    "stat -c '%n %a %U %G' /etc/canopy /etc/canopy/agent.json /etc/canopy/device.creds /etc/canopy/key.pem /var/lib/canopy /opt/canopy /etc/udev/rules.d/99-canopy-serial.rules && readlink /usr/bin/canopy /etc/systemd/system/multi-user.target.wants/canopy-agent.service",
  );
  assert.equal(stat.code, 0, stat.stderr);
  assert.deepEqual(stat.stdout.trim().split("\n"), [
    "/etc/canopy 750 root canopy",
    "/etc/canopy/agent.json 600 canopy canopy",
    "/etc/canopy/device.creds 600 canopy canopy",
    "/etc/canopy/key.pem 600 canopy canopy",
    "/var/lib/canopy 750 canopy canopy",
    "/opt/canopy 755 root root",
    "/etc/udev/rules.d/99-canopy-serial.rules 644 root root",
    "/opt/canopy/bin/canopy.js",
    "/etc/systemd/system/canopy-agent.service",
  ]);
  const cfg = JSON.parse((await root.exec("cat /etc/canopy/agent.json")).stdout) as { device: string; hub: string[]; data: string; credentials: string; tls: object };
  assert.equal(cfg.device, DEVICE);
  assert.equal(cfg.data, "/var/lib/canopy");
  assert.deepEqual(cfg.hub, [fleet.hub.leaf]);
  assert.equal(cfg.credentials, "/etc/canopy/device.creds");
  assert.deepEqual(cfg.tls, { certFile: "/etc/canopy/cert.pem", keyFile: "/etc/canopy/key.pem", caFile: "/etc/canopy/ca.pem" });
  // Production dependencies only: no test tools, no compiler output beside dist.
  const dev = await root.exec("ls /opt/canopy/node_modules/typescript /opt/canopy/node_modules/mqtt /opt/canopy/node_modules/fast-check /opt/canopy/test 2>&1");
  assert.equal((dev.stdout.match(/No such file or directory/g) ?? []).length, 4, dev.stdout);

  // Every unit verifies clean; the udev rule too; the CLI runs.
  const verify = await root.exec(
    "cp /opt/canopy/deploy/systemd/canopy-hub.service /tmp/ && systemd-analyze verify /etc/systemd/system/canopy-agent.service /tmp/canopy-hub.service; echo rc=$?; udevadm verify /etc/udev/rules.d/99-canopy-serial.rules >/dev/null; echo udev=$?",
  );
  assert.match(verify.stdout, /rc=0\nudev=0/, verify.stdout + verify.stderr);
  assert.equal(verify.stderr.trim(), "", `systemd-analyze verify: ${verify.stderr}`);
  const ver = await root.exec("canopy --version");
  assert.equal(ver.stdout.trim(), version, ver.stderr);

  // The agent as the canopy user, inside the root, enrolls with the hub outside and shows online.
  const agent = root.spawnAs("canopy", "canopy agent --config /etc/canopy/agent.json --port -1 --heartbeat 1s");
  await timed("agent-online", async () => {
    await agent.waitFor(/"event":"agent-ready"/, 60_000);
    await waitFor(
      async () => {
        const r = await fleet.cli(["devices", "--json"]);
        return (JSON.parse(r.stdout) as { id: string; online: boolean }[]).find((d) => d.id === DEVICE && d.online);
      },
      { timeoutMs: 30_000, what: `${DEVICE} online in the hub` },
    );
  });
  const owner = await root.exec("stat -c '%U' /var/lib/canopy/leaf /var/lib/canopy/state | sort -u");
  assert.equal(owner.stdout.trim(), "canopy");
  await root.stop(agent.proc);

  // A second run changes nothing.
  const installed = await snapshot(root, { mtimes: true });
  const second = await timed("second-run", () => root.exec(`${installer} --join ${token}`));
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stderr, new RegExp(`already installed, version ${version.replace(/\./g, "\\.")}`));
  assert.deepEqual(diff(installed, await snapshot(root, { mtimes: true })), []);

  // --upgrade from a newer tree: new version in place, config and data untouched.
  const newer = `${version}-up1`;
  await must("cp", ["-a", join(root.root, `root/rel/canopy-${version}`), join(root.root, `root/rel/canopy-${newer}`)]);
  await writeFile(join(root.root, `root/rel/canopy-${newer}/VERSION`), `${newer}\n`);
  const keep = await root.exec("md5sum /etc/canopy/agent.json && stat -c '%Y' /etc/canopy/agent.json && ls /var/lib/canopy");
  const up = await timed("upgrade", () => root.exec(`/root/rel/canopy-${newer}/install.sh --upgrade`));
  assert.equal(up.code, 0, up.stderr);
  assert.match(up.stderr, new RegExp(`installed Canopy ${newer.replace(/\./g, "\\.")} in /opt/canopy \\(was ${version.replace(/\./g, "\\.")}\\)`));
  assert.equal((await root.exec("cat /opt/canopy/VERSION")).stdout.trim(), newer);
  assert.equal((await root.exec("md5sum /etc/canopy/agent.json && stat -c '%Y' /etc/canopy/agent.json && ls /var/lib/canopy")).stdout, keep.stdout);

  // --uninstall: no unit, user or file of ours left; the data stays.
  const un = await timed("uninstall", () => root.exec(`/root/rel/canopy-${newer}/install.sh --uninstall`));
  assert.equal(un.code, 0, un.stderr);
  const gone = await root.exec(
    "getent passwd canopy; getent group canopy; ls -d /opt/canopy /etc/canopy /usr/bin/canopy /etc/systemd/system/canopy-agent.service /etc/systemd/system/multi-user.target.wants/canopy-agent.service /etc/udev/rules.d/99-canopy-serial.rules /usr/local/bin/nats-server 2>/dev/null; ls /var/lib/canopy",
  );
  const data = (await root.exec("ls /var/lib/canopy")).stdout;
  assert.equal(gone.stdout, data, "something besides the data is left");
  assert.ok(["leaf", "leaf.conf", "state"].every((f) => data.split("\n").includes(f)), data);

  // A hub node from the same tree (install-hub.sh), then --uninstall --purge: back to the fresh root.
  const hubTree = `/root/rel/canopy-${newer}`;
  const hubInstall = await timed("hub-install", () => root.exec(`${hubTree}/deploy/install-hub.sh --hub-args "--advertise hub1.example.net:7422"`));
  assert.equal(hubInstall.code, 0, hubInstall.stderr);
  const hubFiles = await root.exec(
    "readlink /etc/systemd/system/multi-user.target.wants/canopy-hub.service; cat /etc/canopy/hub.env; stat -c '%a %U %G' /etc/canopy/hub.env; id -u canopy >/dev/null && echo user; ls /etc/canopy",
  );
  assert.equal(
    hubFiles.stdout,
    "/etc/systemd/system/canopy-hub.service\nCANOPY_HUB_ARGS=--advertise hub1.example.net:7422\n640 root canopy\nuser\nhub.env\n",
  );
  const purge = await root.exec(`${hubTree}/install.sh --uninstall --purge`);
  assert.equal(purge.code, 0, purge.stderr);
  // Compared with the fresh root: only shadow-utils' backup files (/etc/passwd- …) are new.
  const left = diff(before, await snapshot(root, { mtimes: false })).filter(
    (d) => !/^\.\/etc\/(passwd|group|shadow|gshadow|subuid|subgid)-: \(new\)/.test(d) && !/^\.\/etc\/(passwd|group|shadow|gshadow): /.test(d),
  );
  assert.deepEqual(left, []);
});
