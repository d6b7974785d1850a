/**
 * Default database and role names, shared by the CDK environment config and `orion-db up`.
 */
import type { LockdownRoles } from '../engine/lockdown';

export const DEFAULT_ROLES: LockdownRoles = {
  database: 'orion_prod',
  owner: 'orion_owner',
  group: 'orion_app_rw',
  app: 'orion_app',
};
