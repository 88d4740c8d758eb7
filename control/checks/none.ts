import { defineCheckType } from './check-type.js';

/** No probe: every backend counts as up. */
export const none = defineCheckType({ name: 'none', description: 'always healthy', options: {}, probe: null });
