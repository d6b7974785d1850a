/**
 * Which role `migrate` and `down` run the migrations' SQL as. The deploy lifecycle (the Lambda,
 * `orion-db up`) always runs them as the owner role; a person's `orion-db migrate` does too when it
 * can, so a table created from a laptop and later altered by the Lambda has one owner.
 */
import type { ClientBase } from 'pg';
import { BadInputError } from '../../lambda/engine/errors';
import { validateIdentifier } from '../../lambda/engine/identifiers';
import { DEFAULT_ROLES } from '../../lambda/lifecycle/names';
import type { CliOptions } from '../args';

/**
 * `--no-role`: the connecting user. `--role ROLE`: that role, which the user must be allowed to SET
 * ROLE to. Otherwise the owner role (`orion_owner`) when it exists, the user may SET ROLE to it, and
 * this database was bootstrapped for it (granted CREATE on schema `public`; roles are cluster-wide, so
 * the role existing says nothing about this database); else the connecting user.
 */
export async function migrationRole(
  client: ClientBase,
  options: Pick<CliOptions, 'role' | 'noRole'>,
  progress: (line: string) => void,
): Promise<string | undefined> {
  if (options.noRole) return undefined;
  const name = options.role !== undefined ? validateIdentifier(options.role, '--role') : DEFAULT_ROLES.owner;
  const { rows } = await client.query(
    `SELECT current_user AS me,
            pg_has_role(current_user, r.oid, CASE WHEN current_setting('server_version_num')::int >= 160000
                                                  THEN 'SET' ELSE 'MEMBER' END) AS may_set,
            EXISTS (SELECT 1 FROM pg_namespace n, aclexplode(n.nspacl) a
                     WHERE n.nspname = 'public' AND a.grantee = r.oid AND a.privilege_type = 'CREATE') AS bootstrapped
       FROM pg_roles r WHERE r.rolname = $1`,
    [name],
  );
  const role = rows[0] as { me: string; may_set: boolean; bootstrapped: boolean } | undefined;
  if (options.role !== undefined) {
    if (!role) throw new BadInputError(`--role ${name}: no such role on this server`);
    if (!role.may_set) throw new BadInputError(`--role ${name}: ${role.me} may not SET ROLE to it (GRANT it first)`);
    return name;
  }
  if (!role?.bootstrapped) return undefined;
  if (!role.may_set) {
    progress(
      `${name} owns this database's schema, but ${role.me} may not SET ROLE to it: running as ${role.me}, ` +
        `so what these migrations create is owned by ${role.me} (GRANT ${name} TO ${role.me}, or --no-role to silence this)`,
    );
    return undefined;
  }
  progress(`running the migrations as ${name}, the schema's owner (--no-role runs them as ${role.me})`);
  return name;
}
