/**
 * Enum labels added by `ALTER TYPE … ADD VALUE` that a later statement may use. PostgreSQL refuses
 * such a use (55P04) until the ADD VALUE has committed, so the runner ends the batch in between.
 *
 * Read from the parse tree, type-aware where it can be: a literal whose type the tree names (a cast,
 * a column's DEFAULT) is a use only when that type is the enum that got the label; a literal of
 * unknown type (a comparison in a view, an INSERT's VALUES) is a possible use by its label alone.
 * A use hidden from the tree (a value computed at run time) is caught by the server's 55P04, on which
 * the executor splits the batch and runs it again.
 */
import type { Statement } from './sql';

/** An enum type as the parse tree names it: schema only when written. */
interface TypeRef {
  readonly schema?: string;
  readonly name: string;
}

export interface AddedEnumValue {
  readonly type: TypeRef;
  readonly label: string;
  readonly file: string;
  readonly line: number;
}

export interface EnumValueUse {
  readonly value: AddedEnumValue;
  readonly file: string;
  readonly line: number;
  /** False when the literal's type is unknown to the parse tree: a commit boundary may be one too many. */
  readonly certain: boolean;
}

/** Functions that read every label of an enum type (so they use each new one). */
const READS_ALL_LABELS = new Set(['enum_range', 'enum_first', 'enum_last']);

export class AddedEnumValues {
  private values: AddedEnumValue[] = [];

  get size(): number {
    return this.values.length;
  }

  /** Notes what `s` adds or renames. */
  record(file: string, s: Statement): void {
    if (s.kind === 'AlterEnumStmt') {
      const type = typeRef(s.node.typeName);
      if (!type || typeof s.node.newVal !== 'string') return;
      if (s.node.oldVal === undefined) {
        this.values.push({ type, label: s.node.newVal, file, line: s.line });
      } else {
        // RENAME VALUE keeps the value's row (and so its uncommitted state): only the label changes.
        this.values = this.values.map((v) =>
          sameType(v.type, type) && v.label === s.node.oldVal ? { ...v, label: s.node.newVal } : v,
        );
      }
    } else if (s.kind === 'RenameStmt' && s.node.renameType === 'OBJECT_TYPE') {
      const from = typeRef(s.node.object?.List?.items);
      if (!from || typeof s.node.newname !== 'string') return;
      const to = { schema: from.schema, name: s.node.newname };
      this.values = this.values.map((v) => (sameType(v.type, from) ? { ...v, type: to } : v));
    }
  }

  /** The first use in `statements` of a value noted so far (values `statements` add themselves are not noted yet). */
  firstUse(file: string, statements: readonly Statement[]): EnumValueUse | undefined {
    if (this.values.length === 0) return undefined;
    for (const s of statements) {
      const use = this.useIn(s.node, undefined);
      if (use) return { ...use, file, line: s.line };
    }
    return undefined;
  }

  /**
   * Walks a parse tree. `typed` holds the types a literal here is cast to (through casts and ARRAY[…]
   * only), undefined where the tree does not say.
   */
  private useIn(node: unknown, typed: TypeRef[] | undefined): Omit<EnumValueUse, 'file' | 'line'> | undefined {
    if (Array.isArray(node)) {
      for (const n of node) {
        const use = this.useIn(n, typed);
        if (use) return use;
      }
      return undefined;
    }
    if (!node || typeof node !== 'object') return undefined;
    const n = node as Record<string, any>;
    if (n.A_Const) return this.literalUse(n.A_Const.sval?.sval, typed);
    if (n.TypeCast) {
      const type = typeRef(n.TypeCast.typeName?.names);
      const inner = type ? [...(typed ?? []), type] : typed;
      const arg = n.TypeCast.arg;
      // Only a literal (or ARRAY[…] of them) takes the cast's type; anything else is an expression of its own.
      const direct = arg?.A_Const || arg?.TypeCast || arg?.A_ArrayExpr;
      return this.useIn(arg, direct ? inner : undefined);
    }
    if (n.A_ArrayExpr) return this.useIn(n.A_ArrayExpr.elements, typed);
    if (n.ColumnDef) {
      const type = typeRef(n.ColumnDef.typeName?.names);
      for (const c of n.ColumnDef.constraints ?? []) {
        const def = c.Constraint?.contype === 'CONSTR_DEFAULT' ? c.Constraint.raw_expr : undefined;
        const use = def ? this.useIn(def, type ? [type] : undefined) : this.useIn(c, undefined);
        if (use) return use;
      }
      return this.useIn(n.ColumnDef.raw_default, type ? [type] : undefined);
    }
    if (n.FuncCall && READS_ALL_LABELS.has(lastName(n.FuncCall.funcname) ?? '')) {
      const use = this.readsAllLabels(n.FuncCall.args);
      if (use) return use;
    }
    if (n.DoStmt || n.CreateFunctionStmt) {
      // A body is a string the parser does not look into: a quoted label in it may be a use.
      const use = this.bodyUse(n.DoStmt?.args ?? n.CreateFunctionStmt?.options);
      if (use) return use;
    }
    for (const value of Object.values(n)) {
      const use = this.useIn(value, undefined);
      if (use) return use;
    }
    return undefined;
  }

  private literalUse(text: unknown, typed: TypeRef[] | undefined): Omit<EnumValueUse, 'file' | 'line'> | undefined {
    if (typeof text !== 'string') return undefined;
    for (const value of this.values) {
      if (!typed) {
        if (value.label === text) return { value, certain: false };
      } else if (typed.some((t) => sameType(t, value.type)) && literalHolds(text, value.label)) {
        return { value, certain: true };
      }
    }
    return undefined;
  }

  /** `enum_range(NULL::t)` and friends read every label of `t`. */
  private readsAllLabels(args: unknown): Omit<EnumValueUse, 'file' | 'line'> | undefined {
    for (const arg of (args as any[]) ?? []) {
      const type = arg?.TypeCast ? typeRef(arg.TypeCast.typeName?.names) : undefined;
      const value = type && this.values.find((v) => sameType(v.type, type));
      if (value) return { value, certain: true };
    }
    return undefined;
  }

  private bodyUse(options: unknown): Omit<EnumValueUse, 'file' | 'line'> | undefined {
    for (const o of (options as any[]) ?? []) {
      if (o?.DefElem?.defname !== 'as') continue;
      const arg = o.DefElem.arg;
      const bodies: unknown[] = arg?.List ? arg.List.items.map((i: any) => i?.String?.sval) : [arg?.String?.sval];
      for (const body of bodies) {
        if (typeof body !== 'string') continue;
        const value = this.values.find((v) => body.includes(`'${v.label.replace(/'/g, "''")}'`));
        if (value) return { value, certain: false };
      }
    }
    return undefined;
  }
}

/** A literal cast to an enum (or an array of it, `'{a,b}'`) holds `label`. */
function literalHolds(text: string, label: string): boolean {
  if (text === label) return true;
  if (!text.startsWith('{') || !text.endsWith('}')) return false;
  return text
    .slice(1, -1)
    .split(',')
    .some((e) => e.trim().replace(/^"(.*)"$/, '$1') === label);
}

function typeRef(names: unknown): TypeRef | undefined {
  if (!Array.isArray(names)) return undefined;
  const parts = names.map((n: any) => n?.String?.sval).filter((p): p is string => typeof p === 'string');
  if (parts.length === 0) return undefined;
  const name = parts[parts.length - 1];
  return parts.length > 1 ? { schema: parts[parts.length - 2], name } : { name };
}

function lastName(names: unknown): string | undefined {
  return typeRef(names)?.name;
}

/** The same type, as far as the names tell: a missing schema matches any (the search path decides). */
function sameType(a: TypeRef, b: TypeRef): boolean {
  return a.name === b.name && (a.schema === undefined || b.schema === undefined || a.schema === b.schema);
}
