#!/usr/bin/env node
// restwell-audit verify: checks an audit log's chain and checkpoints (see docs/audit.md).
import { runAuditCli } from '../dist/audit/index.js';

process.exitCode = await runAuditCli(process.argv.slice(2), {
  out: (line) => console.log(line),
  err: (line) => console.error(line),
  env: process.env,
});
