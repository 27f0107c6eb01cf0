/**
 * `npm run bench`: runs every benchmark in turn (or those named on the command
 * line: `npm run bench -- core idempotency`). Each prints a markdown table.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// The servers measure the built package, as users run it.
const build = spawnSync('npm', ['run', 'build'], { stdio: 'inherit' });
if (build.status !== 0) process.exit(1);

const all = [
  'core',
  'stores',
  'idempotency',
  'rate-limit',
  'caching',
  'pagination',
  'audit',
  'webhooks',
  'webhooks-delivery',
  'versioning',
  'auth',
];
const chosen = process.argv.slice(2).length > 0 ? process.argv.slice(2) : all;
const tsconfig = fileURLToPath(new URL('./tsconfig.json', import.meta.url));
let failed = 0;
for (const name of chosen) {
  const file = fileURLToPath(new URL(`./${name}.ts`, import.meta.url));
  if (!existsSync(file)) {
    console.error(`no benchmark named ${name}`);
    failed++;
    continue;
  }
  console.log(`\n## ${name}\n`);
  // Under bench/tsconfig.json, which has no source paths: `restwell` is the built package.
  const r = spawnSync(process.execPath, ['--import', 'tsx', file], {
    stdio: 'inherit',
    env: { ...process.env, TSX_TSCONFIG_PATH: tsconfig },
  });
  if (r.status !== 0) failed++;
}
process.exit(failed === 0 ? 0 : 1);
