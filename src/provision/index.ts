export * from './provision.js';
export * from './schema-diff.js';
