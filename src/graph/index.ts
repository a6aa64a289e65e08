export * from './errors.js';
export * from './retry.js';
export * from './http.js';
export * from './client.js';
export * from './credentials.js';
export type * from './types.js';
