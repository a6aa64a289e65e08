/**
 * Offline structural checks of the Bicep templates: a real parser (tree-sitter-bicep) plus small helpers to
 * read declarations, object properties and simple values from its syntax tree. No Bicep compiler exists on
 * this machine (see reference/local-stack.md §6), so this checks syntax and our own rules, not ARM schemas.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';

const require = createRequire(import.meta.url);

export interface SyntaxNode {
  type: string;
  text: string;
  isMissing: boolean;
  startPosition: { row: number; column: number };
  children: SyntaxNode[];
  namedChildren: SyntaxNode[];
  parent: SyntaxNode | null;
}
interface Tree {
  rootNode: SyntaxNode;
}
interface ParserLike {
  setLanguage(lang: unknown): void;
  parse(src: string): Tree;
}

let parser: ParserLike | undefined;
function getParser(): ParserLike {
  if (!parser) {
    const Parser = require('tree-sitter') as new () => ParserLike;
    parser = new Parser();
    parser.setLanguage(require('tree-sitter-bicep'));
  }
  return parser;
}

/**
 * tree-sitter-bicep 1.1.0 predates the `extension <name>` statement (Bicep ≥ 0.30; it knows the older
 * `import 'x'` / `provider 'x'`). Rewrite that one statement to the older form before parsing so valid
 * current syntax is not reported; {@link EXTENSION_LINE} checks the statement itself.
 */
export const EXTENSION_LINE =
  /^extension\s+(?:[A-Za-z_][A-Za-z0-9_]*|'[^']+')(?:\s+with\s+\{[^}]*\})?(?:\s+as\s+[A-Za-z_]\w*)?\s*$/;
function shimExtensions(src: string): string {
  return src
    .split('\n')
    .map((line) => {
      const m = /^extension\s+([A-Za-z_][A-Za-z0-9_]*|'[^']+')(.*)$/.exec(line);
      if (!m) return line;
      const target = m[1]!.startsWith("'") ? m[1]! : `'${m[1]!}'`;
      return `import ${target}${m[2] ?? ''}`;
    })
    .join('\n');
}

export interface ParsedBicep {
  file: string;
  src: string;
  root: SyntaxNode;
  /** `file:line:col: ERROR near "…"` for every ERROR or missing node. */
  errors: string[];
}

export function parseBicep(src: string, file: string): ParsedBicep {
  const root = getParser().parse(shimExtensions(src)).rootNode;
  const errors: string[] = [];
  walk(root, (n) => {
    if (n.type === 'ERROR' || n.isMissing) {
      const where = `${file}:${n.startPosition.row + 1}:${n.startPosition.column + 1}`;
      errors.push(
        n.isMissing
          ? `${where}: missing ${n.type}`
          : `${where}: syntax error near ${JSON.stringify(n.text.slice(0, 40))}`,
      );
    }
  });
  for (const [i, line] of src.split('\n').entries()) {
    if (/^extension\b/.test(line) && !EXTENSION_LINE.test(line))
      errors.push(`${file}:${i + 1}:1: malformed extension statement`);
  }
  return { file, src, root, errors };
}

export function walk(node: SyntaxNode, visit: (n: SyntaxNode) => void): void {
  visit(node);
  for (const c of node.children) walk(c, visit);
}

export function findAll(node: SyntaxNode, type: string): SyntaxNode[] {
  const out: SyntaxNode[] = [];
  walk(node, (n) => {
    if (n.type === type) out.push(n);
  });
  return out;
}

/** All `.bicep` files under a directory, recursively. */
export function bicepFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...bicepFiles(p));
    else if (name.endsWith('.bicep')) out.push(p);
  }
  return out.sort();
}

export function parseDir(dir: string): Map<string, ParsedBicep> {
  const out = new Map<string, ParsedBicep>();
  for (const f of bicepFiles(dir))
    out.set(relative(dir, f), parseBicep(readFileSync(f, 'utf8'), relative(process.cwd(), f)));
  return out;
}

/** Text of a string literal without quotes; undefined when it is interpolated or not a string. */
export function stringValue(node: SyntaxNode | undefined): string | undefined {
  if (!node || node.type !== 'string') return undefined;
  if (node.namedChildren.some((c) => c.type !== 'string_content' && c.type !== 'escape_sequence')) return undefined;
  return node.text.replace(/^'''|'''$/g, '').replace(/^'|'$/g, '');
}

/** Key of an object property (identifier or quoted string). */
export function propertyKey(prop: SyntaxNode): string {
  const k = prop.namedChildren[0]!;
  return k.type === 'string' ? (stringValue(k) ?? k.text) : k.text;
}

/** Value node of an object property. */
export function propertyValue(prop: SyntaxNode): SyntaxNode | undefined {
  return prop.namedChildren[prop.namedChildren.length - 1];
}

/** Direct properties of an object node (`{ … }`), as key → value node. */
export function objectProps(obj: SyntaxNode | undefined): Map<string, SyntaxNode> {
  const out = new Map<string, SyntaxNode>();
  if (!obj || obj.type !== 'object') return out;
  for (const p of obj.namedChildren) {
    if (p.type !== 'object_property') continue;
    const v = propertyValue(p);
    if (v && p.namedChildren.length >= 2) out.set(propertyKey(p), v);
  }
  return out;
}

/** Follow a dotted path of property keys from an object node. */
export function path(obj: SyntaxNode | undefined, dotted: string): SyntaxNode | undefined {
  let cur = obj;
  for (const key of dotted.split('.')) {
    cur = objectProps(cur).get(key);
    if (!cur) return undefined;
  }
  return cur;
}

/** The body object of a declaration (resource/module), looking through `if (…)` and `[for …: {…}]`. */
export function bodyOf(decl: SyntaxNode): SyntaxNode | undefined {
  const last = decl.namedChildren[decl.namedChildren.length - 1];
  if (!last) return undefined;
  if (last.type === 'object') return last;
  return findAll(last, 'object')[0];
}

export interface Declaration {
  name: string;
  node: SyntaxNode;
}

export interface ResourceDecl extends Declaration {
  /** e.g. `Microsoft.Web/sites@2024-04-01` (child types like `config` as written). */
  type: string;
  body: SyntaxNode | undefined;
}

export function resources(root: SyntaxNode): ResourceDecl[] {
  return findAll(root, 'resource_declaration').map((n) => ({
    name: n.namedChildren[0]!.text,
    type: stringValue(n.namedChildren[1]) ?? '',
    node: n,
    body: bodyOf(n),
  }));
}

export interface ModuleDecl extends Declaration {
  path: string;
  body: SyntaxNode | undefined;
}

export function modules(root: SyntaxNode): ModuleDecl[] {
  return findAll(root, 'module_declaration').map((n) => ({
    name: n.namedChildren[0]!.text,
    path: stringValue(n.namedChildren[1]) ?? '',
    node: n,
    body: bodyOf(n),
  }));
}

export interface ParamDecl extends Declaration {
  /** The default value node, if any. */
  defaultValue: SyntaxNode | undefined;
  type: string;
}

export function params(root: SyntaxNode): ParamDecl[] {
  return root.namedChildren
    .filter((n) => n.type === 'parameter_declaration')
    .map((n) => ({
      name: n.namedChildren[0]!.text,
      type: n.namedChildren[1]?.text ?? '',
      node: n,
      defaultValue: n.namedChildren[2],
    }));
}

export function variables(root: SyntaxNode): Map<string, SyntaxNode> {
  const out = new Map<string, SyntaxNode>();
  for (const n of root.namedChildren)
    if (n.type === 'variable_declaration') out.set(n.namedChildren[0]!.text, n.namedChildren[1]!);
  return out;
}

export interface OutputDecl extends Declaration {
  expression: string;
}

export function outputs(root: SyntaxNode): OutputDecl[] {
  return root.namedChildren
    .filter((n) => n.type === 'output_declaration')
    .map((n) => ({
      name: n.namedChildren[0]!.text,
      node: n,
      expression: n.namedChildren[n.namedChildren.length - 1]!.text,
    }));
}

/** Evaluate a string literal or a reference to a `var` holding one (no interpolation). */
export function resolveString(
  node: SyntaxNode | undefined,
  vars: Map<string, SyntaxNode>,
  depth = 0,
): string | undefined {
  if (!node || depth > 5) return undefined;
  if (node.type === 'string') return stringValue(node);
  if (node.type === 'identifier' && vars.has(node.text)) return resolveString(vars.get(node.text), vars, depth + 1);
  return undefined;
}

/** Evaluate an array literal of strings (or a var holding one). */
export function resolveStringArray(
  node: SyntaxNode | undefined,
  vars: Map<string, SyntaxNode>,
): (string | undefined)[] | undefined {
  if (node?.type === 'identifier' && vars.has(node.text)) return resolveStringArray(vars.get(node.text), vars);
  if (node?.type !== 'array') return undefined;
  return node.namedChildren.map((c) => resolveString(c, vars));
}

/** Every string literal's content in a tree (for "is this GUID present" checks). */
export function stringLiterals(root: SyntaxNode): string[] {
  return findAll(root, 'string')
    .map((s) => stringValue(s))
    .filter((s): s is string => s !== undefined);
}
