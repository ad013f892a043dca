// Generates src/gen/ (the TypeScript QueryService client) from ../proto with buf + protoc-gen-es, both from npm.
// `--check`: generate into a temporary folder and fail (exit 1) when src/gen differs: the committed client is stale.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const protoRoot = join(root, "..", "proto");
const files = ["gnomon/v1/query.proto"];
const check = process.argv.includes("--check");

function generate(out) {
  const template = readFileSync(join(root, "buf.gen.yaml"), "utf8").replace("out: src/gen", `out: ${out}`);
  const buf = join(root, "node_modules", ".bin", "buf");
  const args = ["generate", protoRoot, "--template", template, ...files.flatMap((f) => ["--path", join(protoRoot, f)])];
  execFileSync(buf, args, { cwd: root, stdio: "inherit" });
}

function listFiles(dir) {
  const found = [];
  const walk = (d) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else found.push(relative(dir, p));
    }
  };
  try {
    walk(dir);
  } catch {
    return [];
  }
  return found.sort();
}

if (!check) {
  rmSync(join(root, "src", "gen"), { recursive: true, force: true });
  generate("src/gen");
  process.exit(0);
}

const tmp = mkdtempSync(join(tmpdir(), "gnomon-dashboard-gen-"));
try {
  generate(tmp);
  const want = listFiles(tmp);
  const have = listFiles(join(root, "src", "gen"));
  const stale = [];
  for (const f of new Set([...want, ...have])) {
    const a = want.includes(f) ? readFileSync(join(tmp, f), "utf8") : null;
    const b = have.includes(f) ? readFileSync(join(root, "src", "gen", f), "utf8") : null;
    if (a !== b) stale.push(f);
  }
  if (stale.length) {
    console.error(`dashboard/src/gen is stale (${stale.join(", ")}): run \`npm run gen\` in dashboard/ and commit it`);
    process.exit(1);
  }
  console.log("dashboard/src/gen is up to date with proto/");
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
