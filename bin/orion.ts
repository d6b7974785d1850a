#!/usr/bin/env node
/** The CDK app: see lib/app.ts for what it builds from context. */
import { App } from 'aws-cdk-lib';
import { defineOrionApp } from '../lib/app';

defineOrionApp(new App());
