#!/usr/bin/env node
/** The CDK app: see lib/app.ts for what it builds from context. */
import { App } from 'aws-cdk-lib';
import { defineOrionApp } from '../lib/app';
import { ConfigError } from '../lib/config/errors';

try {
  defineOrionApp(new App());
} catch (err) {
  // A wrong setting is the user's to fix: one message naming it, not a stack trace from inside the app.
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`error: ${err.message}\n`);
  process.exit(1);
}
