/**
 * Settings from outside environments.ts: a committed JSON file (`-c config=orion.config.json`) with
 * per-environment overrides and the pipeline's settings, and the `-c alarmEmail=…` shortcut. The
 * file is what the pipeline's own synth step reads again, so self-mutation keeps the same settings.
 */
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, normalize } from 'node:path';
import type { PipelineConfig } from '../pipeline/config';
import {
  ENVIRONMENT_NAMES,
  ENVIRONMENTS,
  type EnvironmentConfig,
  type EnvironmentName,
  OPTIONAL_SETTINGS,
} from './environments';
import { ConfigError } from './errors';

export interface SettingsFile {
  /** Overrides per environment: any setting of environments.ts but name, account and region. */
  readonly environments?: Partial<Record<EnvironmentName, Partial<EnvironmentConfig>>>;
  /** The delivery pipeline's settings (used with `-c pipeline=true`). */
  readonly pipeline?: PipelineConfig;
}

export interface LoadedSettings {
  /** The file as given: a path relative to the repository root. */
  readonly path?: string;
  readonly file: SettingsFile;
}

/** Reads and checks `-c config=FILE`; no file means no overrides. */
export function readSettingsFile(path: unknown): LoadedSettings {
  if (path === undefined || path === '') return { file: {} };
  if (typeof path !== 'string') throw new ConfigError('-c config=FILE: expected a file path');
  // The pipeline's synth step runs in a fresh checkout: the file must be inside the repository.
  if (isAbsolute(path) || normalize(path).startsWith('..') || !/^[\w./-]+$/.test(path))
    throw new ConfigError(
      `-c config=${path}: give a relative path inside the repository, of letters, digits, '.', '_', '-' and '/' (the pipeline reads the committed file again)`,
    );
  if (!existsSync(path)) throw new ConfigError(`-c config=${path}: no such file`);
  let file: unknown;
  try {
    file = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError(`${path} is not valid JSON: ${(err as Error).message}`);
  }
  checkShape(path, file);
  return { path: normalize(path), file: file as SettingsFile };
}

/** The overrides for one environment: the file's, then the context shortcut. */
export function environmentOverrides(
  settings: LoadedSettings,
  name: EnvironmentName,
  context: { alarmEmail?: unknown } = {},
): Partial<EnvironmentConfig> {
  const fromFile = settings.file.environments?.[name] ?? {};
  if (context.alarmEmail === undefined) return fromFile;
  if (typeof context.alarmEmail !== 'string')
    throw new ConfigError('-c alarmEmail=ADDRESS: expected an e-mail address');
  return { ...fromFile, alarmEmail: context.alarmEmail };
}

function checkShape(path: string, file: unknown): void {
  const errors: string[] = [];
  if (!isObject(file)) throw new ConfigError(`${path}: expected a JSON object with "environments" and/or "pipeline"`);
  for (const key of Object.keys(file))
    if (key !== 'environments' && key !== 'pipeline')
      errors.push(`${key}: unknown section (expected "environments" or "pipeline")`);
  const envs = file.environments;
  if (envs !== undefined && !isObject(envs)) errors.push('environments: expected an object keyed by environment');
  const known = new Set<string>([...Object.keys(ENVIRONMENTS.prod), ...OPTIONAL_SETTINGS]);
  for (const [name, overrides] of Object.entries(isObject(envs) ? envs : {})) {
    if (!(ENVIRONMENT_NAMES as readonly string[]).includes(name)) {
      errors.push(`environments.${name}: unknown environment (expected ${ENVIRONMENT_NAMES.join(', ')})`);
      continue;
    }
    if (!isObject(overrides)) {
      errors.push(`environments.${name}: expected an object of settings`);
      continue;
    }
    for (const key of Object.keys(overrides)) {
      if (key === 'name' || key === 'account' || key === 'region')
        errors.push(
          `environments.${name}.${key}: set by the deploy (-c account/-c region, or the pipeline section), not here`,
        );
      else if (!known.has(key)) errors.push(`environments.${name}.${key}: unknown setting`);
    }
  }
  if (file.pipeline !== undefined && !isObject(file.pipeline)) errors.push('pipeline: expected an object');
  if (errors.length) throw new ConfigError(`${path}:\n  ${errors.join('\n  ')}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
